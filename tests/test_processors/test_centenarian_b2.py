"""A person over 100, end to end: the B2 carries two digits of the birth year, which read as the
2000s (b2-profile.md §2); the directory's full birth date finds them, and the invoice is paid."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from fseflow.codecs import b2
from fseflow.codecs.exceptions import FieldEncodeError
from fseflow.days import to_days
from fseflow.offline import Engine
from fseflow.tests.builders import write_beneficiaries, write_professionals
from fseflow.tests.test_codecs.factory import field_slice, file_model, invoice_model, lot_model, records

NIR = "2240483137011"
BORN = dt.date(1924, 4, 12)


def _file(birth: dt.date) -> bytes:
    return b2.encode(file_model([lot_model([invoice_model(nir=NIR, birth_date=birth)])]))


def test_the_encoder_writes_a_centenarian_birth_date_and_refuses_older() -> None:
    rec = next(r for r in records(file_model([lot_model([invoice_model(nir=NIR, birth_date=BORN)])]))
               if r[:1] == b"2")
    assert rec[field_slice("2", "birth_date")] == b"240412"
    assert b2.decode(_file(BORN), "c.b2").invoices["birth_date"].tolist() == [to_days(dt.date(2024, 4, 12))]
    with pytest.raises(FieldEncodeError, match="type 2 -> birth_date: year outside the two-digit window"):
        _file(dt.date(1824, 4, 12))


def test_a_centenarian_invoice_is_paid(tmp_path: Path) -> None:
    engine = Engine(write_beneficiaries(tmp_path / "b.csv", [{"nir": NIR, "birth_date": BORN.isoformat(), "sex": 2}]),
                    write_professionals(tmp_path / "p.csv", [{"ps_number": 830004123, "rpps": 0, "speciality": 0},
                                                             {"ps_number": 830004123, "rpps": 10001234567, "speciality": 1}]))
    (rec,) = engine.liquidate_file(_file(BORN), "c.b2")
    assert rec["status"] == "paid" and rec["rejects"] == [], rec["rejects"]
    assert rec["totals"]["amo_cents"] > 0
