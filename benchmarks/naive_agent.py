"""The baseline: a naive faust agent, one event per invoice, state in a faust Table.

This is the straightforward way to write the liquidate agent, kept to measure what the batched
pipeline gains: each event is one invoice as JSON, the beneficiary's counters live in a faust
Table (one key per beneficiary, a changelog record per update), the kernels run on a batch of
one, and each décompte is sent as its own record. Same kernels, same results; only the per-event
path differs.

    python -m fseflow.benchmarks.naive_agent worker     # run by run_naive(), not by hand
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from fseflow.stream.settings import Settings

_PREFIX_ENV = "FSEFLOW_NAIVE_PREFIX"
_COUNT_ENV = "FSEFLOW_NAIVE_COUNT"
_OUT_ENV = "FSEFLOW_NAIVE_OUT"


def invoice_events(items: list[Any], partitions: int) -> list[tuple[bytes, bytes]]:
    """(key, JSON value) per invoice of the decoded files: one event each."""
    from fseflow.processors.reference import compile_reference
    from fseflow.stream import decode as dec

    out = dec.decode_step(items, compile_reference(), 1, {})
    if not out.invoices:
        return []
    b = dec.unpack_invoices(out.invoices[0])
    events = []
    for i in range(b.size):
        one = dec.select(b, np.arange(b.size) == i)
        value = {"files": one.files, "c14": {str(k): v for k, v in one.c14.items()},
                 "i": {f: col.tolist() for f, col in zip(one.ic._fields, one.ic)},
                 "l": {f: col.tolist() for f, col in zip(one.lc._fields, one.lc)},
                 "m": {k: (v.tolist() if v.dtype.kind != "S" else [x.decode() for x in v]) for k, v in one.meta.items()},
                 "act": [x.decode() for x in one.act]}
        events.append((f"{int(one.ic.nir_id[0])}:{int(one.meta['rang'][0])}".encode(), orjson.dumps(value)))
    return events


def _batch_of_one(v: dict[str, Any]) -> Any:
    from fseflow.processors.claims import KERNEL_DTYPES, InvoiceCols, LineCols
    from fseflow.stream.decode import InvoiceBatch

    def arr(values: list[Any], dtype: Any) -> np.ndarray:
        return np.array(values, dtype=dtype)

    ic = InvoiceCols(*[arr(v["i"][f], KERNEL_DTYPES.get(f, np.int64)) for f in InvoiceCols._fields])
    lc = LineCols(*[arr(v["l"][f], KERNEL_DTYPES.get(f, np.int64)) for f in LineCols._fields])
    meta = {k: (np.array([x.encode() for x in col]) if k in ("nir_opener", "nature_code") else np.array(col))
            for k, col in v["m"].items()}
    act = np.array([x.encode() for x in v["act"]], dtype="S4")
    return InvoiceBatch(v["files"], ic, lc, meta, act, {int(k): f for k, f in v["c14"].items()})


def worker() -> None:
    """The naive agent itself (run in its own process by `run_naive`)."""
    import faust

    from fseflow.infra import db
    from fseflow.processors import _hashtable as ht
    from fseflow.processors.reference import compile_reference
    from fseflow.stream.liquidate import liquidate_step
    from fseflow.stream.state import PartitionState

    settings = Settings.from_env()
    prefix, count, out_path = os.environ[_PREFIX_ENV], int(os.environ[_COUNT_ENV]), Path(os.environ[_OUT_ENV])
    ref = compile_reference()
    bene, pros = db.load_directory(settings.database_url)
    app = faust.App(prefix + "naive", broker=f"kafka://{settings.kafka_bootstrap}", store="memory://",
                    web_enabled=False, broker_session_timeout=6, consumer_auto_offset_reset="earliest",
                    topic_partitions=settings.partitions, datadir=str(out_path.parent / "naive-data"))
    invoices = app.topic(prefix + "naive.invoices", key_type=bytes, value_type=bytes, value_serializer="raw")
    decomptes = app.topic(prefix + "naive.decomptes", value_serializer="raw")
    table = app.Table(prefix + "naive-state", default=dict, partitions=settings.partitions)
    seen = {"n": 0, "t0": 0.0}

    @app.agent(invoices)
    async def liquidate(stream: Any) -> None:
        async for key, value in stream.items():
            if not seen["n"]:
                seen["t0"] = time.perf_counter()
            b = _batch_of_one(orjson.loads(value))
            k = key.decode()
            state = PartitionState(0, ht.from_dict({tuple(map(int, kk.split(","))): vv
                                                    for kk, vv in table[k].items()}))
            out = liquidate_step(state, [b], 0, bene, pros, ref)
            table[k] = {",".join(map(str, kk)): vv for kk, vv in ht.to_dict(state.table).items()}
            for rec in out.paid + out.rejected:
                await decomptes.send(value=orjson.dumps(rec))
            seen["n"] += 1
            if seen["n"] >= count:
                out_path.write_text(orjson.dumps({"invoices": seen["n"],
                                                  "seconds": time.perf_counter() - seen["t0"]}).decode())

    from faust.worker import Worker
    Worker(app, loglevel="warn", quiet=True).execute_from_commandline()


def run_naive(settings: Settings, items: list[Any], workdir: Path, timeout: float = 600.0) -> dict[str, float]:
    """Produce one event per invoice of `items`, run the naive agent over them; invoices/s."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from fseflow.stream.app import flush, producer

    prefix = settings.prefix + "naive."
    events = invoice_events(items, settings.partitions)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for f in admin.create_topics([NewTopic(prefix + t, settings.partitions, 1)
                                  for t in ("naive.invoices", "naive.decomptes")]).values():
        f.result()
    prod = producer(settings)
    for key, value in events:
        prod.produce(prefix + "naive.invoices", key=key, value=value)
        prod.poll(0)
    flush(prod)
    out = workdir / "naive-result.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, **settings.env(), _PREFIX_ENV: prefix, _COUNT_ENV: str(len(events)), _OUT_ENV: str(out)}
    log = open(workdir / "naive-worker.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "fseflow.benchmarks.naive_agent", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        deadline = time.monotonic() + timeout
        while not out.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("naive agent stopped or timed out; see " + str(workdir / "naive-worker.log"))
            time.sleep(0.2)
        time.sleep(0.05)
        res = orjson.loads(out.read_bytes())
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"invoices": res["invoices"], "seconds": res["seconds"], "invoices_per_s": res["invoices"] / res["seconds"]}


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.argv = [sys.argv[0], "worker"]
        worker()
