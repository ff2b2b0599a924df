"""The drop-folder intake against a real (embedded Tansu) broker and PostgreSQL: completion,
journal, ARL, archive, quarantine, duplicates by SHA-256, restart, the journal's re-sends, a
service away, and what reaches `fse.lots`."""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from fseflow.codecs import arl
from fseflow.days import to_days
from fseflow.exceptions import InputError
from fseflow.infra.services import free_port, start_kafka
from fseflow.stream.decode import Received, emitter_key
from fseflow.stream.settings import Settings
from fseflow.infra import db, journal
from fseflow.stream.spool import Spool, SpoolError, read_regular
from fseflow.stream.topics import Topics

EXAMPLE = (Path(__file__).parent.parent / "data" / "b2-example-v1.b2").read_bytes()
NIRS = (b"1850483137042", b"1490383137009")  # the example's insured people: never in a sidecar
#: a fixed local time for the clock: the reception day and time the ARL must show
T0 = dt.datetime(2025, 3, 17, 9, 15, 0).timestamp()
PARTITIONS = 2


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t

    def tick(self, s: float = 0.1) -> None:
        self.t += s


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_kafka(tmp_path_factory.mktemp("kafka")) as address:
        yield address


@pytest.fixture
def settings(bootstrap: str, fresh_db: str) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, database_url=fresh_db, partitions=PARTITIONS,
                    prefix=f"t{uuid.uuid4().hex[:10]}.")


def complete(settings: Settings) -> None:
    """What the pipeline does once every décompte of the files is written: their journal
    entries complete (the spool tests run no workers)."""
    with db.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE intake_journal SET completed_at = now(), outcome = 'complete'")


def entries(settings: Settings) -> list[journal.Entry]:
    with db.connect(settings.database_url, autocommit=True) as conn:
        return [journal._entry(r) for r in conn.execute(f"SELECT {journal._COLUMNS} FROM intake_journal ORDER BY seq")]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def spool(tmp_path: Path, settings: Settings, clock: Clock) -> Iterator[Spool]:
    with Spool(tmp_path, settings, settle=0.05, clock=clock) as s:
        yield s


def scan(s: Spool, clock: Clock) -> list:
    clock.tick()
    return s.scan_once()


def lots(settings: Settings) -> list:
    """Every record of `fse.lots`, from the beginning."""
    topic = Topics.named(settings.prefix).lots
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"{settings.prefix}check",
                  "enable.auto.commit": False})
    try:
        out: list = []
        if topic not in c.list_topics(timeout=10).topics:
            return out  # nothing was ever sent: the spool creates the topics on its first send
        for p in range(PARTITIONS):
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high <= low:
                continue
            c.assign([TopicPartition(topic, p, low)])
            # to the end: the embedded broker's high watermark counts record batches, not records
            while (m := c.poll(1.0)) is not None:
                assert m.error() is None, m.error()
                out.append(m)
        return out
    finally:
        c.close()


def test_a_part_file_is_taken_only_once_renamed(spool: Spool, clock: Clock, settings: Settings) -> None:
    part = spool.folder / "x.b2.part"
    part.write_bytes(EXAMPLE)
    (spool.folder / ".hidden.b2").write_bytes(EXAMPLE)
    (spool.folder / "sub").mkdir()
    (spool.folder / "sub" / "y.b2").write_bytes(EXAMPLE)
    for _ in range(3):
        assert scan(spool, clock) == []
    part.rename(spool.folder / "x.b2")
    assert scan(spool, clock) == []  # first sight: not settled yet
    [ev] = scan(spool, clock)
    assert (ev.name, ev.outcome) == ("x.b2", "sent")
    assert (spool.folder / "sub" / "y.b2").exists() and (spool.folder / ".hidden.b2").exists()


def test_a_growing_file_waits_until_its_size_is_stable(spool: Spool, clock: Clock) -> None:
    path = spool.folder / "grow.b2"
    path.write_bytes(EXAMPLE[:500])
    assert scan(spool, clock) == []
    with open(path, "ab") as f:
        f.write(EXAMPLE[500:])
    assert scan(spool, clock) == []  # changed since the last scan
    clock.tick(0.01)
    assert spool.scan_once() == []   # unchanged, but not for `settle` seconds yet
    [ev] = scan(spool, clock)
    assert ev.outcome == "sent" and ev.sha256 == hashlib.sha256(EXAMPLE).hexdigest()
    assert (spool.archive / "grow.b2").read_bytes() == EXAMPLE


def test_a_complete_file_is_journaled_sent_once_with_its_arl_and_archived(spool: Spool, clock: Clock,
                                                                        settings: Settings) -> None:
    (spool.folder / "a.b2").write_bytes(EXAMPLE)
    assert scan(spool, clock) == []
    [ev] = scan(spool, clock)
    sha = hashlib.sha256(EXAMPLE).hexdigest()
    assert (ev.name, ev.sha256, ev.outcome, ev.moved_to) == ("a.b2", sha, "sent", spool.archive / "a.b2")
    assert not (spool.folder / "a.b2").exists()
    assert (spool.archive / "a.b2").read_bytes() == EXAMPLE

    answer = arl.read((spool.archive / "a.b2.arl").read_bytes())
    assert answer.header["status"] == "P" and answer.header["emitter_ps_number"] == 830004123
    assert answer.header["reception_date"] == dt.date(2025, 3, 17) and answer.header["reception_time"] == 91500

    [entry] = entries(settings)
    assert (entry.file_id, entry.name, entry.size) == (sha, "a.b2", len(EXAMPLE))
    assert entry.received_at == pytest.approx(clock.t, abs=1e-5)  # timestamptz keeps microseconds
    assert entry.stored_at == str(spool.archive / "a.b2") and not entry.completed
    assert entry.reception_date == to_days(dt.date(2025, 3, 17))

    [msg] = lots(settings)
    assert msg.key() == emitter_key(EXAMPLE)
    rec = Received.unpack(msg.value())
    assert (rec.file_id, rec.name, rec.data, rec.seq, rec.resent) == (sha, "a.b2", EXAMPLE, entry.seq, False)
    assert rec.received_at == clock.t and rec.reception_date == to_days(dt.date(2025, 3, 17))
    assert scan(spool, clock) == []  # nothing left


def test_the_same_bytes_again_are_acknowledged_not_sent(spool: Spool, clock: Clock, settings: Settings) -> None:
    (spool.folder / "a.b2").write_bytes(EXAMPLE)
    scan(spool, clock)
    [first] = scan(spool, clock)
    complete(settings)
    # the same bytes twice more: under another name, and under the first name again
    (spool.folder / "copy.b2").write_bytes(EXAMPLE)
    (spool.folder / "a.b2").write_bytes(EXAMPLE)
    scan(spool, clock)
    events = scan(spool, clock)
    assert [(e.name, e.outcome) for e in events] == [("a.b2", "duplicate"), ("copy.b2", "duplicate")]
    again, copy = (e.moved_to for e in events)
    assert copy == spool.archive / "copy.b2"
    assert again == spool.archive / f"{first.sha256[:12]}.a.b2"  # the first a.b2 is not overwritten
    assert (spool.archive / "a.b2").read_bytes() == EXAMPLE and again.read_bytes() == EXAMPLE
    for path in (again, copy):
        dup = path.with_name(path.name + ".dup").read_text()
        assert "file=a.b2" in dup and "archive/a.b2" in dup
        answer = arl.read(path.with_name(path.name + ".arl").read_bytes())
        assert answer.header["status"] == "N"
        assert [r["reason_code"] for r in answer.reasons] == ["8009-001"]
        assert all(lot["lot_status"] == "R" for lot in answer.lots)
    assert len(entries(settings)) == 1
    assert len(lots(settings)) == 1


def test_a_copy_of_bytes_in_flight_waits_until_they_are_complete(spool: Spool, clock: Clock,
                                                                 settings: Settings) -> None:
    """Two copies in one scan: the first is sent; the second is not answered `.dup` while the
    first is in flight (a broker could still lose it), but waits in the drop folder."""
    (spool.folder / "b.b2").write_bytes(EXAMPLE)
    (spool.folder / "a.b2").write_bytes(EXAMPLE)
    scan(spool, clock)
    assert [(e.name, e.outcome) for e in scan(spool, clock)] == [("a.b2", "sent")]
    assert scan(spool, clock) == [] and (spool.folder / "b.b2").exists()
    assert not (spool.archive / "b.b2.dup").exists()
    complete(settings)
    [dup] = scan(spool, clock)
    assert (dup.name, dup.outcome) == ("b.b2", "duplicate") and (spool.archive / "b.b2.dup").exists()
    assert len(lots(settings)) == 1


def test_the_same_name_with_other_bytes_is_sent_and_kept_apart(spool: Spool, clock: Clock,
                                                               settings: Settings) -> None:
    crlf = EXAMPLE.replace(b"\n", b"\r\n")  # the same file in CRLF framing: other bytes, other identity
    (spool.folder / "a.b2").write_bytes(EXAMPLE)
    scan(spool, clock)
    scan(spool, clock)
    (spool.folder / "a.b2").write_bytes(crlf)
    scan(spool, clock)
    [ev] = scan(spool, clock)
    assert ev.outcome == "sent" and ev.moved_to == spool.archive / f"{ev.sha256[:12]}.a.b2"
    assert (spool.archive / "a.b2").read_bytes() == EXAMPLE and ev.moved_to.read_bytes() == crlf
    assert len(lots(settings)) == 2


def test_an_unreadable_file_is_quarantined_with_a_reason(spool: Spool, clock: Clock, settings: Settings) -> None:
    (spool.folder / "notes.txt").write_bytes(b"hello\n")
    # a B2 file whose header is damaged: its records still hold NIRs, which must not leak
    (spool.folder / "damaged.b2").write_bytes(b"999" + EXAMPLE[3:])
    scan(spool, clock)
    events = scan(spool, clock)
    assert [(e.name, e.outcome) for e in events] == [("damaged.b2", "quarantined"), ("notes.txt", "quarantined")]
    for ev in events:
        assert ev.moved_to == spool.quarantine / ev.name and ev.moved_to.exists()
        reason = (spool.quarantine / f"{ev.name}.reason").read_bytes()
        assert reason.count(b"\n") == 1 and f"file={ev.name}".encode() in reason and b"record=1" in reason
        assert not any(nir in reason for nir in NIRS)
        assert not re.search(rb"\d{13}", reason)
        assert not (spool.quarantine / f"{ev.name}.arl").exists()
    assert entries(settings) == []
    assert lots(settings) == []


def test_a_device_a_fifo_or_a_symlink_is_not_read(spool: Spool, clock: Clock, settings: Settings) -> None:
    """Only regular files are taken: a FIFO would block the read forever, a device never end."""
    os.mkfifo(spool.folder / "pipe.b2")
    (spool.folder / "link.b2").symlink_to("/dev/zero")
    for _ in range(3):
        assert scan(spool, clock) == []
    assert (spool.folder / "pipe.b2").exists() and lots(settings) == []
    with pytest.raises(InputError, match="not a regular file"):
        read_regular(spool.folder / "pipe.b2")
    with pytest.raises(InputError, match="file=big.b2: .*over the 10 bytes"):
        (spool.folder / "big.b2").write_bytes(EXAMPLE)
        read_regular(spool.folder / "big.b2", limit=10)


def test_a_restart_reads_the_journal(tmp_path: Path, settings: Settings, clock: Clock) -> None:
    with Spool(tmp_path, settings, settle=0.05, clock=clock) as s:
        (tmp_path / "a.b2").write_bytes(EXAMPLE)
        scan(s, clock)
        scan(s, clock)
        with pytest.raises(SpoolError):
            Spool(tmp_path, settings)  # one spool per folder
    complete(settings)
    with Spool(tmp_path, settings, settle=0.05, clock=clock) as s:
        (tmp_path / "again.b2").write_bytes(EXAMPLE)
        scan(s, clock)
        [ev] = scan(s, clock)
        assert ev.outcome == "duplicate"
    assert len(lots(settings)) == 1


def test_a_restart_finishes_a_receipt_cut_after_the_journal(tmp_path: Path, settings: Settings,
                                                            clock: Clock) -> None:
    """The state a crash leaves between the journal and the move: journaled, still in the drop
    folder. The restart sends it again (marked resent: the pipeline drops what it already
    liquidated) and finishes the ARL, with the first reception time, and the move."""
    with Spool(tmp_path, settings, settle=0.05, clock=clock) as s:
        (tmp_path / "a.b2").write_bytes(EXAMPLE)
        scan(s, clock)
        [sent] = scan(s, clock)
        assert sent.outcome == "sent"
    first_arl = (tmp_path / "archive" / "a.b2.arl").read_bytes()
    (tmp_path / "archive" / "a.b2").rename(tmp_path / "a.b2")
    (tmp_path / "archive" / "a.b2.arl").unlink()
    clock.tick(3600)
    with Spool(tmp_path, settings, settle=0.05, clock=clock) as s:
        scan(s, clock)
        [ev] = scan(s, clock)
    assert (ev.outcome, ev.moved_to) == ("sent", tmp_path / "archive" / "a.b2")
    assert (tmp_path / "archive" / "a.b2.arl").read_bytes() == first_arl  # the first reception time
    first, again = (Received.unpack(m.value()) for m in lots(settings))
    assert first.resent is False
    assert first.seq == again.seq and again.resent and len(entries(settings)) == 1


def test_new_topics_get_every_pending_file_again(tmp_path: Path, settings: Settings, clock: Clock) -> None:
    """A broker that lost its records (here: the topics deleted and created again, which gives
    them new ids like a restarted memory-only broker): the journal sends again, from the
    archive, every file not complete, and only those."""
    crlf = EXAMPLE.replace(b"\n", b"\r\n")
    with Spool(tmp_path, settings, settle=0.05, clock=clock) as s:
        assert s.check_topics()            # first sight of the topics: nothing pending yet
        (tmp_path / "a.b2").write_bytes(EXAMPLE)
        (tmp_path / "b.b2").write_bytes(crlf)
        scan(s, clock)
        assert len(scan(s, clock)) == 2
        with db.connect(settings.database_url, autocommit=True) as conn:
            conn.execute("UPDATE intake_journal SET completed_at = now(), outcome = 'complete' WHERE name = 'a.b2'")
        assert not s.check_topics()        # same topics: nothing sent again
        assert len(lots(settings)) == 2
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        for f in admin.delete_topics(Topics.named(settings.prefix).all()).values():
            f.result()
        time.sleep(0.5)
        s._producer = None
        assert s.check_topics()
        [again] = [Received.unpack(m.value()) for m in lots(settings)]
    assert (again.name, again.data, again.resent) == ("b.b2", crlf, True)
    [b] = [e for e in entries(settings) if e.name == "b.b2"]
    assert again.seq == b.seq and again.received_at == b.received_at


def test_postgresql_away_leaves_the_files_in_the_drop_folder(tmp_path: Path, settings: Settings, clock: Clock,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Nothing is acknowledged while PostgreSQL cannot journal: one log line, and the spool
    takes the file by itself once it answers."""
    away = replace(settings, database_url=f"postgresql://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1")
    with Spool(tmp_path, away, settle=0.05, clock=clock) as s, caplog.at_level(logging.WARNING):
        (tmp_path / "a.b2").write_bytes(EXAMPLE)
        for _ in range(4):
            clock.tick()
            assert s.poll() == []
        assert (tmp_path / "a.b2").exists() and not (tmp_path / "archive" / "a.b2.arl").exists()
        assert sum("PostgreSQL unavailable" in r.getMessage() for r in caplog.records) == 1
        s.settings = settings
        events: list = []
        for _ in range(3):  # the file is seen again, settles, and is taken
            clock.tick()
            events += s.poll()
        [ev] = events
    assert ev.outcome == "sent" and any("back" in r.getMessage() for r in caplog.records)
    assert len(lots(settings)) == 1


def test_run_takes_files_until_stopped(tmp_path: Path, settings: Settings) -> None:
    stop = threading.Event()
    with Spool(tmp_path, settings, settle=0.02) as s:
        worker = threading.Thread(target=s.run, args=(stop, 0.01))
        worker.start()
        try:
            (tmp_path / "a.b2.part").write_bytes(EXAMPLE)
            (tmp_path / "a.b2.part").rename(tmp_path / "a.b2")
            deadline = time.monotonic() + 10
            while not (tmp_path / "archive" / "a.b2").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop.set()
            worker.join(5)
        assert not worker.is_alive()
    assert (tmp_path / "archive" / "a.b2.arl").exists()
    assert len(lots(settings)) == 1


def test_a_refused_file_is_sent_once_and_its_copy_answered_with_its_own_reasons(
        spool: Spool, clock: Clock, settings: Settings) -> None:
    clock.t = dt.datetime(2025, 3, 10, 8, 0).timestamp()  # before the file's creation date: C04, ARL N
    (spool.folder / "early.b2").write_bytes(EXAMPLE)
    scan(spool, clock)
    [ev] = scan(spool, clock)
    assert (ev.outcome, ev.reason) == ("sent", "ARL N")
    complete(settings)  # the pipeline kept the refusal
    (spool.folder / "early-again.b2").write_bytes(EXAMPLE)
    scan(spool, clock)
    [dup] = scan(spool, clock)
    assert dup.outcome == "duplicate"
    for path in (ev.moved_to, dup.moved_to):
        answer = arl.read(path.with_name(path.name + ".arl").read_bytes())
        assert answer.header["status"] == "N" and [r["reason_code"] for r in answer.reasons] == ["8004-001"]
    assert len(lots(settings)) == 1
