"""The claims tables: writes are idempotent, and what is read back is what the offline engine made."""
from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fseflow.codecs import b2
from fseflow.infra import store
from fseflow.offline import Engine, Summary
from fseflow.processors.directory import load_beneficiaries, load_professionals
from fseflow.tests.test_codecs.factory import example_model, invoice_model, join, lot_model, records, set_field

DATA = Path(__file__).resolve().parents[1] / "data"
BENE, PROS = DATA / "example-beneficiaries.csv", DATA / "example-professionals.csv"
T0 = 1_800_000_000.0  # epoch seconds of the test receptions
TABLES = ("decomptes", "decompte_lines", "decompte_rejects", "decompte_signals", "files", "lots_refused")


def liquidate(files: list[tuple[str, bytes]], bene: Path = BENE, pros: Path = PROS) -> tuple[list[dict[str, Any]],
                                                                                             Summary]:
    """The offline engine's records, each with the keys the stream adds (file_id, times, partition)."""
    engine = Engine(load_beneficiaries(bene), load_professionals(pros))
    out = []
    for name, data in files:
        file_id = hashlib.sha256(data).hexdigest()
        for rec in engine.liquidate_file(data, name):
            extra = {"received_at": T0, "liquidated_at": T0 + 1.5, "partition": 0} if "lines" in rec else {}
            out.append({**rec, "file_id": file_id, **extra})
    return out, engine.summary


def offline(records_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as from_outcome made them (no stream keys), in the order read_decomptes gives."""
    keep = [{k: v for k, v in r.items() if k not in ("file_id", "received_at", "liquidated_at", "partition")}
            for r in records_ if "lines" in r]
    ids = {(r["file"], r["record"]): r["file_id"] for r in records_ if "lines" in r}
    return sorted(keep, key=lambda r: (ids[(r["file"], r["record"])], r["record"]))


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


def test_worked_example_round_trips_and_a_replay_writes_nothing(fresh_db: str) -> None:
    recs, _ = liquidate([("b2-example-v1.b2", (DATA / "b2-example-v1.b2").read_bytes())])
    with psycopg.connect(fresh_db) as conn:
        assert store.write_decomptes(conn, recs) == 2
        conn.commit()
        before = row_counts(conn)
        assert store.write_decomptes(conn, recs) == 0
        conn.commit()
        assert row_counts(conn) == before and before["decompte_lines"] == 2
        back = store.read_decomptes(conn)
    assert back == offline(recs)
    assert back[0]["totals"]["paid_cents"] == 2100 and back[1]["lines"][0]["care_date"] == "2025-03-12"


def test_generated_flow_round_trips_field_for_field_and_counts_as_offline(fresh_db: str, small_flow: Path) -> None:
    with open(small_flow / "manifest.csv", newline="") as fh:
        names = [row["file"] for row in csv.DictReader(fh)]
    files = [(n, (small_flow / "b2" / n).read_bytes()) for n in names]
    recs, summary = liquidate(files, small_flow / "beneficiaries.csv", small_flow / "professionals.csv")
    invoices = [r for r in recs if "lines" in r]
    assert summary.rejects and summary.signals  # the flow's anomalies are there to be stored
    with psycopg.connect(fresh_db) as conn:
        # batches as a sink would cut them, the middle one written twice (a replay after a crash)
        assert store.write_decomptes(conn, invoices[:600]) == 600
        assert store.write_decomptes(conn, invoices[400:1000]) == 400
        conn.commit()
        assert store.write_decomptes(conn, invoices[900:]) == len(invoices) - 1000
        conn.commit()
        assert store.read_decomptes(conn) == offline(recs)
        some = sorted({r["file_id"] for r in invoices[:50]})
        assert store.read_decomptes(conn, some) == offline([r for r in invoices if r["file_id"] in some])
        c = store.counts(conn)
    assert (c["decomptes_paid"], c["decomptes_rejected"], c["lines"]) == (
        summary.invoices_paid, summary.invoices_rejected, summary.lines)
    assert c["rejects_by_code"] == dict(summary.rejects) and c["signals_by_code"] == dict(summary.signals)
    assert c["paid_cents_by_budget"] == dict(summary.paid_by_budget)
    assert c["paid_cents_by_payee"] == dict(summary.paid_by_payee)
    assert c["debt_cents"] == summary.debt_cents


def test_an_invoice_sent_twice_in_one_lot_is_two_decomptes(fresh_db: str) -> None:
    model = example_model()
    model.lots[0].invoices.append(invoice_model(number=250000101))  # the first invoice again, same lot
    recs, _ = liquidate([("twice.b2", b2.encode(model, framing="LF"))])
    first, _, again = [r for r in recs if "lines" in r]
    assert (first["lot"], first["invoice"], first["ps"]) == (again["lot"], again["invoice"], again["ps"])
    assert [x["code"] for x in again["rejects"]] == ["2900-005"]  # C28: a duplicate, rejected, kept
    with psycopg.connect(fresh_db) as conn:
        assert store.write_decomptes(conn, recs) == 3
        assert store.read_decomptes(conn) == offline(recs)


def test_refused_lots_and_files_are_kept(fresh_db: str) -> None:
    two_lots = example_model()
    # a second lot whose billing number has a wrong Luhn key: C08 refuses that lot only
    two_lots.lots.insert(0, lot_model([invoice_model(number=250000103)], ps_number=830004124))
    partial = b2.encode(two_lots, framing="LF")
    refused = join([set_field(records(example_model())[0], "000", "dest_caisse", b"757")]
                   + records(example_model())[1:])  # C05: the whole file refused
    files = [("partial.b2", partial), ("refused.b2", refused), ("again.b2", partial)]  # again: C09 duplicate
    recs, _ = liquidate(files)
    rejected = [r for r in recs if "lines" not in r]
    assert [(r["file"], r["lot"]) for r in rejected] == [("partial.b2", 1), ("refused.b2", None), ("again.b2", None)]
    rows = []
    for name, data in files[:2]:
        decoded = b2.decode(data, name)
        rows.append(store.file_row(decoded, received_at=T0, decoded_at=T0 + 0.1,
                                   n_invoices=len(decoded.invoices["lot_idx"])))
    with psycopg.connect(fresh_db) as conn:
        assert store.write_refused(conn, rejected) == 3
        assert store.write_refused(conn, rejected) == 0
        assert store.write_files(conn, rows) == 2
        assert store.write_files(conn, rows) == 0
        back = store.read_refused(conn)
        c = store.counts(conn)
        status = dict(conn.execute("SELECT name, arl_status FROM files"))
        partial_row = conn.execute("SELECT n_lots, n_lots_refused, n_invoices, emitter, creation_date::text"
                                   " FROM files WHERE name = 'partial.b2'").fetchone()
    def key(r: dict[str, Any]) -> tuple[str, int]:
        return r["file"], r["lot"] or 0

    assert sorted(back, key=key) == sorted(({k: v for k, v in r.items() if k != "file_id"} for r in rejected),
                                           key=key)
    assert (c["files"], c["files_refused"], c["lots_refused"]) == (2, 1, 3)
    assert status == {"partial.b2": "L", "refused.b2": "N"}
    assert partial_row == (2, 1, 2, 830004123, "2025-03-14")


def test_latency_percentiles_on_known_times(fresh_db: str) -> None:
    recs, _ = liquidate([("b2-example-v1.b2", (DATA / "b2-example-v1.b2").read_bytes())])
    first, second = recs
    batch = []
    for k, (liq, written) in enumerate([(1, 2), (2, 4), (3, 6), (4, 8)]):
        rec = {**(first if k % 2 == 0 else second), "record": 100 + k, "received_at": T0,
               "liquidated_at": T0 + liq}
        batch.append((rec, written))
    with psycopg.connect(fresh_db) as conn:
        assert store.write_decomptes(conn, [r for r, _ in batch]) == 4
        for rec, written in batch:  # the write time is the database's clock: set it to known values
            conn.execute("UPDATE decomptes SET written_at = received_at + make_interval(secs => %s)"
                         " WHERE record = %s", (written, rec["record"]))
        p = store.latency_percentiles(conn)
    # percentile_cont interpolates: p50 of 1, 2, 3, 4 is 2.5, p95 is 3 + 0.85, p99 is 3 + 0.97
    assert p["n"] == 4
    assert p["liquidation"] == pytest.approx({"p50": 2.5, "p95": 3.85, "p99": 3.97})
    assert p["written"] == pytest.approx({"p50": 5.0, "p95": 7.7, "p99": 7.94})


def test_empty_batches_write_nothing(fresh_db: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        assert store.write_decomptes(conn, []) == store.write_refused(conn, []) == store.write_files(conn, []) == 0
        assert store.latency_percentiles(conn) == {"n": 0, "liquidation": {"p50": None, "p95": None, "p99": None},
                                                   "written": {"p50": None, "p95": None, "p99": None}}


def test_stream_receipts_and_the_identities_already_seen(fresh_db: str) -> None:
    from fseflow.days import NO_DATE

    def receipt(file_id: str, name: str, status: str, emitter: int, sequence: int, day: int, src: str) -> dict[str, Any]:
        return {"file_id": file_id, "name": name, "size": 10, "emitter": emitter, "file_sequence": sequence,
                "creation_date": day, "received_at": T0, "arl_status": status, "arl_reasons": [], "n_lots": 1,
                "n_lots_refused": 0, "n_invoices": 1, "decoded_at": T0, "duplicate_of": None, "src": src}

    rows = [receipt("a" * 64, "a.b2", "P", 830004123, 5, 20161, "0:12"),
            receipt("b" * 64, "b.b2", "N", -1, -1, NO_DATE, "0:13")]  # unreadable header: NULLs
    with psycopg.connect(fresh_db) as conn:
        assert store.write_files(conn, rows) == 2
        got = conn.execute("SELECT emitter, file_sequence, creation_date::text FROM files ORDER BY name").fetchall()
        seen = store.seen_files(conn, ["a" * 64, "b" * 64, "c" * 64])
    assert got == [(830004123, 5, "2025-03-14"), (None, None, None)]
    assert seen == {f"sha:{'a' * 64}": "a.b2|0:12", "seq:830004123:5": "a.b2|0:12"}  # refused files never count


@pytest.mark.parametrize("change", [{"status": "bogus"}, {"reception_date": "14/03/2025"}])
def test_a_refused_record_is_named_never_quoted(fresh_db: str, change: dict[str, str]) -> None:
    from fseflow.infra.exceptions import StoreError

    recs, _ = liquidate([("b2-example-v1.b2", (DATA / "b2-example-v1.b2").read_bytes())])
    bad = {**recs[0], **change}
    with psycopg.connect(fresh_db) as conn, pytest.raises(StoreError) as e:
        store.write_decomptes(conn, [bad])
    assert "write_decomptes: refused by PostgreSQL (SQLSTATE" in str(e.value)
    assert bad["nir"] not in str(e.value) and "14/03/2025" not in str(e.value)
    assert e.value.__suppress_context__  # the driver's message (with the row) is not chained into logs
