"""Drop-folder intake behind `fseflow serve --spool DIR`: complete files → ARL, `fse.lots`, archive.

Layout of the spool folder (sub-folders created on start):

    DIR/X.b2                      dropped by a producer (written as `X.b2.part`, then renamed)
    DIR/archive/X.b2              a file taken: sent to `fse.lots`, or a duplicate not sent again
    DIR/archive/X.b2.arl          its ARL, next to it (built from the structural decode)
    DIR/archive/X.b2.dup          only for a duplicate: names the file first received with those bytes
    DIR/archive/index.jsonl       one JSON line per file sent: sha256, name, archived, received_at
    DIR/quarantine/X.b2           a file that is not B2 at all (nothing sent, no ARL)
    DIR/quarantine/X.b2.reason    one line naming the file, the record and what is wrong

A file is taken once it is complete: its name has no `.part`/`.tmp` suffix and no leading dot
(the rename convention), and its size and mtime are unchanged across two scans `settle` seconds
apart (for producers that write in place). Only regular files count (sub-folders and symlinks
are ignored). Its reception day and time (ARL, `Received`) are the local time it was taken.
An archived or quarantined name that is taken gets the SHA-256 prefix (`<sha12>.X.b2`): nothing
is ever overwritten. Only input errors quarantine a file; any other exception is a fault of
ours and propagates, leaving the file in the drop folder.

A file's identity is the SHA-256 of its bytes. Bytes already in the index are acknowledged
(ARL status N, reason 8009-001, as the decode agent does for C09) and archived, not sent again;
a file refused as a whole (ARL N) is still sent the first time, so its refusal is recorded
downstream, and a copy of it gets its own negative ARL again.

Crash safety: each file goes send → flush (broker ack) → index append (fsync) → ARL → move
(the files of one scan are sent in chunks of up to 64, one flush per chunk).
- Death before the index append: the file is still in DIR and its SHA-256 unknown, so it is sent
  again on restart. Harmless: the decode agent acknowledges a second record with the same SHA-256
  as a C09 duplicate, and receipts and décomptes are idempotent in PostgreSQL (natural keys).
- Death after the index append, before the move: the index names the file but its archived copy
  is missing; the restart finishes the ARL and the move without sending (outcome "sent").
One Spool per folder at a time: a lock file (`DIR/.spool.lock`) enforces it.

Logs and `.reason` files carry file names, SHA-256 and record/field positions, never a
personal value (decode errors are built that way, see codecs/exceptions.py).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import orjson
from confluent_kafka import KafkaException, Producer

from fseflow.codecs import arl, b2
from fseflow.codecs.exceptions import CodecError
from fseflow.days import to_days
from fseflow.exceptions import FseflowError, InputError
from fseflow.stream.app import Delivery, flush, producer
from fseflow.offline import duplicate_reason
from fseflow.stream.decode import Received, emitter_key
from fseflow.stream.settings import Settings
from fseflow.stream.topics import Topics, ensure_topics

log = logging.getLogger("fseflow.stream.spool")

Outcome = Literal["sent", "duplicate", "quarantined"]
INDEX = "index.jsonl"
#: names of files still being written (rename convention)
PARTIAL_SUFFIXES = (".part", ".tmp")
_SIDECARS = (".arl", ".dup", ".reason")
#: files sent per broker round trip: one flush per chunk, not per file
_CHUNK_FILES = 64
_CHUNK_BYTES = 64 << 20


class SpoolError(FseflowError):
    """The spool folder cannot be used (another Spool holds it, or it is not a folder)."""


@dataclass(frozen=True)
class SpoolEvent:
    """One file handled by a scan."""

    name: str
    sha256: str
    outcome: Outcome
    reason: str
    moved_to: Path


@dataclass
class _Job:
    path: Path
    data: bytes
    sha256: str
    at: float                          # when the file was taken (epoch s)
    outcome: Outcome = "sent"
    reason: str = ""
    decoded: b2.Decoded | None = None
    first: dict[str, Any] | None = None  # index entry of the bytes' first receipt
    target: Path | None = None
    resume: bool = False               # sent before a crash: only the ARL and the move are left


def _day_time(at: float) -> tuple[int, int]:
    """Reception day number and HHMMSS (local time) of an epoch time."""
    t = dt.datetime.fromtimestamp(at)
    return to_days(t.date()), t.hour * 10000 + t.minute * 100 + t.second


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Spool:
    """A drop folder watched by scans; see the module docstring for the contract."""

    def __init__(self, folder: Path, settings: Settings, *, settle: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SpoolError(f"{self.folder}: not a folder")
        self.settings = settings
        self.settle = settle
        self.clock = clock
        self.archive = self.folder / "archive"
        self.quarantine = self.folder / "quarantine"
        for d in (self.archive, self.quarantine):
            d.mkdir(exist_ok=True)
        lock = os.open(self.folder / ".spool.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)
            raise SpoolError(f"{self.folder}: already watched by another spool process") from None
        self._lock = lock
        self.topics = Topics.named(settings.prefix)
        self.index: dict[str, dict[str, Any]] = self._load_index()
        # name → (size, mtime_ns, since): the last stat seen and since when it has not changed
        self._seen: dict[str, tuple[int, int, float]] = {}
        self._producer: Producer | None = None
        self._delivery = Delivery()

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the folder (the producer needs no closing: every send was flushed)."""
        if getattr(self, "_lock", -1) >= 0:
            os.close(self._lock)  # releases the flock
            self._lock = -1

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def run(self, stop: threading.Event | None = None, interval: float = 0.5) -> None:
        """Scan every `interval` seconds until `stop` is set (the CLI sets it on SIGTERM/SIGINT)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                self.scan_once()
            except KafkaException as e:
                # the files stay in the drop folder and are retried at the next scan
                log.warning("spool: broker unavailable, retrying (%s)", e)
            stop.wait(interval)

    # --- index -----------------------------------------------------------------------------

    def _load_index(self) -> dict[str, dict[str, Any]]:
        path = self.archive / INDEX
        if not path.exists():
            return {}
        raw = path.read_bytes()
        if raw and not raw.endswith(b"\n"):
            # a crash cut the last append: that file was not moved, so it is simply sent again
            keep = raw.rfind(b"\n") + 1
            with open(path, "r+b") as f:
                f.truncate(keep)
                os.fsync(f.fileno())
            raw = raw[:keep]
        out: dict[str, dict[str, Any]] = {}
        for line in raw.splitlines():
            if line.strip():
                entry = orjson.loads(line)
                out.setdefault(entry["sha256"], entry)
        return out

    def _append_index(self, entry: dict[str, Any]) -> None:
        with open(self.archive / INDEX, "ab") as f:
            f.write(orjson.dumps(entry) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self.index[entry["sha256"]] = entry

    # --- scanning --------------------------------------------------------------------------

    def ready(self) -> list[Path]:
        """Complete files of the drop folder, in name order (updates the settle bookkeeping)."""
        now = self.clock()
        out: list[Path] = []
        present: set[str] = set()
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            name = entry.name
            if name.startswith(".") or name.endswith(PARTIAL_SUFFIXES):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            present.add(name)
            stat = (st.st_size, st.st_mtime_ns)
            prev = self._seen.get(name)
            if prev is None or prev[:2] != stat:
                self._seen[name] = (*stat, now)
            elif now - prev[2] >= self.settle:
                out.append(Path(entry.path))
        for gone in self._seen.keys() - present:
            del self._seen[gone]
        return out

    def scan_once(self) -> list[SpoolEvent]:
        """Take every complete file once; one event per file handled."""
        events: list[SpoolEvent] = []
        chunk: list[Path] = []
        size = 0
        for path in self.ready():
            chunk.append(path)
            size += self._seen[path.name][0]
            if len(chunk) >= _CHUNK_FILES or size >= _CHUNK_BYTES:
                events += self._handle(chunk)
                chunk, size = [], 0
        if chunk:
            events += self._handle(chunk)
        return events

    # --- one chunk -------------------------------------------------------------------------

    def _handle(self, paths: list[Path]) -> list[SpoolEvent]:
        jobs: list[_Job] = []
        in_flight: dict[str, dict[str, Any]] = {}  # sha → pseudo index entry of a file sent in this chunk
        reserved: set[str] = set()                 # archive names chosen in this chunk
        for path in paths:
            job = self._prepare(path, in_flight, reserved)
            if job is not None:
                jobs.append(job)
        to_send = [j for j in jobs if j.outcome == "sent" and not j.resume]
        if to_send:
            self._send(to_send)
        events = []
        for job in jobs:
            events.append(self._finish(job))
            log.info("spool: %s %s sha256=%s %s", job.outcome, job.path.name, job.sha256[:12], job.reason)
        return events

    def _prepare(self, path: Path, in_flight: dict[str, dict[str, Any]], reserved: set[str]) -> _Job | None:
        at = self.clock()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._seen.pop(path.name, None)  # removed by its producer meanwhile
            return None
        except OSError as e:
            return self._quarantined(path, at, f"file={path.name}: cannot read ({e.strerror})", reserved, "")
        settled = self._seen.get(path.name)
        if settled is None or len(data) != settled[0]:
            self._seen.pop(path.name, None)  # changed since it settled: wait for it to settle again
            return None
        sha = hashlib.sha256(data).hexdigest()
        first = self.index.get(sha) or in_flight.get(sha)
        resume = False
        if first is not None and self._resumable(path, first):
            resume, at = True, first["received_at"]  # the ARL of an interrupted receipt keeps its time
        try:
            decoded = b2.decode(data, path.name, reception_date=_day_time(at)[0])
        except (InputError, CodecError) as e:
            # any other exception is a fault of ours, not of the file: it propagates, the file stays
            return self._quarantined(path, at, _one_line(str(e)), reserved, sha)
        job = _Job(path, data, sha, at, decoded=decoded)
        if resume:
            job.resume, job.first = True, first
            job.target = self.folder / first["archived"]
            job.reason = "sent before a restart: ARL and archiving completed"
        elif first is not None:
            job.outcome, job.first = "duplicate", first
            job.target = self._free(self.archive, path.name, sha, reserved)
            job.reason = f"already received as {first['name']} ({first['archived']}): acknowledged, not sent again"
        else:
            job.target = self._free(self.archive, path.name, sha, reserved)
            job.reason = f"ARL {decoded.status}"
            in_flight[sha] = {"sha256": sha, "name": path.name, "received_at": at,
                              "archived": job.target.relative_to(self.folder).as_posix()}
        return job

    def _resumable(self, path: Path, first: dict[str, Any]) -> bool:
        """The very file of an index entry whose move a crash interrupted."""
        return first["name"] == path.name and not (self.folder / first["archived"]).exists()

    def _quarantined(self, path: Path, at: float, reason: str, reserved: set[str], sha: str) -> _Job:
        if f"file={path.name}" not in reason:
            reason = f"file={path.name}: {reason}"
        return _Job(path, b"", sha, at, outcome="quarantined", reason=reason,
                    target=self._free(self.quarantine, path.name, sha, reserved))

    @staticmethod
    def _free(folder: Path, name: str, sha: str, reserved: set[str]) -> Path:
        """A name in `folder` taken by no file nor sidecar: the name, else prefixed by the SHA-256."""
        prefix = sha[:12] or "unreadable"
        candidates = [name, f"{prefix}.{name}"]
        k = 2
        while True:
            for cand in candidates:
                key = f"{folder.name}/{cand}"
                if (cand != INDEX and key not in reserved
                        and not any((folder / (cand + s)).exists() for s in ("", *_SIDECARS))):
                    reserved.add(key)
                    return folder / cand
            candidates = [f"{prefix}.{k}.{name}"]
            k += 1

    # --- Kafka -----------------------------------------------------------------------------

    def _send(self, jobs: list[_Job]) -> None:
        if self._producer is None:
            ensure_topics(self.settings.kafka_bootstrap, self.topics, self.settings.partitions)
            self._producer = producer(self.settings)
        records = [Received(j.sha256, j.path.name, j.at, _day_time(j.at)[0], j.data) for j in jobs]
        send(self._producer, self.topics.lots, records, self._delivery)

    # --- after the ack ---------------------------------------------------------------------

    def _finish(self, job: _Job) -> SpoolEvent:
        assert job.target is not None
        if job.outcome == "quarantined":
            _write_atomic(job.target.with_name(job.target.name + ".reason"), (job.reason + "\n").encode())
        else:
            assert job.decoded is not None
            if job.outcome == "sent" and not job.resume:
                self._append_index({"sha256": job.sha256, "name": job.path.name,
                                    "archived": job.target.relative_to(self.folder).as_posix(),
                                    "received_at": job.at})
            decoded = job.decoded
            if job.outcome == "duplicate":
                assert job.first is not None
                if decoded.status != "N":  # a refused file is answered with its own reasons again (C09 too)
                    decoded = _as_duplicate(decoded, job.first["name"])
                _write_atomic(job.target.with_name(job.target.name + ".dup"),
                              (f"duplicate of file={job.first['name']} archived as {job.first['archived']} "
                               f"sha256={job.sha256}: acknowledged, not sent again\n").encode())
            day, hhmmss = _day_time(job.at)
            _write_atomic(job.target.with_name(job.target.name + ".arl"),
                          arl.build(decoded, reception_date=day, reception_time=hhmmss))
        os.rename(job.path, job.target)
        _fsync_dir(job.target.parent)
        self._seen.pop(job.path.name, None)
        return SpoolEvent(job.path.name, job.sha256, job.outcome, job.reason, job.target)


def send(prod: Producer, topic: str, records: Iterable[Received], delivery: Delivery) -> None:
    """Produce received files to `topic` (keyed by emitter) and return once the broker acked them all."""
    for rec in records:
        prod.produce(topic, value=rec.pack(), key=emitter_key(rec.data), on_delivery=delivery)
        prod.poll(0)
    flush(prod)
    delivery.check()


def _as_duplicate(d: b2.Decoded, first: str) -> b2.Decoded:
    """The decoded file answered as a duplicate: whole file refused with 8009-001, lots not read."""
    reason = duplicate_reason(first)
    lots = [dataclasses.replace(lot, status="R", reasons=[]) for lot in d.lots]
    return dataclasses.replace(d, status="N", reasons=[reason], lots=lots)


__all__ = ["INDEX", "PARTIAL_SUFFIXES", "Spool", "SpoolError", "SpoolEvent", "send"]
