"""The fraud side stream on the real services: every line counted once, the schemes alerted.

A generated flow with fraud schemes goes through one real worker; the fraud step's
practitioner-day sums equal the décompte lines in PostgreSQL (nothing missing, nothing
doubled, also across a worker SIGKILLed with features it never scored, and with
a worker that only scores), the hyperactive nurse of the ground truth is
alerted with F01 as the first explanation, the beneficiary-days with a hit are kept (and only
they), the drug dispensings equal those counted from the lines, and the dead beneficiaries'
care is alerted (F04). And liquidation never waits for it: with the fraud offsets locked by
another session, every décompte is still written.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import pytest

from fseflow.days import to_days
from fseflow.infra import db
from fseflow.infra import fraud_store
from fseflow.infra.fraud_store import top_alerts
from fseflow.stream.ingest import ingest
from fseflow.stream.runner import Workers, progress, wait_drained
from fseflow.stream.settings import Settings
from fseflow.tests.test_generator.support import b2_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fraud_flow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fseflow.generator import generate

    out = tmp_path_factory.mktemp("fraud-flow")
    generate(out, invoices=3_000, seed=7, days=2, population=20_000,
             fraud_rates={"hyperactive_nurse": 0.01, "care_after_death": 0.01, "upcoded_majorations": 0.01})
    return out


def _sums(conn) -> dict[str, int]:
    lines, f04 = conn.execute("SELECT coalesce(sum(lines), 0), coalesce(sum(f04), 0)"
                              " FROM fraud_practitioner_days").fetchone()
    want = conn.execute("SELECT count(*) FROM decompte_lines").fetchone()[0]
    conn.commit()
    return {"lines": int(lines), "want": int(want), "f04": int(f04)}


@pytest.mark.parametrize("kill, roles", [(False, None), (True, None), (False, ["decode,liquidate,sink", "fraud"])],
                         ids=["straight", "worker-killed", "scoring-worker"])
def test_fraud_side_stream_counts_every_line_once_and_alerts(fraud_flow: Path, fresh_db: str, kafka_bootstrap: str,
                                                             tmp_path: Path, kill: bool, roles: list[str] | None) -> None:
    """One worker scores the features its liquidate step hands over in memory, read back from
    the broker after a SIGKILL; or a worker that scores only reads them from `fse.lines`."""
    db.load_reference(fresh_db, fraud_flow / "beneficiaries.csv", fraud_flow / "professionals.csv")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, database_url=fresh_db, partitions=4,
                        prefix=f"t{uuid.uuid4().hex[:8]}.", batch_within=0.02)
    files = b2_files(fraud_flow)
    with Workers(settings, tmp_path, loglevel="info", roles=roles) as workers, db.connect(fresh_db) as conn:
        if kill:
            # the worker is killed with features it liquidated but never scored (its fraud step
            # waits on a lock): its successor reads them back from the broker
            with db.connect(fresh_db) as locker:
                locker.execute("LOCK TABLE fraud_offsets IN ACCESS EXCLUSIVE MODE")
                ingest(files[: len(files) // 2], settings)
                wait_drained(conn, len(files) // 2, workers, timeout=300)
                workers.stop(workers.procs[0], kill=True)
                locker.rollback()
            assert _sums(conn)["lines"] == 0
            ingest(files[len(files) // 2:], settings)
            workers.start()
        else:
            ingest(files, settings)
        wait_drained(conn, len(files), workers, timeout=300, fraud=True)
        sums = _sums(conn)
        assert sums["lines"] == sums["want"] > 5_000
        if kill:
            assert "records read back from the broker" in (tmp_path / "worker-1.log").read_text()
        assert sums["f04"] > 0   # care after death (C18) is a fraud hit as well as a reject
        alerts = top_alerts(conn, n=50)
        months = fraud_store.active_months(conn)
        db_facts = {m: fraud_store.month_facts(conn, m) for m in months}
        scored = sum(fraud_store.score_month(conn, m) for m in months)
        month_alerts = {a["practitioner"]: a for m in months for a in fraud_store.top_month(conn, m, 50)}
        bene_days = conn.execute("SELECT bene, day, lines, f03, f04, max_identical, boxes, pharmacies, score"
                                 " FROM fraud_beneficiary_days ORDER BY bene, day").fetchall()
        dispensed = conn.execute("SELECT bene, cip13, month, boxes, pharmacies FROM fraud_drug_months"
                                 " ORDER BY bene, cip13, month").fetchall()
        bene_alerts = fraud_store.top_beneficiaries(conn, n=10_000)
        busiest = conn.execute("SELECT practitioner, ps, speciality, day, minutes_hundredths / 100, lines, score"
                               " FROM fraud_practitioner_days ORDER BY minutes_hundredths DESC LIMIT 5").fetchall()
        conn.commit()
    truth = [orjson.loads(x) for x in (fraud_flow / "fraud_truth.jsonl").read_bytes().splitlines() if x.strip()]
    nurses = [t for t in truth if t["scheme"] == "hyperactive_nurse"]
    alerted = {a["practitioner"]: a for a in alerts}
    assert nurses
    for t in nurses:  # the practitioner is the executor's RPPS, or the billing number without one
        a = alerted.get(int(t["rpps"] or 0)) or alerted.get(int(t["ps_number"]))
        assert a is not None, f"{t} {list(alerted)[:10]} {busiest}"
        assert a["explanation"][0]["indicator"] == "F01_impossible"
        assert a["score"] >= 0.8 and a["at_stake_cents"] > 0
        m = month_alerts.get(int(t["rpps"] or 0)) or month_alerts.get(int(t["ps_number"]))
        assert m is not None and m["explanation"][0]["indicator"] == "F01_impossible"
    assert scored == sum(f.practitioner.shape[0] for f in db_facts.values())
    _same_facts(fraud_flow, db_facts)
    _same_beneficiary_sums(fraud_flow, bene_days, dispensed)
    # care after death: the dead beneficiary's care days are alerted, F04 first
    assert bene_alerts and all(a["score"] >= 0.8 for a in bene_alerts)
    assert any(a["explanation"][0]["indicator"] == "F04" for a in bene_alerts)
    dead = {b for b, _, _, _, f04, *_ in bene_days if f04 > 0}
    assert {a["bene"] for a in bene_alerts if a["explanation"][0]["indicator"] == "F04"} == dead


#: facts that do not depend on the order the partitions' batches were liquidated in (C45 and
#: C46 signals, hence f03, f04 and the amounts at stake, do; max_identical is per batch)
ORDER_FREE = ("practitioner", "ps", "speciality", "days", "lines", "invoices", "billed_cents", "base_cents",
              "tp_lines", "majorations", "coef_sum", "coef_lines", "max_minutes", "patients", "patient_days",
              "link_invoices", "ghosts", "first_day", "billed_month", "billed_before", "presc_invoices", "top_share",
              "hhi")


def _same_facts(flow: Path, db_facts: dict) -> None:
    """The month facts read from the stream's running sums equal those counted from the lines."""
    import numpy as np

    from fseflow.benchmarks.fraud_eval import line_features
    from fseflow.stream import fraud, fraud_month

    cols = line_features(flow)
    months = np.unique(fraud.month_of(cols["care_date"])).tolist()
    assert [int(fraud.month_of(np.array([to_days(m)]))[0]) for m in db_facts] == months
    for m, got in db_facts.items():
        want = fraud_month.facts_from_lines(cols, int(fraud.month_of(np.array([to_days(m)]))[0]))
        for field in ORDER_FREE:
            np.testing.assert_allclose(getattr(got, field), getattr(want, field), err_msg=f"{m} {field}")


def _same_beneficiary_sums(flow: Path, bene_days: list, dispensed: list) -> None:
    """Only beneficiary-days with a hit are stored, each with at most the lines counted from the
    flow for that day; the drug dispensings the stream added up equal those counted from the
    lines (order-free sums)."""
    from fseflow.benchmarks.fraud_eval import line_features
    from fseflow.days import from_days
    from fseflow.processors import fraud as fk
    from fseflow.stream import fraud

    cols = line_features(flow)
    bd = fraud.bene_days(cols)
    lines = dict(zip(zip(bd.bene.tolist(), map(from_days, bd.day.tolist())), bd.lines.tolist()))
    w = fk.weights()
    assert bene_days and len(bene_days) < len(lines) // 10   # sparse: most days score 0
    for b, d, n, f03, f04, ident, boxes, pharmacies, score in bene_days:
        assert 0 < n <= lines[(b, d)]
        assert f03 > 0 or f04 > 0 or ident > w.threshold[fk.F06] or boxes > w.threshold[fk.F09] \
            or pharmacies >= w.alt_threshold[fk.F09], (b, d)
        assert score > 0
    dp = fraud.dispensings(cols)
    assert dp.bene.shape[0] > 100 and (dp.cip13 > 3400900000000).all()
    # F09's grain: beneficiary × CIP13 × month, the boxes and the distinct pharmacies
    want: dict[tuple[int, int, object], tuple[int, set[int]]] = {}
    for b, c, d, p, x in zip(dp.bene.tolist(), dp.cip13.tolist(), dp.day.tolist(), dp.ps.tolist(), dp.boxes.tolist()):
        boxes, shops = want.get((b, c, from_days(d).replace(day=1)), (0, set()))
        want[(b, c, from_days(d).replace(day=1))] = (boxes + x, shops | {p})
    assert [(int(b), int(c), m, int(x), list(p)) for b, c, m, x, p in dispensed] == [
        (b, c, m, x, sorted(shops)) for (b, c, m), (x, shops) in sorted(want.items())]


def test_liquidation_goes_on_while_the_fraud_step_waits_on_a_lock(fraud_flow: Path, fresh_db: str,
                                                                   kafka_bootstrap: str, tmp_path: Path) -> None:
    """Fraud is a side stream: while another session holds the fraud offsets locked (as another
    worker's batch does), every décompte is still written; once released, every line is counted."""
    db.load_reference(fresh_db, fraud_flow / "beneficiaries.csv", fraud_flow / "professionals.csv")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, database_url=fresh_db, partitions=4,
                        prefix=f"t{uuid.uuid4().hex[:8]}.", batch_within=0.02, fraud_within=0.1)
    files = b2_files(fraud_flow)
    with Workers(settings, tmp_path) as workers, db.connect(fresh_db) as conn, \
            db.connect(fresh_db) as locker:
        locker.execute("LOCK TABLE fraud_offsets IN ACCESS EXCLUSIVE MODE")  # held until rollback
        ingest(files, settings)
        wait_drained(conn, len(files), workers, timeout=300)
        blocked = _sums(conn)
        assert blocked["want"] > 5_000 and blocked["lines"] == 0
        assert workers.alive(), workers.log_tail()
        locker.rollback()
        wait_drained(conn, len(files), workers, timeout=300, fraud=True)
        sums = _sums(conn)
        assert sums["lines"] == sums["want"]


def test_the_fraud_step_reads_back_from_the_broker_what_memory_misses(fraud_flow: Path, fresh_db: str,
                                                                       kafka_bootstrap: str) -> None:
    """The in-memory feed (stream/fraud_feed.py) on a real topic and database: records missing
    before, between or after those handed in memory are read back from the broker, each counted
    once; records handed again, or handed after being read back, add nothing."""
    import numpy as np
    from confluent_kafka import Producer

    from fseflow.benchmarks.fraud_eval import line_features
    from fseflow.codecs import batch
    from fseflow.stream import fraud_feed
    from fseflow.stream.topics import Topics, ensure_topics

    cols = line_features(fraud_flow)
    n = cols["ps"].shape[0]
    # cut where the upstream file changes: a file's lines of one partition are one record
    # (the fraud step drops lines of a file it has counted from a record before)
    starts = np.flatnonzero(np.diff(cols["src_offset"])) + 1
    cuts = [0, *starts[np.linspace(0, starts.shape[0] - 1, 4).astype(int)].tolist(), n]
    pieces = [{k: v[a:b] for k, v in cols.items()} for a, b in zip(cuts[:-1], cuts[1:])]
    topics = Topics.named(f"t{uuid.uuid4().hex[:8]}.")
    ensure_topics(kafka_bootstrap, topics, 2)
    offsets: list[int] = []
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for piece in pieces:
        p.produce(topics.lines, value=batch.pack({"liq_partition": 1}, piece), partition=1,
                  on_delivery=lambda err, msg: offsets.append(msg.offset()))
        p.flush(10)
    assert offsets == [0, 1, 2, 3, 4]
    records = [fraud_feed.Record(o, 1, piece) for o, piece in zip(offsets, pieces)]
    lines = fraud_feed.LinesLog(kafka_bootstrap, topics.lines, f"test-{uuid.uuid4().hex[:6]}", timeout=10)

    def counted(conn) -> int:
        return int(conn.execute("SELECT coalesce(sum(lines), 0) FROM fraud_practitioner_days").fetchone()[0])

    try:
        with db.connect(fresh_db, autocommit=True) as conn:
            # memory holds records 1 and 3: 0 and 2 are read back, 4 waits (no catch-up asked)
            _, n_records = fraud_feed.step(conn, "t", {1: [records[3], records[1]]}, set(), lines)
            assert n_records == 4
            assert counted(conn) == sum(r.cols["ps"].shape[0] for r in records[:4])
            # handed again: already counted, nothing added
            assert fraud_feed.step(conn, "t", {1: records[:4]}, set(), lines) == ([], 0)
            # a catch-up reads the rest from the broker, to its end
            _, n_records = fraud_feed.step(conn, "t", {}, {1}, lines)
            assert n_records == 1 and counted(conn) == n
            assert fraud_feed.step(conn, "t", {1: [records[4]]}, {1}, lines) == ([], 0)
            assert fraud_store.read_offsets(conn, "t", 1)[0] == 5
    finally:
        lines.close()


def test_the_feed_keeps_memory_bounded_and_a_failed_step_is_read_back() -> None:
    """Past its cap a partition's records are dropped from memory and the partition marked for a
    catch-up from the broker; a failed step's partitions are caught up too."""
    import numpy as np

    from fseflow.stream import fraud_feed

    feed = fraud_feed.Feed(cap=3)
    cols = {"ps": np.zeros(1, np.int64)}
    for o in range(3):
        feed.hand(0, fraud_feed.Record(o, 0, cols))
    feed.hand(1, fraud_feed.Record(0, 1, cols))
    assert not feed.catch_up and len(feed.records[0]) == 3
    feed.hand(0, fraud_feed.Record(3, 0, cols))
    assert feed.catch_up == {0} and [r.offset for r in feed.records[0]] == [3]
    records, catch_up, handed = feed.take()
    assert set(records) == {0, 1} and catch_up == {0} and set(handed) == {0, 1}
    assert not feed.records and not feed.catch_up
    feed.put_back(records, set())
    assert feed.catch_up == {0, 1} and not feed.records
