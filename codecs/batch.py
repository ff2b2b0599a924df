"""Message codec for columnar batches: named numpy arrays plus a JSON header, in one Kafka value.

Records on the hot topics carry whole batches (many invoices), never one object per invoice:
per-event Python objects are what makes a naive stream agent slow. The layout is

    b"FSB1" | u32 header length | orjson header | padding to 8 | array buffers (each 8-aligned)

where the header holds the caller's metadata under "meta" and, per array, its name, dtype,
shape and offset. Decoding copies the value once into a writable buffer (numba kernels take
writable arrays) and views every array on it: no per-row work.
"""
from __future__ import annotations

import struct
from typing import Any, Mapping

import numpy as np
import orjson

MAGIC = b"FSB1"
_HEAD = struct.Struct("<4sI")


class BatchFormatError(ValueError):
    """A value on a batch topic that is not a batch of this version."""


def _pad(n: int) -> int:
    return (-n) % 8


def pack(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> bytes:
    """One value holding `meta` (JSON-able) and the arrays (1-D or 2-D, any fixed-size dtype)."""
    specs = []
    offset = 0
    bufs = []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype.hasobject:
            raise TypeError(f"batch array {name!r} has dtype object; only fixed-size dtypes are packed")
        specs.append([name, a.dtype.str, list(a.shape), offset])
        raw = a.tobytes()
        bufs.append(raw)
        bufs.append(b"\0" * _pad(len(raw)))
        offset += len(raw) + _pad(len(raw))
    header = orjson.dumps({"meta": meta, "arrays": specs})
    head = _HEAD.pack(MAGIC, len(header)) + header
    return b"".join([head, b"\0" * _pad(len(head)), *bufs])


def unpack(value: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The meta and the arrays of a packed value (arrays are writable views on one copy)."""
    if len(value) < _HEAD.size:
        raise BatchFormatError(f"batch value of {len(value)} bytes is shorter than its header")
    magic, n = _HEAD.unpack_from(value)
    if magic != MAGIC:
        raise BatchFormatError(f"batch value starts with {magic!r}, expected {MAGIC!r}")
    start = _HEAD.size + n
    try:
        header = orjson.loads(value[_HEAD.size:start])
    except orjson.JSONDecodeError as e:
        raise BatchFormatError(f"batch header is not JSON: {e}") from None
    body = start + _pad(start)
    buf = bytearray(value[body:])
    arrays = {}
    for name, dtype, shape, offset in header["arrays"]:
        dt = np.dtype(dtype)
        count = int(np.prod(shape)) if shape else 1
        if offset + count * dt.itemsize > len(buf):
            raise BatchFormatError(f"batch array {name!r} runs past the end of the value")
        arrays[name] = np.frombuffer(buf, dtype=dt, count=count, offset=offset).reshape(shape)
    return header["meta"], arrays


__all__ = ["BatchFormatError", "pack", "unpack"]
