"""Drop-folder intake behind `fseflow serve --spool DIR`: complete files → ARL, `fse.lots`, archive.

Layout of the spool folder (sub-folders created on start):

    DIR/X.b2                      dropped by a producer (written as `X.b2.part`, then renamed)
    DIR/archive/X.b2              a file taken: sent to `fse.lots`, or a duplicate not sent again
    DIR/archive/X.b2.arl          its ARL, next to it (built from the structural decode)
    DIR/archive/X.b2.dup          only for a duplicate: names the file first received with those bytes
    DIR/quarantine/X.b2           a file that is not B2 at all (nothing sent, no ARL)
    DIR/quarantine/X.b2.reason    one line naming the file, the record and what is wrong

A file is taken once it is complete: its name has no `.part`/`.tmp` suffix and no leading dot
(the rename convention), and its size and mtime are unchanged across two scans `settle` seconds
apart (for producers that write in place). Only regular files count (sub-folders and symlinks
are ignored). Its reception day and time (ARL, `Received`) are the local time it was taken.
An archived or quarantined name that is taken gets the SHA-256 prefix (`<sha12>.X.b2`): nothing
is ever overwritten. Only input errors quarantine a file; any other exception is a fault of
ours and propagates, leaving the file in the drop folder.

A file's identity is the SHA-256 of its bytes, and PostgreSQL's intake journal
(infra/journal.py) is the record of every reception. Bytes whose reception is complete (every
décompte written, or refused) are acknowledged (ARL status N, reason 8009-001, as the decode
agent does for C09) and archived, not sent again; a copy of bytes still in flight waits in the
drop folder until they are complete (the journal sends the first copy again if the broker lost
it: `.dup` never answers a file lost in flight). A file refused as a whole (ARL N) is still sent
the first time, so its refusal is recorded downstream, and a copy of it gets its own negative
ARL again.

Crash safety: each file goes journal (PostgreSQL commit) → send → flush (broker ack) → ARL →
move (the files of one scan are journaled and sent in chunks of up to 64).
- PostgreSQL or the broker away: nothing is acknowledged, the files wait in the drop folder,
  one log line says so, and the spool resumes by itself when both answer.
- Death after the journal, before the move: the file is still in DIR; the restart finds it
  journaled, sends it again and finishes the ARL and the move (outcome "sent").
- A broker that loses its records: every journaled file not complete is sent again from the
  archive (`resend_pending`, at start and whenever the topics are new), marked as resent, so the
  invoices whose décompte PostgreSQL already holds are not liquidated twice.
One Spool per folder at a time: a lock file (`DIR/.spool.lock`) enforces it.

Logs and `.reason` files carry file names, SHA-256 and record/field positions, never a
personal value (decode errors are built that way, see codecs/exceptions.py).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import psycopg
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from fseflow.codecs import arl, b2
from fseflow.codecs.exceptions import CodecError
from fseflow.days import to_days
from fseflow.durable import fsync_dir, replace_atomic
from fseflow.exceptions import FseflowError, InputError
from fseflow.infra import db, journal
from fseflow.infra.exceptions import ServiceError
from fseflow.stream.app import Delivery, flush, producer
from fseflow.offline import duplicate_reason
from fseflow.stream.decode import MAX_NAME, Received, emitter_key
from fseflow.stream.settings import Settings
from fseflow.stream.topics import Topics, ensure_topics, incarnation

log = logging.getLogger("fseflow.stream.spool")

#: names of files still being written (rename convention)
PARTIAL_SUFFIXES = (".part", ".tmp")
_SIDECARS = (".arl", ".dup", ".reason")
#: files sent per broker round trip: one flush per chunk, not per file
_CHUNK_FILES = 64
#: seconds a send, or a question to the broker, may take before the broker counts as away: short,
#: so `serve` still exits within 10 s of SIGTERM while the broker is down
SEND_TIMEOUT = 3.0
_CHUNK_BYTES = 64 << 20


class SpoolError(FseflowError):
    """The spool folder cannot be used (another Spool holds it, or it is not a folder)."""


Outcome = Literal["sent", "duplicate", "quarantined", "waiting"]


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
    first: journal.Entry | None = None  # journal entry of the bytes' first reception
    target: Path | None = None
    resume: bool = False               # journaled before a crash: sent again, then ARL and move
    seq: int | None = None


def _day_time(at: float) -> tuple[int, int]:
    """Reception day number and HHMMSS (local time) of an epoch time."""
    t = dt.datetime.fromtimestamp(at)
    return to_days(t.date()), t.hour * 10000 + t.minute * 100 + t.second


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Spool:
    """A drop folder watched by scans; see the module docstring for the contract."""

    def __init__(self, folder: Path, settings: Settings, *, settle: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder).resolve()
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
        # name → (size, mtime_ns, since): the last stat seen and since when it has not changed
        self._seen: dict[str, tuple[int, int, float]] = {}
        self._producer: Producer | None = None
        self._admin_client: AdminClient | None = None
        self._delivery = Delivery()
        self._conn: Any = None
        self._away: str | None = None      # the service the last scan could not reach (logged once)
        self._waiting: set[str] = set()    # copies of in-flight bytes already logged as waiting
        self.incarnation: str | None = None  # the topics' identity the pending files were sent to

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the folder (the producer needs no closing: every send was flushed)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken: nothing to release
                pass
            self._conn = None
        if getattr(self, "_lock", -1) >= 0:
            os.close(self._lock)  # releases the flock
            self._lock = -1

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if hasattr(self, "_conn"):
            self.close()

    def run(self, stop: threading.Event | None = None, interval: float = 0.5) -> None:
        """Scan every `interval` seconds until `stop` is set (the CLI sets it on SIGTERM/SIGINT)."""
        stop = stop or threading.Event()
        while not stop.is_set():
            self.poll()
            stop.wait(interval)

    def poll(self) -> list[SpoolEvent]:
        """One scan, and the journal's pending files sent again when the topics are new: a
        service away is logged once and the files wait in the drop folder."""
        try:
            self.check_topics()
            events = self.scan_once()
        except (KafkaException, BufferError, SystemError) as e:
            # SystemError: confluent-kafka's flush after a fatal producer error (an idempotent
            # producer's sequence lost with a broker started again); a new producer next time
            self._gone("broker", e)
            self._drop_producer()
            return []
        except (psycopg.OperationalError, psycopg.InterfaceError, ServiceError) as e:
            self._gone("PostgreSQL", e)
            self._conn = None
            return []
        if self._away is not None:
            log.warning("spool: %s back, taking files again", self._away)
            self._away = None
        return events

    def _gone(self, what: str, e: BaseException) -> None:
        if self._away != what:
            log.warning("spool: %s unavailable, files wait in %s until it is back (%s)", what, self.folder,
                        _one_line(str(e))[:200])
            self._away = what

    # --- PostgreSQL and the broker ---------------------------------------------------------

    def conn(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(self.settings.database_url, autocommit=True)
        return self._conn

    def _prod(self) -> Producer:
        if self._producer is None:
            ensure_topics(self.settings.kafka_bootstrap, self.topics, self.settings.partitions, timeout=SEND_TIMEOUT)
            self._producer = producer(self.settings)
        return self._producer

    def _admin(self) -> AdminClient:
        # one client for the topics' identity, asked at every poll
        if self._admin_client is None:
            self._admin_client = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        return self._admin_client

    def _drop_producer(self) -> None:
        """Forget the producer and what it still holds (the journal sends those files again)."""
        if self._producer is not None:
            with contextlib.suppress(Exception):
                self._producer.purge(in_queue=True, in_flight=True, blocking=False)
        self._producer, self._admin_client = None, None
        self._delivery.errors.clear()

    def check_topics(self) -> bool:
        """Send the journal's pending files again when the topics are not the ones they were
        sent to (first call, a broker started again); True when it did."""
        self._prod()
        now = incarnation(self.settings.kafka_bootstrap, self.topics, timeout=SEND_TIMEOUT, admin=self._admin())
        if now == self.incarnation:
            return False
        if self.incarnation is not None:
            log.warning("spool: the broker's topics are new (records lost): sending the pending files again")
            # the idempotent producer's sequence numbers belong to the broker that was lost
            self._drop_producer()
            self._prod()
            now = incarnation(self.settings.kafka_bootstrap, self.topics, timeout=SEND_TIMEOUT, admin=self._admin())
        n = self.resend_pending()
        self.incarnation = now
        if n:
            log.warning("spool: %d journaled file(s) not complete sent again", n)
        return True

    def resend_pending(self) -> int:
        """Send every journaled reception that is not complete again, in reception order, from
        where its bytes are kept (or the drop folder, for a file not moved yet)."""
        conn = self.conn()
        journal.sweep(conn)
        sent = 0
        missing: list[str] = []
        entries = journal.pending(conn)
        for k in range(0, len(entries), _CHUNK_FILES):
            records, seqs = [], []
            for e in entries[k:k + _CHUNK_FILES]:
                data = journal.read_bytes(e, self.folder / e.name)
                if data is None:
                    missing.append(e.name)
                    continue
                records.append(Received(e.file_id, e.name, e.received_at, e.reception_date, data, e.seq, resent=True))
                seqs.append(e.seq)
            if records:
                send(self._prod(), self.topics.lots, records, self._delivery)
                journal.sent(conn, seqs)
                sent += len(records)
        if missing:
            log.error("spool: %d journaled file(s) not complete have no bytes where they were kept (first: file=%s)",
                      len(missing), missing[0])
        return sent

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
        reserved: set[str] = set()                 # archive names chosen in this chunk
        for path in paths:
            job = self._prepare(path, reserved)
            if job is not None:
                jobs.append(job)
        self._journal([j for j in jobs if j.outcome == "sent"], reserved)
        to_send = [j for j in jobs if j.outcome == "sent"]
        if to_send:
            records = [Received(j.sha256, j.path.name, j.at, _day_time(j.at)[0], j.data, j.seq, resent=j.resume)
                       for j in to_send]
            send(self._prod(), self.topics.lots, records, self._delivery)
            journal.sent(self.conn(), [j.seq for j in to_send if j.seq is not None])
        events = []
        for job in jobs:
            if job.outcome == "waiting":
                if job.path.name not in self._waiting:
                    self._waiting.add(job.path.name)
                    log.info("spool: waiting %s sha256=%s %s", job.path.name, job.sha256[:12], job.reason)
                continue
            self._waiting.discard(job.path.name)
            events.append(self._finish(job))
            log.info("spool: %s %s sha256=%s %s", job.outcome, job.path.name, job.sha256[:12], job.reason)
        return events

    def _prepare(self, path: Path, reserved: set[str]) -> _Job | None:
        at = self.clock()
        try:
            data = read_regular(path)
        except FileNotFoundError:
            self._seen.pop(path.name, None)  # removed by its producer meanwhile
            return None
        except InputError as e:
            return self._quarantined(path, at, str(e), reserved, "")
        settled = self._seen.get(path.name)
        if settled is None or len(data) != settled[0]:
            self._seen.pop(path.name, None)  # changed since it settled: wait for it to settle again
            return None
        sha = hashlib.sha256(data).hexdigest()
        if not path.name.isprintable() or len(path.name) > MAX_NAME:
            return self._quarantined(path, at, "file name holds a control character or is over 255 characters",
                                     reserved, sha)
        try:
            decoded = b2.decode(data, path.name, reception_date=_day_time(at)[0])
        except (InputError, CodecError) as e:
            # any other exception is a fault of ours, not of the file: it propagates, the file stays
            return self._quarantined(path, at, _one_line(str(e)), reserved, sha)
        return _Job(path, data, sha, at, decoded=decoded)

    def _journal(self, jobs: list[_Job], reserved: set[str]) -> None:
        """Journal the chunk's new receptions (one commit), and sort out the known bytes."""
        if not jobs:
            return
        # the first copy of each SHA-256 in the chunk is the one journaled
        firsts: dict[str, _Job] = {}
        for j in jobs:
            firsts.setdefault(j.sha256, j)
        targets = {sha: self._free(self.archive, j.path.name, sha, reserved) for sha, j in firsts.items()}
        new = [journal.New(sha, j.path.name, len(j.data), j.at, _day_time(j.at)[0], str(targets[sha]))
               for sha, j in firsts.items()]
        entries = journal.record(self.conn(), new)
        for job in jobs:
            entry, now = entries[job.sha256]
            job.seq = entry.seq
            first_copy = firsts[job.sha256] is job
            if now and first_copy:
                job.target, job.reason = targets[job.sha256], f"ARL {job.decoded.status if job.decoded else '?'}"
                continue
            job.first = entry
            if first_copy:
                reserved.discard(f"{self.archive.name}/{targets[job.sha256].name}")
            if (first_copy and not entry.completed and entry.name == job.path.name
                    and not Path(entry.stored_at).exists()):
                # journaled before a crash, never archived: sent again (the pipeline drops what it
                # already liquidated), and the ARL keeps the first reception time
                job.resume, job.at = True, entry.received_at
                job.target = Path(entry.stored_at)
                job.decoded = b2.decode(job.data, job.path.name, reception_date=_day_time(job.at)[0])
                job.reason = "journaled before a restart: sent again, ARL and archiving completed"
            elif entry.completed:
                job.outcome = "duplicate"
                job.target = self._free(self.archive, job.path.name, job.sha256, reserved)
                job.reason = (f"already received as {entry.name} ({self._where(entry)}): acknowledged, "
                              "not sent again")
            else:
                job.outcome = "waiting"
                job.reason = f"same bytes as {entry.name}, still in flight: answered once that one is complete"

    def _where(self, entry: journal.Entry) -> str:
        path = Path(entry.stored_at)
        return path.relative_to(self.folder).as_posix() if path.is_relative_to(self.folder) else str(path)

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
                if key not in reserved and not any((folder / (cand + s)).exists() for s in ("", *_SIDECARS)):
                    reserved.add(key)
                    return folder / cand
            candidates = [f"{prefix}.{k}.{name}"]
            k += 1

    # --- after the ack ---------------------------------------------------------------------

    def _finish(self, job: _Job) -> SpoolEvent:
        assert job.target is not None
        # the sidecars and the move are synced with one folder sync, after the rename
        if job.outcome == "quarantined":
            replace_atomic(job.target.with_name(job.target.name + ".reason"), (job.reason + "\n").encode(),
                           sync_dir=False)
        else:
            assert job.decoded is not None
            decoded = job.decoded
            if job.outcome == "duplicate":
                assert job.first is not None
                if decoded.status != "N":  # a refused file is answered with its own reasons again (C09 too)
                    decoded = _as_duplicate(decoded, job.first.name)
                replace_atomic(job.target.with_name(job.target.name + ".dup"),
                               (f"duplicate of file={job.first.name} archived as {self._where(job.first)} "
                                f"sha256={job.sha256}: acknowledged, not sent again\n").encode(), sync_dir=False)
            day, hhmmss = _day_time(job.at)
            replace_atomic(job.target.with_name(job.target.name + ".arl"),
                           arl.build(decoded, reception_date=day, reception_time=hhmmss), sync_dir=False)
        os.rename(job.path, job.target)
        fsync_dir(job.target.parent)
        self._seen.pop(job.path.name, None)
        return SpoolEvent(job.path.name, job.sha256, job.outcome, job.reason, job.target)


#: the largest file the spool reads (a B2 batch is a few MB at most; a device or a runaway
#: producer must not fill the memory)
MAX_FILE_BYTES = 256 << 20


def read_regular(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes, at most `limit`: anything else is an InputError naming the file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise InputError(f"file={path.name}: cannot read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"file={path.name}: not a regular file")
        if st.st_size > limit:
            raise InputError(f"file={path.name}: {st.st_size} bytes, over the {limit} bytes a file may have")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"file={path.name}: over the {limit} bytes a file may have")
    return data


def send(prod: Producer, topic: str, records: Iterable[Received], delivery: Delivery,
         timeout: float = SEND_TIMEOUT) -> None:
    """Produce received files to `topic` (keyed by emitter) and return once the broker acked them
    all; KafkaException when it did not within `timeout` (the files are journaled: sent again)."""
    for rec in records:
        prod.produce(topic, value=rec.pack(), key=emitter_key(rec.data), on_delivery=delivery)
        prod.poll(0)
    flush(prod, timeout)
    delivery.check()


def _as_duplicate(d: b2.Decoded, first: str) -> b2.Decoded:
    """The decoded file answered as a duplicate: whole file refused with 8009-001, lots not read."""
    reason = duplicate_reason(first)
    lots = [dataclasses.replace(lot, status="R", reasons=[]) for lot in d.lots]
    return dataclasses.replace(d, status="N", reasons=[reason], lots=lots)


__all__ = ["PARTIAL_SUFFIXES", "Spool", "SpoolError", "SpoolEvent", "send", "read_regular"]
