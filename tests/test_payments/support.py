"""A database holding the worked B2 example liquidated on 14 March 2025, and a ledger."""
from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import psycopg

from fseflow.infra import db, store
from fseflow.infra.ledger import write_entries
from fseflow.processors.payments import entries
from fseflow.tests.test_infra.test_store import BENE, DATA, PROS, liquidate

DAY = dt.date(2025, 3, 14)      # the worked file's reception and liquidation day
EXAMPLE_PS = "830004123"


def example_records() -> list[dict[str, Any]]:
    recs, _ = liquidate([("b2-example-v1.b2", (DATA / "b2-example-v1.b2").read_bytes())])
    return [r for r in recs if "lines" in r]


def load_example(url: str) -> list[dict[str, Any]]:
    """Directory, received file, décomptes and ledger of the worked example (as the stream's sink
    and ledger agents write them)."""
    from fseflow.codecs import b2

    db.load_reference(url, BENE, PROS)
    data = (DATA / "b2-example-v1.b2").read_bytes()
    decoded = b2.decode(data, "b2-example-v1.b2")
    recs = example_records()
    with psycopg.connect(url) as conn:
        store.write_files(conn, [store.file_row(decoded, received_at=1.7e9, decoded_at=1.7e9, n_invoices=len(recs))])
        conn.commit()
    write(url, recs)
    return recs


def write(url: str, recs: list[dict[str, Any]]) -> None:
    with psycopg.connect(url) as conn:
        store.write_decomptes(conn, recs)
        write_entries(conn, entries(recs))
        conn.commit()


def insured_payment(recs: list[dict[str, Any]], day: dt.date, net_cents: int, record: int = 9001) -> dict[str, Any]:
    """A paid GP consultation without tiers payant for the first invoice's insured (vector V01: net 19.00)."""
    r = copy.deepcopy(recs[0])
    r.update(record=record, payee="insured", payee_code=10, reception_date=day.isoformat(),
             liquidation_date=day.isoformat(), rejects=[], signals=[])
    line = r["lines"][0]
    line.update(paid_cents=net_cents, debt_cents=0, net_cents=net_cents, pf_cents=0, franchise_cents=0,
                amo_cents=net_cents + 200, c2s_cents=0)
    line["pf_cents"] = 200  # the PF is taken from the net here: no new debt
    r["lines"] = [line]
    r["totals"] = {**r["totals"], **{k: line[k] for k in r["totals"] if k in line}}
    return r
