"""Every worked vector once more, end to end: B2 bytes → decoder → controls → liquidation → décompte."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fseflow.codecs import b2, decompte
from fseflow.codecs.model import B2File, Detail, Invoice, Line, Lot
from fseflow.days import to_days
from fseflow.offline import Engine
from fseflow.processors import _hashtable as ht
from fseflow.tests.builders import nir_key, write_beneficiaries, write_professionals
from fseflow.tests.test_processors.vectors import load_vectors, professionals

VECTORS = load_vectors()
CIP13 = 3400930000120  # a valid EAN-13 key


def _date(s: str | None) -> dt.date | None:
    return dt.date.fromisoformat(s) if s else None


def _line(l: dict[str, Any], rate: int) -> Line:
    care = _date(l["care_date"])
    base = min(l["billed_amount"], (l["unit_price"] * l["coefficient"] * l["quantity"] + 50) // 100)
    fields = {"executor_rpps": 0, "executor_speciality": l["executor_speciality"], "care_date": care,
              "act_code": l["act"], "quantity": l["quantity"], "coefficient": l["coefficient"], "count": 1,
              "unit_price": l["unit_price"], "base": base, "rate_pct": rate, "amo_amount": base * rate // 100,
              "billed_amount": l["billed_amount"], "line_exo_flag": l.get("line_exo_flag", 0)}
    details = []
    if l["act"] in ("ADC", "ATM"):
        details.append(Detail("4M", {"ccam_code": "QZFA004", "activity": 1, "phase": 0}))
    if l["act"] == "B":
        details.append(Detail("4B", {"bio1_date": care, "bio1_quantity": 1, "bio1_nabm_code": 1104}))
    if l["act"].startswith("PH"):
        details.append(Detail("4P", {"dispensing_date": care, "cip13": CIP13, "boxes": l["quantity"],
                                     "box_unit_price": l["unit_price"], "rate_class": int(l["act"][2]),
                                     "total_billed": l["billed_amount"], "generic_flag": "G"}))
    return Line("4", fields, details)


def vector_file(v: Any) -> bytes:
    inv = v.invoice
    care = _date(inv["lines"][0]["care_date"])
    head = {"nir_opener": inv["nir"], "nir_key": nir_key(inv["nir"]), "rang_beneficiaire": 0, "invoice_number": 250000001,
            "nature_operation": 1, "grand_regime": 8, "caisse": 756, "centre": 100, "exo_reason": inv["exo_reason"],
            "prescriber_rpps": inv.get("prescriber_rpps", 0), "prescription_date": _date(inv.get("prescription_date")),
            "nature_assurance": inv["nature"], "exo_justification": int(inv["exo_reason"] != 0),
            "pregnancy_start_date": _date(inv.get("pregnancy_start_date")), "event_date": _date(inv.get("event_date")),
            "qualite_beneficiaire": 1, "birth_date": _date(inv["birth_date"]), "birth_rank": 1,
            "payee_code": inv["payee_code"], "amc_number": 0}
    lines = [_line(l, int(v.row["rate_pct"])) for l in inv["lines"]]
    lot = Lot(header={"ps_number": inv["ps"], "ps_speciality": inv["lot_speciality"], "convention_code": 1,
                      "tariff_zone": 0, "lot_nature_family": inv["lot_family"], "lot_creation_date": care,
                      "ps_rpps": 0, "structure_finess": ""},
              invoices=[Invoice(head=head, complement={"parcours_qualifier": inv["parcours"]}, lines=lines)])
    f = B2File(header={"emitter_ps_number": inv["ps"], "software_name": "VECTORS", "software_version": "1",
                       "norm_version": "B2P1", "creation_date": care, "creation_time": 120000, "dest_regime": 8,
                       "dest_caisse": 756, "dest_centre": 100, "test_flag": "P", "file_sequence": 1}, lots=[lot])
    return b2.encode(f)


@pytest.mark.parametrize("vector", VECTORS, ids=[v.row["id"] for v in VECTORS])
def test_worked_vector_through_b2(vector: Any, tmp_path: Path) -> None:
    engine = Engine(write_beneficiaries(tmp_path / "b.csv", [vector.beneficiary]),
                    write_professionals(tmp_path / "p.csv", professionals()))
    engine.state = ht.from_dict(dict(vector.state))
    (rec,) = engine.liquidate_file(vector_file(vector), f"{vector.row['id']}.b2")
    jsonschema.validate(rec, decompte.schema())
    row, t = vector.row, rec["totals"]
    assert rec["status"] == "paid" and rec["rejects"] == []
    assert rec["payee"] == {"PS": "ps", "insured": "insured"}[row["paid_to"]]
    assert {l["rate_pct"] for l in rec["lines"]} == {int(row["rate_pct"])}
    assert {l["budget"] for l in rec["lines"]} == {row["budget"]}
    for field, col in (("billed_cents", "billed_cents"), ("base_cents", "base_cents"), ("amo_cents", "amo_cents"),
                       ("c2s_cents", "c2s_cents"), ("pf_cents", "pf_cents"), ("franchise_cents", "franchise_cents"),
                       ("net_cents", "amo_net_cents"), ("paid_cents", "paid_now_cents"), ("debt_cents", "debt_cents"),
                       ("patient_share_cents", "patient_share_cents")):
        assert t[field] == int(row[col]), field
    assert rec["liquidation_date"] == row["care_date"] and to_days(_date(row["care_date"]))
