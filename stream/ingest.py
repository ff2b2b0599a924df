"""Intake: B2 files onto `fse.lots` (confluent-kafka producer, idempotent, acks=all).

A file's identity is the SHA-256 of its bytes; the record is keyed by the emitter's PS number so
that every file of an emitter meets the same decode partition (C09 is checked there).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from fseflow.exceptions import InputError
from fseflow.stream.app import Delivery, flush, producer
from fseflow.stream.decode import Received, emitter_key
from fseflow.stream.settings import Settings
from fseflow.stream.topics import Topics, ensure_topics


@dataclass
class Ingested:
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0


def received(data: bytes, name: str, reception_date: int | None = None, at: float | None = None) -> Received:
    return Received(hashlib.sha256(data).hexdigest(), name, time.time() if at is None else at, reception_date, data)


def ingest(paths: Iterable[Path], settings: Settings, reception_date: int | None = None,
           on_file: Callable[[Path], None] | None = None, rate: float | None = None) -> Ingested:
    """Send the files, in order; returns once every record is acknowledged by the broker.

    `rate` (files per second) paces the sending, for latency measurements at an offered load."""
    topics = Topics.named(settings.prefix)
    ensure_topics(settings.kafka_bootstrap, topics, settings.partitions)
    prod, delivery = producer(settings), Delivery()
    done = Ingested()
    t0 = time.perf_counter()
    for k, path in enumerate(paths):
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InputError(f"{path}: cannot read ({e.strerror})") from None
        if rate:
            wait = t0 + k / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        rec = received(data, path.name, reception_date)
        prod.produce(topics.lots, value=rec.pack(), key=emitter_key(data), on_delivery=delivery)
        prod.poll(0)
        done.files += 1
        done.bytes += len(data)
        if on_file is not None:
            on_file(path)
    flush(prod)
    delivery.check()
    done.seconds = time.perf_counter() - t0
    return done
