"""The drop-folder intake against a real (embedded Tansu) broker: completion, ARL, archive,
quarantine, duplicates by SHA-256, restart, and what reaches `fse.lots`."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from fseflow.codecs import arl
from fseflow.days import to_days
from fseflow.infra.services import start_kafka
from fseflow.stream.decode import Received, emitter_key
from fseflow.stream.settings import Settings
from fseflow.stream.spool import INDEX, Spool, SpoolError
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
def settings(bootstrap: str) -> Settings:
    return Settings(kafka_bootstrap=bootstrap, database_url="", partitions=PARTITIONS,
                    prefix=f"t{uuid.uuid4().hex[:10]}.")


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
            for _ in range(high - low):
                m = c.poll(10.0)
                assert m is not None and m.error() is None, m and m.error()
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


def test_a_complete_file_is_sent_once_with_its_arl_archived_and_indexed(spool: Spool, clock: Clock,
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

    [entry] = [orjson.loads(x) for x in (spool.archive / INDEX).read_bytes().splitlines()]
    assert entry == {"sha256": sha, "name": "a.b2", "archived": "archive/a.b2", "received_at": clock.t}

    [msg] = lots(settings)
    assert msg.key() == emitter_key(EXAMPLE)
    rec = Received.unpack(msg.value())
    assert (rec.file_id, rec.name, rec.data) == (sha, "a.b2", EXAMPLE)
    assert rec.received_at == clock.t and rec.reception_date == to_days(dt.date(2025, 3, 17))
    assert scan(spool, clock) == []  # nothing left


def test_the_same_bytes_again_are_acknowledged_not_sent(spool: Spool, clock: Clock, settings: Settings) -> None:
    (spool.folder / "a.b2").write_bytes(EXAMPLE)
    scan(spool, clock)
    [first] = scan(spool, clock)
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
    assert len((spool.archive / INDEX).read_bytes().splitlines()) == 1
    assert len(lots(settings)) == 1


def test_two_copies_in_one_scan_send_only_the_first(spool: Spool, clock: Clock, settings: Settings) -> None:
    (spool.folder / "b.b2").write_bytes(EXAMPLE)
    (spool.folder / "a.b2").write_bytes(EXAMPLE)
    scan(spool, clock)
    assert [(e.name, e.outcome) for e in scan(spool, clock)] == [("a.b2", "sent"), ("b.b2", "duplicate")]
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
    assert not (spool.archive / INDEX).exists()
    assert lots(settings) == []


def test_a_restart_reads_the_index(tmp_path: Path, settings: Settings, clock: Clock) -> None:
    with Spool(tmp_path, settings, settle=0.05, clock=clock) as s:
        (tmp_path / "a.b2").write_bytes(EXAMPLE)
        scan(s, clock)
        scan(s, clock)
        with pytest.raises(SpoolError):
            Spool(tmp_path, settings)  # one spool per folder
    with Spool(tmp_path, settings, settle=0.05, clock=clock) as s:
        assert set(s.index) == {hashlib.sha256(EXAMPLE).hexdigest()}
        (tmp_path / "again.b2").write_bytes(EXAMPLE)
        scan(s, clock)
        [ev] = scan(s, clock)
        assert ev.outcome == "duplicate"
    assert len(lots(settings)) == 1


def test_a_restart_finishes_a_receipt_cut_after_the_index(tmp_path: Path, settings: Settings,
                                                          clock: Clock) -> None:
    """The state a crash leaves between the index append and the move: indexed, still in the drop folder."""
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
    assert len(lots(settings)) == 1


def test_a_cut_index_line_is_dropped_on_start(tmp_path: Path, settings: Settings) -> None:
    """A crash in the middle of an index append: that file was not moved, so it is simply sent again."""
    (tmp_path / "archive").mkdir()
    whole = orjson.dumps({"sha256": "ab" * 32, "name": "a.b2", "archived": "archive/a.b2", "received_at": T0})
    (tmp_path / "archive" / INDEX).write_bytes(whole + b"\n" + b'{"sha256": "cd')
    with Spool(tmp_path, settings) as s:
        assert set(s.index) == {"ab" * 32}
    assert (tmp_path / "archive" / INDEX).read_bytes() == whole + b"\n"


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
    (spool.folder / "early-again.b2").write_bytes(EXAMPLE)
    scan(spool, clock)
    [dup] = scan(spool, clock)
    assert dup.outcome == "duplicate"
    for path in (ev.moved_to, dup.moved_to):
        answer = arl.read(path.with_name(path.name + ".arl").read_bytes())
        assert answer.header["status"] == "N" and [r["reason_code"] for r in answer.reasons] == ["8004-001"]
    assert len(lots(settings)) == 1
