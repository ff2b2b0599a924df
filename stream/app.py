"""The faust app: decode, liquidate and sink agents over the topics of stream/topics.py.

Agents take batches of events (`take_events`), and every event is itself a batch (a file, or a
partition's share of the invoices of many files): per-event Python work is what limits a naive
agent, so the hot path is numpy arrays and numba kernels over whole batches.

Processing is at-least-once; effects are exactly-once by construction, not by Kafka
transactions (the embedded broker does not support them). PostgreSQL is the system of record:

- decode: invoices are produced and flushed before the file's receipt; a replayed file is sent
  again and its rows dropped downstream by the upstream-offset watermark (stream/state.py);
- liquidate: one PostgreSQL transaction per step holds the décomptes, their ledger entries and
  each partition's state change (infra/state_store.py), so the state never runs ahead of or
  behind what was paid. The input offset is committed by faust after it. A restarted worker
  reads the state back from PostgreSQL, skips input the state already reflects (offsets of the
  same broker incarnation only) and drops invoices already written (files re-sent from the
  intake journal);
- sink: the receipts and refused lots, one transaction per batch, `ON CONFLICT DO NOTHING`;
  the offsets are acknowledged only after the commit.

A record a stage cannot read is kept in `dead_letters` (topic, partition, offset, stage, reason)
and the stage goes on; PostgreSQL away makes a stage back off (one log line down, one back),
never crash-loop.
"""
from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import os
import struct
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import faust
import numpy as np
import orjson
import psycopg
from confluent_kafka import KafkaException, Producer

from fseflow.codecs import batch
from fseflow.codecs.batch import BatchFormatError
from fseflow.stream import metrics
from fseflow.stream.settings import Settings
from fseflow.infra.exceptions import ServiceError, StoreError
from fseflow.stream.topics import Topics, ensure_topics, incarnation

log = logging.getLogger("fseflow.stream")

#: the fraud step's thread, and its PostgreSQL connection's application_name
FRAUD_THREAD = "fseflow-fraud"


def _name_os_thread(name: str) -> None:
    """Give the calling thread an OS name (Linux `comm`, 15 bytes), seen in /proc/<pid>/task."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):  # not Linux: the thread keeps its default name
        pass


def producer(settings: Settings) -> Producer:
    """Idempotent, acks=all: a retried send is never written twice."""
    return Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 2, "compression.type": "none", "message.max.bytes": 64 << 20,
                     "batch.size": 4 << 20})


def flush(p: Producer, timeout: float = 60.0) -> None:
    left = p.flush(timeout)
    if left:
        raise KafkaException(f"{left} records not delivered within {timeout:.0f} s")


class Delivery:
    """Collects delivery errors of a producer: a record that failed must fail the step."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.errors.append(f"{msg.topic()}[{msg.partition()}]: {err}")

    def check(self) -> None:
        if self.errors:
            first, self.errors = self.errors[0], []
            raise KafkaException(f"delivery failed: {first}")


def tune_fetch_wait(ms: int) -> None:
    """Set the longest time a fetch waits at the broker for data (faust 0.15 hard-codes 1.5 s).

    A broker may hold a fetch for the whole wait even when records arrive (Tansu does): with
    three hops from intake to décompte, 1.5 s per hop was most of the measured latency. The
    consumer keeps the value until it starts, so it is set right after faust creates it."""
    from faust.transport.drivers import aiokafka as driver

    create = driver.AIOKafkaConsumerThread._create_worker_consumer
    original = getattr(create, "__wrapped__", create)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms
        return consumer

    create_worker_consumer.__wrapped__ = original  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._create_worker_consumer = create_worker_consumer


def _key(p: int) -> bytes:
    return struct.pack(">I", p)


#: the agents a worker can run (the ledger entries are written by liquidate, with the décomptes)
ROLES = ("decode", "liquidate", "sink", "fraud")


def build_app(settings: Settings, datadir: Path | None = None, preload: bool = False,
              roles: tuple[str, ...] = ROLES) -> faust.App:
    """The app with its three agents (topics are created if missing).

    `preload` loads the directory and opens the connections now rather than on the first event
    (a worker does it before joining the group, so its first batch waits for nothing)."""
    from fseflow.infra import db, journal, state_store, store
    from fseflow.infra import fraud_store
    from fseflow.infra import ledger as ledger_store
    from fseflow.stream import fraud_feed
    from fseflow.processors import payments
    from fseflow.processors.reference import compile_reference
    from fseflow.stream import decode as dec
    from fseflow.stream.liquidate import liquidate_step
    from fseflow.stream.state import PartitionState

    topics = Topics.named(settings.prefix)
    ensure_topics(settings.kafka_bootstrap, topics, settings.partitions)
    tune_fetch_wait(settings.fetch_wait_ms)
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"worker roles must be among {', '.join(ROLES)}, got {', '.join(roles) or 'none'}")
    # a worker running only some agents is its own consumer group: a group's members share
    # partitions, so every member of a group must consume the same topics
    group = settings.prefix + settings.app_id + ("" if set(roles) == set(ROLES) else "-" + "-".join(sorted(roles)))
    app = faust.App(
        group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        value_serializer="raw", key_serializer="raw",
        store="memory://", web_enabled=False,
        topic_partitions=settings.partitions,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        broker_commit_interval=1.0,
        stream_buffer_maxsize=4096,
        consumer_max_fetch_size=64 << 20,
        producer_max_request_size=64 << 20,
        datadir=str(datadir or Path(tempfile.gettempdir()) / f"fseflow-faust-{os.getpid()}"),
    )
    P = settings.partitions
    t_lots = app.topic(topics.lots, partitions=P)
    t_invoices = app.topic(topics.invoices, partitions=P)
    t_sink = app.topic(topics.files, topics.lots_rejected, partitions=P)
    t_lines = app.topic(topics.lines, partitions=P)

    ctx: dict[str, Any] = {}
    # a worker that liquidates and scores hands the features over in memory (stream/fraud_feed.py)
    feed = fraud_feed.Feed(settings.fraud_batch) if settings.fraud and {"liquidate", "fraud"} <= set(roles) else None

    def resources() -> dict[str, Any]:
        # loaded on first use, inside the worker (not at import): the directory is big
        if not ctx:
            t0 = time.perf_counter()
            ctx["ref"] = compile_reference()
            if "liquidate" in roles:  # only liquidation reads the directory (1.2 GB at full scale)
                ctx["bene"], ctx["pros"] = db.load_directory(settings.database_url)
            # autocommit: each sink batch is its own explicit transaction, reads never hold one open
            ctx["conn"] = db.connect(settings.database_url, autocommit=True)
            ctx["producer"] = producer(settings)
            ctx["delivery"] = Delivery()
            ctx["states"] = {}
            ctx["seen"] = {}
            log.info("worker resources loaded in %.1f s", time.perf_counter() - t0)
        return ctx

    def highwater(tp: Any) -> Any:
        try:
            return app.consumer.highwater(tp)
        except Exception:  # not known yet for this partition: no lag figure rather than a crash
            return None

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: set, **kwargs: Any) -> None:
        owned.update(tp.partition for tp in assigned if tp.topic == topics.invoices)
        if feed is not None:
            # records of these partitions a previous owner sent but never scored (it crashed, or
            # lost them mid-step) are read back from the broker by the next fraud step
            feed.catch_up.update(tp.partition for tp in assigned if tp.topic == topics.invoices)
        # tells a supervising process (stream/runner.py) that this worker has joined and is ready
        ready = os.environ.get("FSEFLOW_READY_FILE")
        if ready:
            Path(ready).write_text(str(os.getpid()))

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set, **kwargs: Any) -> None:
        # a revoked partition may be liquidated elsewhere: its state must be rebuilt on return
        owned.difference_update(tp.partition for tp in revoked if tp.topic == topics.invoices)
        states = ctx.get("states")
        if states is not None:
            for tp in revoked:
                if tp.topic == topics.invoices:
                    states.pop(tp.partition, None)
                    snapshots.pop(tp.partition, None)

    app_id = settings.prefix + settings.app_id
    owned: set[int] = set()                          # partitions of fse.invoices this worker holds now
    snapshots: dict[int, float] = {}                 # partition → when its last snapshot was written
    topics_now: list[str] = []                       # the topics' incarnation, read once

    def current_incarnation() -> str:
        if not topics_now:
            topics_now.append(incarnation(settings.kafka_bootstrap, topics))
        return topics_now[0]

    def restore(p: int) -> PartitionState:
        """Partition p's state as PostgreSQL holds it: the snapshot and the changes after it,
        written with the décomptes they reflect. Offsets of another incarnation of the topics are
        dropped: the journal sends again what is not complete, and resent invoices already
        written are recognised by their key (`state_store.written`)."""
        with db.connect(settings.database_url, autocommit=True) as conn:
            state, changes, from_snapshot = state_store.read_state(conn, app_id, p)
        other = state.adopt(current_incarnation())
        snapshots.setdefault(p, time.monotonic())
        log.info("partition %d: state restored from PostgreSQL (%s, %d changes after it; %d entries, next offset %d%s)",
                 p, "from snapshot" if from_snapshot else "no snapshot", changes, int(state.table.used[0]),
                 state.next_offset, "; offsets of another broker incarnation dropped" if other else "")
        return state

    async def with_postgres(stage: str, work: Callable[[Any], Any], on_error: Callable[[], None] | None = None) -> Any:
        """`work(conn)` (a coroutine is awaited) on the agents' connection, once PostgreSQL
        answers: while it is away the stage backs off, one log line down and one back."""
        r = resources()
        wait = _Backoff(f"{stage}: PostgreSQL unavailable")
        while True:
            try:
                if r.get("conn") is None:
                    r["conn"] = db.connect(settings.database_url, autocommit=True)
                result = work(r["conn"])
                if inspect.isawaitable(result):
                    result = await result
                break
            except (psycopg.OperationalError, psycopg.InterfaceError, ServiceError) as exc:
                r["conn"] = None
                if on_error is not None:
                    on_error()
                await asyncio.sleep(wait.failed(exc))
        wait.recovered()
        return result

    async def decode_files(stream: Any) -> None:
        async for events in stream.take_events(settings.decode_batch, within=settings.batch_within):
            r = resources()
            t0 = time.perf_counter()
            items, bad = [], []
            for e in events:
                m = e.message
                try:
                    items.append((dec.Received.unpack(m.value), m.partition, m.offset))
                except (BatchFormatError, KeyError, TypeError, ValueError) as exc:
                    bad.append((m, exc))
            def seen_and_dead_letters(conn: Any) -> _Seen:
                seen = _Seen(r["seen"], conn, [i[0].file_id for i in items],
                             [dec.emitter_number(i[0].data) for i in items])
                for m, exc in bad:
                    dead_letter(conn, m, "decode", _one_line(str(exc)) if isinstance(exc, BatchFormatError)
                                else f"not an fseflow intake record: {type(exc).__name__}")
                return seen

            seen = await with_postgres("decode", seen_and_dead_letters)
            out = dec.decode_step(items, r["ref"], P, seen)
            for m, exc in bad:
                # a value that is not an intake record: refused with its reason, kept in PostgreSQL
                src, fid = f"{m.partition}:{m.offset}", hashlib.sha256(m.value or b"").hexdigest()
                name = f"record {src} of {topics.lots}"
                msg = f"not an fseflow intake record: {type(exc).__name__}"
                out.receipts.append(dec.unreadable_receipt(None, src, dec.NOT_B2, msg, file_id=fid, name=name))
                out.refused.append(dec.unreadable_refusal(name, fid, src, dec.NOT_B2, msg))
            prod, delivery = r["producer"], r["delivery"]
            for p, value in out.invoices.items():
                prod.produce(topics.invoices, value=value, key=_key(p), partition=p, on_delivery=delivery)
            flush(prod)
            delivery.check()
            # receipts and refusals only once the invoices are safely on their topic
            # one record per step, not per file: every event costs the sink its per-event path
            if out.refused:
                prod.produce(topics.lots_rejected, value=orjson.dumps(out.refused),
                             key=out.refused[0]["file_id"].encode(), on_delivery=delivery)
            if out.receipts:
                prod.produce(topics.files, value=orjson.dumps(out.receipts),
                             key=out.receipts[0]["file_id"].encode(), on_delivery=delivery)
            flush(prod)
            delivery.check()
            metrics.record_receipts(out.receipts)
            metrics.record_batch("decode", events, time.perf_counter() - t0, highwater)

    def lines_delivered(p: int, cols: dict[str, np.ndarray]) -> Any:
        delivery = resources()["delivery"]
        if feed is None:
            return delivery

        def on_delivery(err: Any, msg: Any) -> None:
            delivery(err, msg)
            if err is None:
                feed.hand(msg.partition(), fraud_feed.Record(msg.offset(), p, cols))
        return on_delivery

    def dead_letter(conn: Any, m: Any, stage: str, reason: str, file_id: str | None = None) -> None:
        """Keep a record a stage cannot process, with where it came from and why; the stage goes on."""
        conn.execute("INSERT INTO dead_letters (topic, partition, \"offset\", incarnation, stage, reason, file_id, value)"
                     " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                     (m.topic, m.partition, m.offset, current_incarnation(), stage, reason, file_id, m.value))
        journal.dead_letter(conn, file_id, reason)
        metrics.DEAD_LETTERS.labels(stage).inc()
        log.warning("dead letter: %s[%d]@%d at %s: %s", m.topic, m.partition, m.offset, stage, reason)

    def liquidate_partition(p: int, msgs: list[Any], conn: Any) -> tuple[PartitionState, Any] | None:
        """Liquidate one partition's records of a step on its state (not committed yet)."""
        r = resources()
        state = r["states"][p]
        todo = [m for m in sorted(msgs, key=lambda m: m.offset) if m.offset >= state.next_offset]
        if not todo:
            return None
        batches, bad = [], []
        for m in todo:
            try:
                batches.append(dec.unpack_invoices(m.value))
            except (BatchFormatError, KeyError, TypeError, ValueError) as exc:
                bad.append((m, f"not an invoices batch: {type(exc).__name__}"))
        for m, why in bad:
            dead_letter(conn, m, "liquidate", why)
        if not batches:
            state.next_offset = todo[-1].offset + 1
            return state, None
        known = resent_written(conn, batches)
        out = liquidate_step(state, batches, todo[-1].offset + 1, r["bene"], r["pros"], r["ref"],
                             fraud=settings.fraud, known=known)
        return state, out

    def resent_written(conn: Any, batches: list[Any]) -> set[tuple[str, int]]:
        """Invoices of files sent again from the journal whose décompte PostgreSQL already holds."""
        ids, records = [], []
        for b in batches:
            resent = b.meta.get("resent")
            if resent is None or not resent.any():
                continue
            for i in np.flatnonzero(resent).tolist():
                ids.append(b.files[int(b.meta["file_ix"][i])][0])
                records.append(int(b.meta["record_ordinal"][i]))
        return state_store.written(conn, ids, records)

    def commit_step(conn: Any, results: list[tuple[PartitionState, Any]]) -> int:
        """One transaction: the décomptes, their ledger entries, and each partition's new state."""
        inserted = 0
        now = time.monotonic()
        with conn.transaction():
            for state, out in results:
                if out is not None:
                    decomptes = out.paid + out.rejected
                    if decomptes:
                        inserted += store.write_decomptes(conn, decomptes)
                    if out.paid:
                        ledger_store.write_entries(conn, payments.entries(out.paid))
                state.step += 1
                if settings.snapshot_every >= 0 and now - snapshots.get(state.partition, now) >= settings.snapshot_every:
                    state_store.write_snapshot(conn, app_id, state)
                    snapshots[state.partition] = now
                else:
                    benes = out.benes if out is not None else np.zeros(0, np.int64)
                    state_store.write_change(conn, app_id, state, state.changelog(benes))
        return inserted

    async def liquidate(stream: Any) -> None:
        async for events in stream.take_events(settings.liquidate_batch, within=settings.batch_within):
            r = resources()
            t0 = time.perf_counter()
            by_partition: dict[int, list[Any]] = defaultdict(list)
            for e in events:
                by_partition[e.message.partition].append(e.message)
            def forget_states() -> None:
                # nothing of the step is committed: its states are read back from PostgreSQL
                # and the same events liquidated again once it answers
                for p in by_partition:
                    r["states"].pop(p, None)

            results = await with_postgres("liquidate", lambda conn: liquidate_events(conn, by_partition),
                                          on_error=forget_states)
            prod, delivery = r["producer"], r["delivery"]
            decomptes: list[dict[str, Any]] = []
            for state, out in results:
                if out is None:
                    continue
                p = state.partition
                decomptes += out.paid + out.rejected
                metrics.KERNEL_SECONDS.inc(out.kernel_seconds)
                metrics.record_liquidated(out.paid + out.rejected, out.decoded_at, out.liquidated_at)
                metrics.record_state(p, int(state.table.used[0]), state.table.slots.nbytes)
                # the décomptes for outside consumers, once PostgreSQL holds them
                if out.paid:
                    prod.produce(topics.decomptes, value=orjson.dumps(out.paid), key=_key(p), partition=p,
                                 on_delivery=delivery)
                if out.rejected:
                    prod.produce(topics.rejects, value=orjson.dumps(out.rejected), key=_key(p), partition=p,
                                 on_delivery=delivery)
                if out.lines and out.lines["ps"].shape[0]:
                    # the fraud side stream's features: one record per step, in the liquidate
                    # partition; once acknowledged, handed to this worker's fraud step in memory
                    prod.produce(topics.lines, value=batch.pack({"liq_partition": p}, out.lines),
                                 key=_key(p), partition=p, on_delivery=lines_delivered(p, out.lines))
            flush(prod)
            delivery.check()
            metrics.record_written(decomptes, r.get("inserted", 0), time.time())
            metrics.record_batch("liquidate", events, time.perf_counter() - t0, highwater)

    async def liquidate_events(conn: Any, by_partition: dict[int, list[Any]]) -> list[tuple[PartitionState, Any]]:
        r = resources()
        missing = [p for p in by_partition if p not in r["states"]]
        if missing:
            # in threads: a long restore must not stall the event loop, which answers the
            # rebalance callbacks
            loop = asyncio.get_running_loop()
            restored = await asyncio.gather(*(loop.run_in_executor(None, restore, p) for p in missing))
            for p, state in zip(missing, restored):
                if p in owned:
                    r["states"][p] = state
                else:
                    # revoked while restoring: its new owner liquidates these events
                    log.info("partition %d revoked during its restore: batch left to its new owner", p)
        results = []
        try:
            for p, msgs in by_partition.items():
                if p in r["states"]:
                    res = liquidate_partition(p, msgs, conn)
                    if res is not None:
                        results.append(res)
            r["inserted"] = commit_step(conn, results)
        except StoreError:
            # a record PostgreSQL refuses: each partition is tried on its own (refuse_partitions)
            for state, _ in results:
                r["states"].pop(state.partition, None)
            return await refuse_partitions(conn, by_partition)
        except BaseException:
            # nothing committed: the states advanced in memory are read back
            for state, _ in results:
                r["states"].pop(state.partition, None)
            raise
        return results

    async def refuse_partitions(conn: Any, by_partition: dict[int, list[Any]]) -> list[tuple[PartitionState, Any]]:
        """Each partition of a refused step on its own: a partition that still fails keeps its
        records as dead letters, and its state moves past them (nothing of theirs counted)."""
        r = resources()
        results = []
        for p, msgs in by_partition.items():
            if p not in r["states"]:
                r["states"][p] = await asyncio.get_running_loop().run_in_executor(None, restore, p)
            if p not in owned:
                continue
            try:
                res = liquidate_partition(p, msgs, conn)
                if res is not None:
                    r["inserted"] = commit_step(conn, [res])
                    results.append(res)
            except StoreError as exc:
                r["states"].pop(p, None)
                state = restore(p)
                todo = [m for m in msgs if m.offset >= state.next_offset]
                if not todo:
                    r["states"][p] = state
                    continue
                with conn.transaction():
                    for m in todo:
                        dead_letter(conn, m, "liquidate", str(exc), _first_file(m.value))
                    state.next_offset = max(m.offset for m in todo) + 1
                    state.step += 1
                    state_store.write_change(conn, app_id, state, state.changelog(np.zeros(0, np.int64)))
                r["states"][p] = state
        return results

    async def sink(stream: Any) -> None:
        """Receipts and refused lots and files (décomptes are written by the liquidate step)."""
        async for events in stream.take_events(settings.sink_batch, within=settings.batch_within):
            r = resources()
            t0 = time.perf_counter()
            await with_postgres("sink", lambda conn: write_receipts(conn, events))
            metrics.record_batch("sink", events, time.perf_counter() - t0, highwater)

    def write_receipts(conn: Any, events: list[Any]) -> None:
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        bad = []
        for e in events:
            try:
                rows[e.message.topic].extend(orjson.loads(e.message.value))
            except orjson.JSONDecodeError:
                bad.append(e.message)
        try:
            with conn.transaction():
                write_rows(conn, rows)
                for m in bad:
                    dead_letter(conn, m, "sink", "not a JSON array of receipts or refusals")
        except StoreError:
            # one record at a time: the ones PostgreSQL refuses are kept as dead letters
            for e in events:
                m = e.message
                try:
                    with conn.transaction():
                        write_rows(conn, {m.topic: orjson.loads(m.value)})
                except (StoreError, orjson.JSONDecodeError) as exc:
                    with conn.transaction():
                        dead_letter(conn, m, "sink", str(exc))

    def write_rows(conn: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
        if rows.get(topics.files):
            store.write_files(conn, rows[topics.files])
        if rows.get(topics.lots_rejected):
            store.write_refused(conn, rows[topics.lots_rejected])

    # the fraud step runs in its own thread with its own connection: it waits on row locks the
    # other workers hold (a practitioner's rows are shared), and while it waits the event loop
    # must go on decoding and liquidating
    # (named for the OS and for PostgreSQL: the stream benchmark reads the side stream's own CPU
    # from the thread's and the backend's counters)
    fraud_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=FRAUD_THREAD,
                                      initializer=_name_os_thread, initargs=(FRAUD_THREAD,))
    fraud_io: dict[str, Any] = {}

    def fraud_step_in_thread(records: dict[int, list[fraud_feed.Record]],
                             catch_up: set[int]) -> tuple[list[dict[str, Any]], int]:
        if not fraud_io:
            fraud_io["conn"] = db.connect(settings.database_url, autocommit=True, application_name=FRAUD_THREAD)
            fraud_io["lines"] = fraud_feed.LinesLog(settings.kafka_bootstrap, topics.lines, f"{app.conf.id}-lines",
                                                    settings.restore_timeout)
        # the fraud offsets are of fse.lines of this incarnation of the topics only
        return fraud_feed.step(fraud_io["conn"], f"{app_id}@{current_incarnation()}", records, catch_up,
                               fraud_io["lines"])

    def send_alerts(alerts: list[dict[str, Any]]) -> None:
        prod = resources()["producer"]
        for a in alerts:
            # keyed by who is alerted: a practitioner, or a beneficiary's pseudonymous row
            key = str(a["practitioner"]) if "practitioner" in a else f"bene:{a['bene']}"
            prod.produce(topics.alerts, value=orjson.dumps(a), key=key.encode())
        if alerts:
            prod.poll(0)

    async def fraud_scoring(stream: Any) -> None:
        """A worker that scores only: the fraud step over the `fse.lines` records faust reads."""
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(settings.fraud_batch, within=settings.fraud_within):
            t0 = time.perf_counter()
            records: dict[int, list[fraud_feed.Record]] = defaultdict(list)
            for e in events:
                meta, cols = batch.unpack(e.message.value)
                records[e.message.partition].append(fraud_feed.Record(e.message.offset, int(meta["liq_partition"]),
                                                                      cols))
            alerts, _ = await loop.run_in_executor(fraud_thread, fraud_step_in_thread, records, set())
            send_alerts(alerts)
            metrics.record_batch("fraud", events, time.perf_counter() - t0, highwater)

    async def fraud_pump() -> None:
        """Practitioner-day and beneficiary-day sums and scores (stream/fraud.py) over the
        features this worker's liquidate step handed over: offsets and sums in one PostgreSQL
        transaction per step, so a replay adds nothing; alerts to fraud.alerts. A side stream:
        a step every FSEFLOW_FRAUD_WITHIN s (default 2 s) costs few round trips to PostgreSQL per
        line, and it runs off the event loop, so it never holds liquidation up."""
        assert feed is not None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(settings.fraud_within)
            records, catch_up, handed_at = feed.take()
            if not records and not catch_up:
                continue
            t0 = time.perf_counter()
            try:
                alerts, counted = await loop.run_in_executor(fraud_thread, fraud_step_in_thread, records, catch_up)
            except Exception:  # PostgreSQL or the broker away: the records wait on the broker
                log.exception("fraud step failed; its records are read back from %s next time", topics.lines)
                feed.put_back(records, catch_up)
                continue
            send_alerts(alerts)
            metrics.record_side_step("fraud", topics.lines, counted, time.perf_counter() - t0, handed_at)

    agents = {"decode": (t_lots, decode_files), "liquidate": (t_invoices, liquidate), "sink": (t_sink, sink),
              "fraud": (t_lines, fraud_scoring)}
    for role in roles:
        if role == "fraud" and (not settings.fraud or feed is not None):
            continue
        topic, fn = agents[role]
        app.agent(topic, name=f"fseflow.{role}")(fn)
    if feed is not None:
        app.task(fraud_pump)
    if "fraud" in roles and settings.fraud and settings.fraud_month_every > 0:
        since: list[Any] = [None]

        def month_pass() -> None:
            with db.connect(settings.database_url, autocommit=True) as conn:
                since[0], scored = fraud_store.score_touched(conn, since[0])
            if scored:
                log.info("fraud month pass: %d practitioner-months scored", scored)

        @app.timer(settings.fraud_month_every, on_leader=True)
        async def fraud_months() -> None:
            """The month scoring over every partition's sums, off the event loop."""
            await asyncio.get_running_loop().run_in_executor(None, month_pass)
    if preload:
        resources()
    return app


class _Backoff:
    """Waits between retries while a service is away: 0.5 s doubling to 10 s, one log line when
    it goes away and one when it is back (not a traceback per retry)."""

    def __init__(self, what: str) -> None:
        self.what, self.delay, self.since = what, 0.5, 0.0

    def failed(self, exc: BaseException) -> float:
        if not self.since:
            self.since = time.monotonic()
            log.warning("%s (%s): retrying with backoff", self.what, type(exc).__name__)
        delay, self.delay = self.delay, min(self.delay * 2, 10.0)
        return delay

    def recovered(self) -> None:
        if self.since:
            log.warning("%s: back after %.1f s", self.what, time.monotonic() - self.since)
            self.since = 0.0


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _first_file(value: bytes | None) -> str | None:
    """The first file_id an invoices batch names, for its journal entry (None when unreadable)."""
    try:
        return str(batch.unpack(value or b"")[0]["files"][0][0])
    except Exception:  # a record this bad names no file
        return None


class _Seen(dict):  # type: ignore[type-arg]
    """C09 identities: this worker's memory, backed by the `files` table for earlier runs.

    `fse.lots` is keyed by emitter, so one worker sees all of an emitter's files at a time; the
    memory covers files still in flight, PostgreSQL everything already received."""

    def __init__(self, memory: dict[str, str], conn: Any, file_ids: list[str], emitters: list[int]) -> None:
        super().__init__()
        self.memory = memory
        from fseflow.infra import store
        for k, v in store.seen_files(conn, file_ids, [e for e in emitters if e >= 0]).items():
            memory.setdefault(k, v)
        self.update(memory)

    def __setitem__(self, k: str, v: str) -> None:
        super().__setitem__(k, v)
        self.memory[k] = v
