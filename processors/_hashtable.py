"""An open-addressing hash table over numpy arrays, for kernel state and directory indexes.

Keys are triples of int64 (a, b, c), values int64. The table is three arrays a kernel can take
and give back (no Python objects), which is what makes the per-beneficiary counters "state
arrays passed in and returned". Kernels never grow a table: the Python wrapper calls
`reserve` before a batch with an upper bound of the insertions it can make.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from fseflow.config import NJIT_OPTIONS

EMPTY = np.int64(np.iinfo(np.int64).min)
_MAX_LOAD = 0.5


class Table(NamedTuple):
    keys: np.ndarray   # (capacity, 3) int64; keys[i, 0] == EMPTY marks a free slot
    vals: np.ndarray   # (capacity,) int64
    used: np.ndarray   # (1,) int64: occupied slots


def new_table(capacity: int = 1024) -> Table:
    cap = 1 << max(4, int(capacity - 1).bit_length())
    keys = np.zeros((cap, 3), dtype=np.int64)
    keys[:, 0] = EMPTY
    return Table(keys, np.zeros(cap, dtype=np.int64), np.zeros(1, dtype=np.int64))


@njit(**NJIT_OPTIONS)
def _hash(a: int, b: int, c: int) -> np.uint64:
    # keys may be negative: reinterpret them as unsigned before mixing
    h = np.uint64(np.int64(a)) * np.uint64(0x9E3779B97F4A7C15)
    h ^= np.uint64(np.int64(b)) + np.uint64(0x632BE59BD9B4E019) + (h << np.uint64(6)) + (h >> np.uint64(2))
    h ^= np.uint64(np.int64(c)) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return h


@njit(**NJIT_OPTIONS)
def _slot(keys: np.ndarray, a: int, b: int, c: int) -> int:
    mask = np.int64(keys.shape[0] - 1)
    i = np.int64(_hash(a, b, c) & np.uint64(mask))
    while True:
        k0 = keys[i, 0]
        if k0 == EMPTY or (k0 == a and keys[i, 1] == b and keys[i, 2] == c):
            return i
        i = (i + 1) & mask


@njit(**NJIT_OPTIONS)
def get(keys: np.ndarray, vals: np.ndarray, a: int, b: int, c: int, default: int) -> int:
    i = _slot(keys, a, b, c)
    return default if keys[i, 0] == EMPTY else vals[i]


@njit(**NJIT_OPTIONS)
def put(keys: np.ndarray, vals: np.ndarray, used: np.ndarray, a: int, b: int, c: int, v: int) -> None:
    i = _slot(keys, a, b, c)
    if keys[i, 0] == EMPTY:
        keys[i, 0] = a
        keys[i, 1] = b
        keys[i, 2] = c
        used[0] += 1
    vals[i] = v


@njit(**NJIT_OPTIONS)
def add(keys: np.ndarray, vals: np.ndarray, used: np.ndarray, a: int, b: int, c: int, delta: int) -> int:
    i = _slot(keys, a, b, c)
    if keys[i, 0] == EMPTY:
        keys[i, 0] = a
        keys[i, 1] = b
        keys[i, 2] = c
        used[0] += 1
        vals[i] = 0
    vals[i] += delta
    return vals[i]


@njit(**NJIT_OPTIONS)
def _rehash(old_keys: np.ndarray, old_vals: np.ndarray, keys: np.ndarray, vals: np.ndarray, used: np.ndarray) -> None:
    for i in range(old_keys.shape[0]):
        if old_keys[i, 0] != EMPTY:
            put(keys, vals, used, old_keys[i, 0], old_keys[i, 1], old_keys[i, 2], old_vals[i])


def reserve(t: Table, extra: int) -> Table:
    """The same table, or a larger copy, with room for `extra` more keys."""
    need = int(t.used[0]) + int(extra)
    if need <= t.keys.shape[0] * _MAX_LOAD:
        return t
    bigger = new_table(int(need / _MAX_LOAD) + 1)
    _rehash(t.keys, t.vals, bigger.keys, bigger.vals, bigger.used)
    return bigger


def to_dict(t: Table) -> dict[tuple[int, int, int], int]:
    """The table as a plain dict (tests compare it with the twin's state)."""
    live = t.keys[:, 0] != EMPTY
    return {tuple(map(int, k)): int(v) for k, v in zip(t.keys[live], t.vals[live])}


def from_dict(d: dict[tuple[int, int, int], int]) -> Table:
    t = new_table(int(len(d) / _MAX_LOAD) + 16)
    for (a, b, c), v in d.items():
        put(t.keys, t.vals, t.used, a, b, c, v)
    return t


@njit(**NJIT_OPTIONS)
def build_index(keys: np.ndarray, vals: np.ndarray, used: np.ndarray,
                a: np.ndarray, b: np.ndarray, c: np.ndarray, rows: np.ndarray) -> None:
    """Index by (a[i], b[i], c[i]) → rows[i]; the first one wins on a repeated key."""
    for i in range(a.shape[0]):
        if get(keys, vals, a[i], b[i], c[i], -1) == -1:
            put(keys, vals, used, a[i], b[i], c[i], rows[i])
