"""The stream pipeline on the real embedded broker and PostgreSQL, with real worker processes.

- stream == batch: the décomptes in PostgreSQL equal, field for field, what the offline engine
  gives on the same files in the order the stream decoded them (two days of flow: the annual and
  daily caps of one beneficiary span files, lots and emitters' partitions);
- a worker killed mid-flow and restarted: no décompte missing, none doubled, none different;
- a file ingested again is acknowledged (C09), not liquidated again.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from fseflow.infra import db, store
from fseflow.offline import Engine
from fseflow.processors.directory import load_beneficiaries, load_professionals
from fseflow.stream.app import flush, producer
from fseflow.stream.ingest import ingest
from fseflow.stream.runner import Workers, progress, wait_drained
from fseflow.stream.settings import Settings
from fseflow.stream.topics import Topics
from fseflow.tests.test_generator.support import b2_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fseflow.generator import generate

    out = tmp_path_factory.mktemp("pipeline-flow")
    generate(out, invoices=2_500, seed=31, days=2, population=15_000)
    return out


@pytest.fixture
def pipeline(flow: Path, fresh_db: str, kafka_bootstrap: str) -> Settings:
    db.load_reference(fresh_db, flow / "beneficiaries.csv", flow / "professionals.csv")
    return Settings(kafka_bootstrap=kafka_bootstrap, database_url=fresh_db, partitions=4,
                    prefix=f"t{uuid.uuid4().hex[:8]}.", batch_within=0.02)


def offline_in_decode_order(flow: Path, conn) -> dict[tuple, dict]:
    """The offline engine's décomptes on the files in the order the stream decoded them."""
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM files WHERE duplicate_of IS NULL ORDER BY decoded_at, name")
        names = [r[0] for r in cur.fetchall()]
    conn.commit()
    engine = Engine(load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv"))
    recs = [r for n in names for r in engine.liquidate_file((flow / "b2" / n).read_bytes(), n)]
    return {_key(r): r for r in recs if "lines" in r}


def _key(r: dict) -> tuple:
    return (r["file"], r["record"])


def assert_equal_to_offline(flow: Path, conn) -> int:
    want = offline_in_decode_order(flow, conn)
    got = store.read_decomptes(conn)
    assert len(got) == len({_key(r) for r in got}) == len(want)
    for r in got:
        assert store.as_offline(r) == want[_key(r)], _key(r)
    return len(got)


@pytest.mark.parametrize("roles", [None, ["decode", "liquidate,sink"]], ids=["one-worker", "worker-per-stage"])
def test_stream_equals_batch(flow: Path, pipeline: Settings, tmp_path: Path, roles: list[str] | None) -> None:
    """One worker running every agent, or the decode agent and the others in separate processes."""
    files = b2_files(flow)
    with Workers(pipeline, tmp_path, roles=roles) as workers, db.connect(pipeline.database_url) as conn:
        ingest(files, pipeline)
        wait_drained(conn, len(files), workers, timeout=300)
        n = assert_equal_to_offline(flow, conn)
        assert n > 2_000
        with conn.cursor() as cur:
            cur.execute("SELECT count(DISTINCT partition) FROM decomptes")
            assert cur.fetchone()[0] == pipeline.partitions
        if roles is None:  # the ledger entries are written with the décomptes
            wait_drained(conn, len(files), workers, timeout=120, ledger=True)
            assert_ledger_complete(conn)
            assert_payments_reconcile(conn, pipeline.database_url, tmp_path / "payments")


def assert_ledger_complete(conn) -> None:
    """The ledger side stream holds exactly the entries of the décomptes in PostgreSQL."""
    from fseflow.processors.payments import entries

    want = sorted((e.file_id, e.record, e.line, e.kind, e.budget, e.payee_kind, e.amount_cents)
                  for e in entries([{**r, "file_id": fid} for fid, r in _with_ids(conn)]))
    got = sorted(tuple(r) for r in conn.execute(
        "SELECT file_id, record, line, kind, budget, payee_kind, amount_cents FROM ledger_entries"))
    assert got == want and len(got) > 2_000


def _with_ids(conn):
    ids = {(f, r): fid for fid, f, r in conn.execute("SELECT file_id, file, record FROM decomptes")}
    return [(ids[(r["file"], r["record"])], r) for r in store.read_decomptes(conn)]


def assert_payments_reconcile(conn, url: str, folder: Path) -> None:
    """Every liquidation day of the generated flow cut off, paid and reconciled; a tampered ledger
    row is then named by the reconciliation."""
    from fseflow.reconcile import reconcile
    from fseflow.stream.demo import pay_all

    conn.commit()
    runs, returns, checks, delays = pay_all(url, folder)
    assert checks and all(c.holds for c in checks), [c.failure for c in checks]
    assert sum(r.transfers for r in runs) > 100 and sum(r.files for r in returns) > 50
    assert delays.invoices > 500 and delays.pending == 0
    day, file_id, record, line = conn.execute(
        "SELECT liquidation_date, file_id, record, line FROM ledger_entries WHERE kind = 'credit'"
        " ORDER BY file_id, record, line LIMIT 1").fetchone()
    conn.execute("UPDATE ledger_entries SET amount_cents = amount_cents - 1 WHERE file_id = %s AND record = %s"
                 " AND line = %s AND kind = 'credit'", (file_id, record, line))
    conn.commit()
    failure = reconcile(conn, day, folder).failure
    assert failure is not None and f"record {record}, line {line}, credit" in failure and "P8" in failure


@pytest.mark.parametrize("snapshot_every", [-1.0, 0.0], ids=["changelog-only", "snapshot-every-step"])
def test_worker_killed_mid_flow_loses_and_doubles_nothing(flow: Path, pipeline: Settings, tmp_path: Path,
                                                          snapshot_every: float) -> None:
    """The restarted worker rebuilds each partition's state from the changelog alone, or from its
    latest snapshot in PostgreSQL and the changelog records after it."""
    pipeline = replace(pipeline, snapshot_every=snapshot_every)
    files = b2_files(flow)
    half = len(files) // 2
    with Workers(pipeline, tmp_path, loglevel="info") as workers, db.connect(pipeline.database_url) as conn:
        ingest(files[:half], pipeline)
        deadline = time.monotonic() + 120
        # mid-flow: décomptes written and, when snapshots are on, at least one snapshot taken
        while progress(conn).decomptes < 300 or (snapshot_every >= 0 and not conn.execute(
                "SELECT count(*) FROM liquidation_snapshots").fetchone()[0]):
            conn.commit()
            assert time.monotonic() < deadline and workers.alive(), workers.log_tail()
            time.sleep(0.02)
        workers.stop(workers.procs[0], kill=True)   # SIGKILL: no shutdown, no final commit
        ingest(files[half:], pipeline)              # the flow goes on while no worker runs
        workers.start()
        wait_drained(conn, len(files), workers, timeout=300)
        assert assert_equal_to_offline(flow, conn) > 2_000
        wait_drained(conn, len(files), workers, timeout=120, ledger=True)
        assert_ledger_complete(conn)   # the ledger side stream too: nothing missing, nothing doubled
        snapshots = conn.execute("SELECT count(*) FROM liquidation_snapshots").fetchone()[0]
        conn.commit()
    restored = (tmp_path / "worker-1.log").read_text("utf-8", "replace")
    if snapshot_every < 0:
        assert snapshots == 0 and "from snapshot" not in restored
    else:
        assert snapshots == pipeline.partitions and "from snapshot" in restored


def test_a_file_ingested_again_is_acknowledged_not_liquidated(flow: Path, pipeline: Settings, tmp_path: Path) -> None:
    files = b2_files(flow)[:40]
    with Workers(pipeline, tmp_path) as workers, db.connect(pipeline.database_url) as conn:
        ingest(files, pipeline)
        first = wait_drained(conn, len(files), workers, timeout=300)
        copy = tmp_path / "again.b2"
        copy.write_bytes(files[3].read_bytes())
        ingest([files[3], copy], pipeline)
        after = wait_drained(conn, len(files) + 2, workers, timeout=120)
        assert after.decomptes == first.decomptes
        rows = conn.execute("SELECT name, duplicate_of, arl_status FROM files WHERE file_id = %s ORDER BY src",
                            (hashlib.sha256(copy.read_bytes()).hexdigest(),)).fetchall()
        conn.commit()
        # one row per reception: the first accepted, then both later receptions acknowledged as C09
        assert sorted(rows, key=str) == sorted([(files[3].name, None, "P"), (files[3].name, files[3].name, "N"),
                                                ("again.b2", files[3].name, "N")], key=str)
        refused = [r for r in store.read_refused(conn) if r["rejects"][0]["code"] == "8009-001"]
        assert sorted(r["file"] for r in refused) == sorted(["again.b2", files[3].name])

        # input that is not B2, and a value that is not even an intake record: refused and kept
        notes = tmp_path / "notes.b2"
        notes.write_bytes(b"hello\n")
        ingest([notes], pipeline)
        prod = producer(pipeline)
        prod.produce(Topics.named(pipeline.prefix).lots, value=b"garbage", key=b"x")
        flush(prod)
        wait_drained(conn, len(files) + 4, workers, timeout=120)
        bad = {r["file"]: r["rejects"][0] for r in store.read_refused(conn) if r["rejects"][0]["code"] == "8003-001"}
        assert set(bad) == {"notes.b2"} | {n for n in bad if n.startswith("record ")} and len(bad) == 2
        assert "not an fseflow intake record" in [m["message"] for n, m in bad.items() if n != "notes.b2"][0]
        assert workers.alive()


def test_poison_intake_records_are_kept_as_dead_letters_and_the_good_copy_goes_through(
        flow: Path, pipeline: Settings, tmp_path: Path) -> None:
    """Records a stage cannot take (a file_id that is not a SHA-256, a name holding a NUL byte,
    a value that is no intake record) are kept in `dead_letters` with where they came from and
    why (the field, never its value), and the stage goes on: the genuine file sent after them is
    liquidated whole, never refused as a duplicate of a reception that was not stored."""
    from fseflow.stream.decode import Received

    good = b2_files(flow)[5]
    data = good.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    poison = [Received("not-a-sha", good.name, time.time(), None, data).pack(),
              Received(sha, "PS\x00secret.b2", time.time(), None, data).pack(),
              b"garbage"]
    lots = Topics.named(pipeline.prefix).lots
    placed: list[tuple[int, int]] = []
    prod = producer(pipeline)
    for value in poison:
        prod.produce(lots, value=value, key=b"x",
                     on_delivery=lambda err, m: placed.append((m.partition(), m.offset())) if err is None else None)
    flush(prod)
    with Workers(pipeline, tmp_path) as workers, db.connect(pipeline.database_url) as conn:
        ingest([good], pipeline)
        wait_drained(conn, 4, workers, timeout=300)  # the genuine file, and a refusal per poison record
        rows = conn.execute("SELECT topic, partition, \"offset\", stage, reason, value FROM dead_letters"
                            " ORDER BY \"offset\"").fetchall()
        conn.commit()
        assert len(placed) == 3 and sorted((p, o) for _, p, o, *_ in rows) == sorted(placed)
        assert {r[0] for r in rows} == {lots} and {r[3] for r in rows} == {"decode"}
        reasons = [r[4] for r in rows]
        assert any("field file_id" in r for r in reasons) and any("field name" in r for r in reasons)
        assert not any("secret" in r for r in reasons)
        assert {bytes(r[5]) for r in rows} == set(poison)
        got = store.read_decomptes(conn, [sha])
        refused = [r for r in store.read_refused(conn) if r["file"] == good.name]
        conn.commit()
        assert refused == [] and len(got) == conn.execute(
            "SELECT n_invoices FROM files WHERE file_id = %s", (sha,)).fetchone()[0] > 0
        assert workers.alive()
