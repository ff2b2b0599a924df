"""The baseline: a naive faust agent, one event per invoice, state in a faust Table.

This is the straightforward way to write the liquidate agent, kept to measure what the batched
pipeline gains: each event is one invoice as JSON, the beneficiary's counters live in a faust
Table (one key per beneficiary, a changelog record per update), the kernels run on a batch of
one, and each décompte is sent as its own record. Same kernels, same results; only the per-event
path differs. Decoding is done beforehand (`invoice_events`) and nothing is written to
PostgreSQL: the baseline is timed on the liquidation path alone, which flatters it.

    python -m fseflow.benchmarks.naive_agent worker     # run by run_naive(), not by hand
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from fseflow.stream.settings import Settings

_PREFIX_ENV = "FSEFLOW_NAIVE_PREFIX"
_COUNT_ENV = "FSEFLOW_NAIVE_COUNT"
_OUT_ENV = "FSEFLOW_NAIVE_OUT"


def topic_names(prefix: str) -> tuple[str, str]:
    """(invoices, décomptes) topics of the naive agent under a pipeline prefix."""
    return prefix + "naive.invoices", prefix + "naive.decomptes"


def _column(a: np.ndarray) -> list[Any]:
    """A column as [dtype, values]; byte strings as latin-1 text (any byte survives the trip)."""
    if a.dtype.kind == "S":
        return [a.dtype.str, [x.decode("latin-1") for x in a]]
    return [a.dtype.str, a.tolist()]


def _array(col: list[Any]) -> np.ndarray:
    dtype, values = np.dtype(col[0]), col[1]
    if dtype.kind == "S":
        return np.array([x.encode("latin-1") for x in values], dtype=dtype)
    return np.array(values, dtype=dtype)


def invoice_events(items: list[Any], limit: int | None = None) -> list[tuple[bytes, bytes]]:
    """(key, JSON value) per invoice of the received files `items` ((Received, partition, offset)
    as the decode agent gets them), in order: one event each, keyed by beneficiary (NIR + rang)."""
    from fseflow.processors.reference import compile_reference
    from fseflow.stream import decode as dec

    out = dec.decode_step(items, compile_reference(), 1, {})
    if not out.invoices:
        return []
    b = dec.unpack_invoices(out.invoices[0])
    n = b.size if limit is None else min(limit, b.size)
    events = []
    for i in range(n):
        one = dec.select(b, np.arange(b.size) == i)
        value = {"files": one.files, "c14": {str(k): v for k, v in one.c14.items()},
                 "i": {f: _column(col) for f, col in zip(one.ic._fields, one.ic)},
                 "l": {f: _column(col) for f, col in zip(one.lc._fields, one.lc)},
                 "m": {k: _column(v) for k, v in one.meta.items()},
                 "act": _column(one.act), "cip13": _column(one.cip13)}
        events.append((f"{int(one.ic.nir_id[0])}:{int(one.meta['rang'][0])}".encode(), orjson.dumps(value)))
    return events


def batch_of_one(v: dict[str, Any]) -> Any:
    """The InvoiceBatch of one event's value (dtypes exactly as the decode step made them)."""
    from fseflow.processors.claims import InvoiceCols, LineCols
    from fseflow.stream.decode import InvoiceBatch

    ic = InvoiceCols(*[_array(v["i"][f]) for f in InvoiceCols._fields])
    lc = LineCols(*[_array(v["l"][f]) for f in LineCols._fields])
    meta = {k: _array(col) for k, col in v["m"].items()}
    return InvoiceBatch(v["files"], ic, lc, meta, _array(v["act"]), {int(k): f for k, f in v["c14"].items()},
                        _array(v["cip13"]))


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
                    web_enabled=False, broker_session_timeout=settings.session_timeout,
                    broker_heartbeat_interval=1.0, consumer_auto_offset_reset="earliest",
                    topic_partitions=settings.partitions, datadir=str(out_path.parent / "naive-data"))
    t_invoices, t_decomptes = topic_names(prefix)
    invoices = app.topic(t_invoices, key_type=bytes, value_type=bytes, value_serializer="raw",
                         partitions=settings.partitions)
    decomptes = app.topic(t_decomptes, value_serializer="raw", partitions=settings.partitions)
    # key: the beneficiary (NIR:rang); value: its counter entries {"a,b,c": value}
    table = app.Table("naive-state", default=dict, partitions=settings.partitions)
    seen = {"n": 0, "t0": 0.0, "hits": 0, "decomptes": 0}

    @app.agent(invoices)
    async def liquidate(stream: Any) -> None:
        async for key, value in stream.items():
            if not seen["n"]:
                seen["t0"] = time.perf_counter()
            b = batch_of_one(orjson.loads(value))
            k = key.decode()
            entries = table[k]
            seen["hits"] += bool(entries)
            state = PartitionState(0, ht.from_dict({tuple(map(int, kk.split(","))): vv
                                                    for kk, vv in entries.items()}))
            out = liquidate_step(state, [b], 0, bene, pros, ref)
            table[k] = {f"{a},{b_},{c}": vv for (a, b_, c), vv in ht.to_dict(state.table).items()}
            for rec in out.paid + out.rejected:
                await decomptes.send(value=orjson.dumps(rec))
                seen["decomptes"] += 1
            seen["n"] += 1
            if seen["n"] == count:
                await app.producer.flush()  # décomptes and changelog records are on the broker
                seconds = time.perf_counter() - seen["t0"]
                out_path.write_bytes(orjson.dumps({
                    "invoices": seen["n"], "seconds": seconds, "decomptes_sent": seen["decomptes"],
                    "table_keys": len(table), "state_hits": seen["hits"],
                    "changelog_topic": table.changelog_topic.get_topic_name()}))

    from faust.worker import Worker
    Worker(app, loglevel="warn", quiet=True).execute_from_commandline()


@dataclass
class NaiveResult:
    invoices: int
    seconds: float                 # first event taken → last décompte flushed
    decomptes: int                 # records counted on the décomptes topic (by consuming)
    changelog_records: int         # records counted on the Table's changelog topic
    table_keys: int                # beneficiaries in the Table at the end
    state_hits: int                # invoices that found their beneficiary's state in the Table
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the décomptes

    @property
    def invoices_per_s(self) -> float:
        return self.invoices / self.seconds if self.seconds else 0.0


def count_records(bootstrap: str, topic: str, expected: int, idle: float = 3.0,
                  timeout: float = 120.0, keep: bool = False) -> tuple[int, list[bytes]]:
    """Records on every partition of `topic`, counted by consuming from the beginning.

    Not from the watermarks: the embedded broker reports them per record batch, not per record.
    Stops `idle` seconds after the last record once `expected` are read (so extra ones are seen
    too), or `timeout` seconds after the start."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"naive-count-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "fetch.max.bytes": 64 << 20})
    values: list[bytes] = []
    n = 0
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        start = last = time.monotonic()
        while True:
            msgs = c.consume(1000, timeout=0.2)
            now = time.monotonic()
            for m in msgs:
                if m.error():
                    continue
                n += 1
                if keep:
                    values.append(m.value())
            if msgs:
                last = now
            if (n >= expected and now - last > min(idle, 1.0)) or now - last > idle * 3 or now - start > timeout:
                break
    finally:
        c.close()
    return n, values


def run_naive(settings: Settings, items: list[Any], workdir: Path, limit: int | None = None,
              timeout: float = 600.0) -> NaiveResult:
    """Produce one event per invoice of `items` (the first `limit`), run the naive agent over them
    in its own process, and count what it wrote by consuming its topics."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from fseflow.stream.app import Delivery, flush, producer

    prefix = settings.prefix
    t_invoices, t_decomptes = topic_names(prefix)
    events = invoice_events(items, limit)
    if not events:
        raise ValueError("no invoice in the given files")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    for f in admin.create_topics([NewTopic(t, settings.partitions, 1) for t in (t_invoices, t_decomptes)]).values():
        f.result()
    prod, delivery = producer(settings), Delivery()
    for key, value in events:
        prod.produce(t_invoices, key=key, value=value, on_delivery=delivery)
        prod.poll(0)
    flush(prod)
    delivery.check()
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "naive-result.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, **settings.env(), _PREFIX_ENV: prefix, _COUNT_ENV: str(len(events)), _OUT_ENV: str(out)}
    with open(workdir / "naive-worker.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "fseflow.benchmarks.naive_agent", "worker"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        deadline = time.monotonic() + timeout
        while not out.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("naive agent stopped or timed out; see " + str(workdir / "naive-worker.log"))
            time.sleep(0.1)
        time.sleep(0.05)
        res = orjson.loads(out.read_bytes())
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    n_dec, values = count_records(settings.kafka_bootstrap, t_decomptes, res["decomptes_sent"], keep=True)
    n_log, _ = count_records(settings.kafka_bootstrap, res["changelog_topic"], res["invoices"])
    return NaiveResult(invoices=res["invoices"], seconds=res["seconds"], decomptes=n_dec, changelog_records=n_log,
                       table_keys=res["table_keys"], state_hits=res["state_hits"],
                       records=[orjson.loads(v) for v in values])


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.argv = [sys.argv[0], "worker"]
        worker()
