"""The offline engine and `fseflow liquidate` on the worked example and on bad input."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import orjson
import pytest

from fseflow.cli import main
from fseflow.codecs import decompte

DATA = Path(__file__).resolve().parent / "data"
EXAMPLE = DATA / "b2-example-v1.b2"


def run(tmp_path: Path, *files: Path, extra: tuple[str, ...] = ()) -> tuple[int, list[dict]]:
    out = tmp_path / "d.jsonl"
    code = main(["liquidate", *map(str, files), "--beneficiaries", str(DATA / "example-beneficiaries.csv"),
                 "--professionals", str(DATA / "example-professionals.csv"), "--out", str(out), "--quiet", *extra])
    records = [orjson.loads(l) for l in out.read_bytes().splitlines()] if out.exists() else []
    return code, records


def test_worked_example_pays_what_the_profile_says(tmp_path: Path) -> None:
    code, recs = run(tmp_path, EXAMPLE)
    assert code == 0
    for r in recs:
        jsonschema.validate(r, decompte.schema())
    first, second = recs
    # b2-profile.md §6: 21.00 to the centre + PF debt 2.00; 3.78 to the centre + franchise debt 1.00, budget AMO
    assert (first["status"], first["payee"], first["ps"], first["invoice"]) == ("paid", "ps", "830004123", "250000101")
    assert first["totals"]["paid_cents"] == 2100 and first["totals"]["debt_cents"] == 200
    assert first["totals"]["pf_cents"] == 200 and first["lines"][0]["budget"] == "AMO"
    assert second["nir"] == "1490383137009" and second["rang"] == "000"
    assert second["totals"]["paid_cents"] == 378 and second["totals"]["franchise_cents"] == 100
    assert second["lines"][0]["act"] == "AMI" and second["lines"][0]["coef_hundredths"] == 200
    assert second["lines"][0]["care_date"] == "2025-03-12"
    assert first["rejects"] == [] and second["signals"] == []


def test_a_file_received_twice_is_acknowledged_not_liquidated_again(tmp_path: Path) -> None:
    copy = tmp_path / "again.b2"
    copy.write_bytes(EXAMPLE.read_bytes())
    code, recs = run(tmp_path, EXAMPLE, copy)
    assert code == 0 and len(recs) == 3
    assert recs[2] == {"file": "again.b2", "lot": None, "status": "rejected", "rejects": [
        {"code": "8009-001", "line": None, "field": "file_sequence", "record": 1,
         "message": "file already received as b2-example-v1.b2: acknowledged, not liquidated again"}]}
    jsonschema.validate(recs[2], decompte.schema())


def test_missing_file_exits_non_zero_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(tmp_path, tmp_path / "nope.b2")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"fseflow: error: {tmp_path / 'nope.b2'}: no such file"]


def test_not_b2_exits_non_zero_naming_file_and_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.b2"
    bad.write_text("hello, this is not a B2 file\n" * 10)
    code, _ = run(tmp_path, bad)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "notes.b2" in err and "record=1" in err and len(err.splitlines()) == 1


def test_as_of_after_forclusion_rejects_the_lines(tmp_path: Path) -> None:
    code, recs = run(tmp_path, EXAMPLE, extra=("--as-of", "2027-07-01"))
    assert code == 0
    for r in recs:
        assert r["status"] == "rejected"
        assert [x["code"] for x in r["rejects"]] == ["8030-001"] and r["rejects"][0]["line"] == 1
        assert r["lines"][0]["reject"] == "8030-001" and r["totals"]["paid_cents"] == 0


def test_a_refused_lot_is_reported_in_place_and_the_other_lot_is_liquidated(tmp_path: Path) -> None:
    from fseflow.codecs import b2
    from fseflow.tests.test_codecs.factory import example_model, invoice_model, lot_model

    model = example_model()
    # a second lot whose billing number has a wrong Luhn key: C08 refuses that lot only
    model.lots.append(lot_model([invoice_model(number=250000103)], ps_number=830004124))
    model.lots[1], model.lots[0] = model.lots[0], model.lots[1]
    path = tmp_path / "two-lots.b2"
    path.write_bytes(b2.encode(model, framing="LF"))
    code, recs = run(tmp_path, path)
    assert code == 0
    for r in recs:
        jsonschema.validate(r, decompte.schema())
    refused, *paid = recs
    assert refused["lot"] == 1 and refused["status"] == "rejected" and "lines" not in refused
    assert [r["code"] for r in refused["rejects"]] == ["8008-001"]
    assert refused["rejects"][0]["field"] == "ps_number" and refused["rejects"][0]["record"] == 2
    assert [(r["lot"], r["invoice"], r["status"]) for r in paid] == [(2, "250000101", "paid"), (2, "250000102", "paid")]
    assert sum(r["totals"]["paid_cents"] for r in paid) == 2100 + 378
