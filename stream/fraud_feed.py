"""The fraud side stream's feed: `fse.lines` records on their way to the fraud step.

A worker that liquidates and scores hands each step's line features to its fraud thread in
memory, once the `fse.lines` record holding them is acknowledged by the broker. The broker copy
is the durable log, read back only when memory misses records: between the offset PostgreSQL
says is next (`fraud_offsets`) and the records in memory there is a gap after a crash, a
partition taken over from another worker, or a backlog dropped from memory. The features then
make no second trip through the broker and faust: that trip cost the pipeline about as much CPU
as the scoring itself (README, fraud cost). A worker that scores only (role `fraud` without
`liquidate`) consumes `fse.lines` through faust and calls the same step.

Every record counts once whoever reads it, and however often: the step reads a partition's
next offset under a row lock, in the transaction that adds the sums and moves the offset.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any, NamedTuple

import numpy as np
import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition

from fseflow.codecs import batch
from fseflow.infra import fraud_store
from fseflow.processors import fraud_lines
from fseflow.stream import fraud as fraud_sums

log = logging.getLogger("fseflow.stream")


class Record(NamedTuple):
    """One `fse.lines` record: its offset, the liquidate partition it came from, its columns."""
    offset: int
    liq_partition: int
    cols: dict[str, np.ndarray]


class LinesLog:
    """`fse.lines` read back from the broker: assigned partitions, nothing committed (the
    offsets that count are in PostgreSQL)."""

    def __init__(self, bootstrap: str, topic: str, group: str, timeout: float = 30.0) -> None:
        self.bootstrap, self.topic, self.group, self.timeout = bootstrap, topic, group, timeout
        self._consumer: Consumer | None = None

    def read(self, partition: int, start: int, end: int | None = None) -> list[Record]:
        """The records of `partition` from offset `start` up to `end` excluded (None: up to the
        high watermark)."""
        if self._consumer is None:
            self._consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                                       "enable.auto.commit": False, "fetch.max.bytes": 64 << 20})
        c = self._consumer
        low, high = c.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10)
        stop = high if end is None else min(end, high)
        if start < low:
            # retention removed them: the sums miss those lines, and the log says which ones
            log.error("%s[%d]: offsets %d..%d are gone from the broker (low watermark %d); their lines are not"
                      " counted by fraud scoring", self.topic, partition, start, low - 1, low)
            start = low
        out: list[Record] = []
        if start >= stop:
            return out
        c.assign([TopicPartition(self.topic, partition, start)])
        try:
            idle_since, done = time.monotonic(), start
            while done < stop:
                msgs = c.consume(1000, timeout=0.3)
                for m in msgs:
                    if m.error():
                        raise KafkaException(m.error())
                    if m.offset() >= stop:
                        break
                    meta, cols = batch.unpack(m.value())
                    out.append(Record(m.offset(), int(meta["liq_partition"]), cols))
                    done = m.offset() + 1
                if msgs:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > self.timeout:
                    raise KafkaException(f"{self.topic}[{partition}]: read stalled at offset {done} below {stop}")
        finally:
            c.unassign()
        log.info("%s[%d]: %d records read back from the broker (offsets %d..%d)", self.topic, partition, len(out),
                 start, stop - 1)
        return out

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


class Feed:
    """The records handed in memory and not yet scored, per `fse.lines` partition, and the
    partitions to catch up on from the broker. Used from the worker's event loop only."""

    def __init__(self, cap: int) -> None:
        self.cap = cap          # records kept per partition; past it they are left on the broker
        self.records: dict[int, list[Record]] = defaultdict(list)
        self.catch_up: set[int] = set()
        self.handed_at: dict[int, float] = {}   # partition → when its oldest waiting record came

    def hand(self, partition: int, record: Record) -> None:
        waiting = self.records[partition]
        if len(waiting) >= self.cap:
            # the fraud step is behind (PostgreSQL slow or locked): memory stays bounded, and
            # the step reads these records back from the broker when it catches up
            waiting.clear()
            self.catch_up.add(partition)
        waiting.append(record)
        self.handed_at.setdefault(partition, time.time())

    def take(self) -> tuple[dict[int, list[Record]], set[int], dict[int, float]]:
        records, catch_up, handed_at = dict(self.records), self.catch_up, self.handed_at
        self.records, self.catch_up, self.handed_at = defaultdict(list), set(), {}
        return records, catch_up, handed_at

    def put_back(self, records: dict[int, list[Record]], catch_up: set[int]) -> None:
        """A failed step's records: read back from the broker next time (the newer ones stay)."""
        self.catch_up |= catch_up | {q for q, rs in records.items() if rs}


def with_gaps_filled(records: list[Record], next_offset: int, lines: LinesLog, partition: int,
                     to_end: bool) -> list[Record]:
    """The records of one partition from `next_offset` on, in offset order: those in memory, and
    those missing before or between them read from the broker (after them too, `to_end`)."""
    out: list[Record] = []
    expected = next_offset
    for r in sorted({r.offset: r for r in records if r.offset >= next_offset}.values()):
        if r.offset > expected:
            out += lines.read(partition, expected, r.offset)
        out.append(r)
        expected = r.offset + 1
    if to_end:
        out += lines.read(partition, expected)
    return out


def step(conn: psycopg.Connection[Any], app_id: str, records: dict[int, list[Record]], catch_up: set[int],
         lines: LinesLog, attempts: int = 5) -> tuple[list[dict[str, Any]], int]:
    """Add the records not yet counted of every partition to the fraud sums, in one transaction
    with their offsets; returns (the new alerts, the records counted). A practitioner's rows are
    shared between workers: a deadlock with another worker rolls the step back, and it runs again."""
    for attempt in range(1, attempts + 1):
        try:
            with conn.transaction():
                offsets: dict[int, tuple[int, dict[str, int]]] = {}
                parts = []
                for q in sorted(set(records) | catch_up):
                    next_offset, marks = fraud_store.read_offsets(conn, app_id, q)
                    todo = with_gaps_filled(records.get(q, []), next_offset, lines, q, q in catch_up)
                    if not todo:
                        continue
                    for r in todo:
                        # a liquidate step replayed after a crash sends its lines again: the
                        # upstream watermarks drop them
                        parts.append(fraud_lines.select(r.cols, fraud_store.fresh(r.cols, r.liq_partition, marks)))
                    offsets[q] = (todo[-1].offset + 1, marks)
                if not offsets:
                    return [], 0
                cols = {k: np.concatenate([c[k] for c in parts]) for k in parts[0]}
                return fraud_store.add_step(conn, app_id, offsets, fraud_sums.step_sums(cols)), len(parts)
        except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            if attempt == attempts:
                raise
            log.warning("fraud step rolled back by a deadlock, attempt %d", attempt)
    return [], 0
