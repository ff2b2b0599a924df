"""Every worked vector of liquidation.md §5, end to end through payments.

Each vector's B2 file is liquidated (as in test_vectors_b2), its décompte written with its ledger
entries, and every liquidation day is cut off in order. The vectors' own columns are the oracle:
per budget and payee, Σ paid_now_cents − Σ debt_cents = what was transferred + what is carried,
and every day reconciles.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from pathlib import Path

import psycopg

from fseflow.cutoff import pay_day
from fseflow.infra import db
from fseflow.offline import Engine
from fseflow.processors import _hashtable as ht
from fseflow.reconcile import reconcile
from fseflow.tests.builders import write_beneficiaries, write_professionals
from fseflow.tests.test_payments.support import write
from fseflow.tests.test_processors.test_vectors_b2 import VECTORS, vector_file
from fseflow.tests.test_processors.vectors import professionals

IBAN = "FR7630006000011234567890189"


def test_the_vectors_are_paid_to_their_payees_per_budget(fresh_db: str, tmp_path: Path) -> None:
    pros = [{**p, "iban": IBAN, "name": f"PS {p['ps_number']}"} for p in professionals()]
    bene_rows = {v.beneficiary["birth_date"]: {**v.beneficiary, "iban": IBAN} for v in VECTORS}
    records, want = [], defaultdict(int)
    for v in VECTORS:
        engine = Engine(write_beneficiaries(tmp_path / "b1.csv", [v.beneficiary]),
                        write_professionals(tmp_path / "p1.csv", pros))
        engine.state = ht.from_dict(dict(v.state))
        data = vector_file(v)
        (rec,) = engine.liquidate_file(data, f"{v.row['id']}.b2")
        # some vectors differ only by the counters already taken (V13, V14, V24): same bytes, so the
        # vector's id is part of the file's identity here
        records.append({**rec, "file_id": hashlib.sha256(data + v.row["id"].encode()).hexdigest(), "received_at": 1.7e9,
                        "liquidated_at": 1.7e9, "partition": 0})
        row = v.row
        payee = ("P", rec["ps"]) if row["paid_to"] == "PS" else ("A", rec["nir"])
        want[(row["budget"], *payee)] += int(row["paid_now_cents"])
        if int(row["debt_cents"]):
            want[("AMO", "A", rec["nir"])] -= int(row["debt_cents"])
    write_beneficiaries(tmp_path / "b.csv", list(bene_rows.values()))
    write_professionals(tmp_path / "p.csv", pros)
    db.load_reference(fresh_db, tmp_path / "b.csv", tmp_path / "p.csv")
    write(fresh_db, records)
    days = sorted({dt.date.fromisoformat(r["liquidation_date"]) for r in records})
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for day in days:
            pay_day(conn, day, tmp_path / "pay")
        for day in days:
            result = reconcile(conn, day, tmp_path / "pay")
            assert result.holds, result.failure
        opener = {n: str(r) for n, r in conn.execute("SELECT nir, min(row_id) FROM beneficiaries WHERE quality = 1"
                                                    " GROUP BY nir")}
        got = defaultdict(int)
        for budget, kind, payee, cents in conn.execute(
                "SELECT budget, payee_kind, payee_id, sum(amount_cents) FROM transfers GROUP BY 1, 2, 3"):
            got[(budget, kind, payee)] += int(cents)
        last = days[-1]
        for budget, kind, payee, cents in conn.execute(
                "SELECT budget, payee_kind, payee_id, balance_cents FROM carried_balances WHERE day = %s", (last,)):
            got[(budget, kind, payee)] += int(cents)
    expected = {(b, k, opener[p] if k == "A" else p): c for (b, k, p), c in want.items() if c}
    assert {k: v for k, v in got.items() if v} == expected
    assert {b for b, _, _ in expected} == {"AMO", "APIAS", "SIG"}   # the three budgets, never mixed
