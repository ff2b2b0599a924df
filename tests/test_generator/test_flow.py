"""A generated flow: quota shares, B2 files that decode positively, records that follow the profile,
ground truth that points at real invoices, and byte-identical outputs for a seed."""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from fseflow.days import to_days
from fseflow.generator import generate
from fseflow.generator._calendar import add_months
from fseflow.generator._ids import ean13_valid, luhn_valid, nir_key
from fseflow.generator.api import Summary
from fseflow.processors.tables import read_table
from fseflow.tests.test_generator.support import FLOW, b2_files

b2 = pytest.importorskip("fseflow.codecs.b2")

KEYS = {r["code"]: r for r in read_table("letter_keys")}
CCAM_KEYS = {"ADC", "ACO", "ADA", "ADE", "ADI", "ATM", "SDE", "END"}
PHARMACY_KEYS = {"PH1", "PH7", "PH4", "PH2", "PHN"}
FAMILY_OF_NATURE = {"AS": "AS", "PM": "AS", "MA": "MA", "AT": "AT", "SG": "SG"}


def test_shares_of_files(flow: tuple[Path, Summary]) -> None:
    _, s = flow
    n = s.invoices
    assert n == FLOW["invoices"] == s.fse_files
    assert abs(100 * s.fse_files / (s.fse_files + s.paper_files) - 97.6) <= 0.2
    assert abs(100 * s.apias_files / n - 0.51) <= 0.05
    assert abs(100 * s.sig_files / n - 0.53) <= 0.05
    assert abs(100 * s.teleconsultations / n - 0.78) <= 0.05
    assert s.by_nature["AT"] == s.apias_files and s.by_lot_family["AT"] == s.apias_files
    assert sum(s.by_payee.values()) == n and set(s.by_payee) == {"10", "35", "36"}
    assert all(v == round(0.002 * n) for v in s.anomalies.values())


@pytest.fixture(scope="module")
def parsed(flow: tuple[Path, Summary]) -> list[tuple[str, Any]]:
    out, _ = flow
    return [(p.name, b2.parse(p.read_bytes(), p.name)) for p in b2_files(out)]


@pytest.fixture(scope="module")
def truth(flow: tuple[Path, Summary]) -> dict[tuple[str, int, str], dict[str, Any]]:
    out, _ = flow
    rows = [json.loads(line) for line in (out / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
    index = {(r["file"], r["lot"], r["invoice"]): r for r in rows}
    assert len(index) == len(rows)
    return index


def test_every_file_decodes_with_a_positive_arl(flow: tuple[Path, Summary]) -> None:
    out, s = flow
    files = b2_files(out)
    assert len(files) == s.files == len(list((out / "b2").glob("*.b2")))
    invoices = 0
    for path in files:
        data = path.read_bytes()
        created = dt.datetime.strptime(path.stem.rsplit("-", 1)[1], "%Y%m%d").date()
        d = b2.decode(data, path.name, reception_date=to_days(created))
        assert d.status == "P", (path.name, d.reasons[:3])
        invoices += len(d.invoices["invoice_number"])
    assert invoices == s.invoices


def test_truth_points_to_invoices_that_exist(parsed: list[tuple[str, Any]], truth: dict) -> None:
    found: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    for name, f in parsed:
        for lot_no, lot in enumerate(f.lots, 1):
            for inv in lot.invoices:
                found[(name, lot_no, f"{inv.head['invoice_number']:09d}")].append(inv.head["nir_opener"])
    for key, row in truth.items():
        assert found.get(key) == [row["nir"]], key
        assert luhn_valid(row["ps"]) and key[0].startswith(f"PS{row['ps']}-")
    kinds = Counter(r["kind"] for r in truth.values())
    assert len(kinds) == 8


def _anomaly(truth: dict, name: str, lot: int, inv: Any) -> str | None:
    row = truth.get((name, lot, f"{inv.head['invoice_number']:09d}"))
    return None if row is None else row["kind"]


def test_records_follow_the_profile(flow: tuple[Path, Summary], parsed: list[tuple[str, Any]], truth: dict) -> None:
    out, _ = flow
    known_ps = {r["ps_number"] for r in csv.DictReader(open(out / "professionals.csv", encoding="utf-8"))}
    sequences: dict[int, list[int]] = defaultdict(list)
    numbers: Counter[tuple[int, int]] = Counter()
    for name, f in parsed:
        h = f.header
        reception = h["creation_date"]
        assert (h["dest_regime"], h["dest_caisse"], h["dest_centre"], h["test_flag"], h["norm_version"]) == \
            (8, 756, 100, "P", "B2P1")
        assert name == f"PS{h['emitter_ps_number']:09d}-{reception:%Y%m%d}.b2"
        sequences[h["emitter_ps_number"]].append(h["file_sequence"])
        for lot_no, lot in enumerate(f.lots, 1):
            lh = lot.header
            assert lh["ps_number"] == h["emitter_ps_number"] and len(lot.invoices) <= 9999
            assert luhn_valid(f"{lh['ps_number']:09d}")
            for inv in lot.invoices:
                kind = _anomaly(truth, name, lot_no, inv)
                _check_invoice(inv, lh, reception, kind)
                if kind != "duplicate_invoice":
                    numbers[(lh["ps_number"], inv.head["invoice_number"])] += 1
                if kind != "unknown_ps":
                    assert f"{lh['ps_number']:09d}" in known_ps
    assert all(s == sorted(s) and len(set(s)) == len(s) for s in sequences.values())
    assert max(numbers.values()) == 1  # invoice numbers unique per PS


def _check_invoice(inv: Any, lot: dict[str, Any], reception: dt.date, anomaly: str | None) -> None:
    head = inv.head
    nature = head["nature_assurance"]
    assert FAMILY_OF_NATURE[nature] == lot["lot_nature_family"]
    if anomaly != "bad_nir_key":
        assert nir_key(head["nir_opener"]) == head["nir_key"]
    assert head["exo_justification"] == int(head["exo_reason"] != 0)
    assert head["payee_code"] in (10, 35, 36) and head["invoice_number"] > 0
    care = [line.fields["care_date"] for line in inv.lines]
    if anomaly != "future_care_date":
        assert max(care) <= reception
    if nature == "AT":
        assert head["event_date"] is not None and head["event_date"] <= min(care)
    if nature == "MA":
        start = head["pregnancy_start_date"]
        assert start <= min(care) and max(care) <= add_months(start, 10)
    needs = any(KEYS[line.fields["act_code"]]["prescription_required"] == "yes" for line in inv.lines)
    if needs and anomaly != "missing_prescription":
        assert head["prescriber_rpps"] != 0
        assert max(care) - dt.timedelta(days=365) <= head["prescription_date"] <= min(care)
    if inv.complement["nii"]:
        assert nir_key(inv.complement["nii"]) == int(inv.complement["nii_key"])
    for line in inv.lines:
        _check_line(line, lot)


def _check_line(line: Any, lot: dict[str, Any]) -> None:
    f = line.fields
    code = f["act_code"]
    kinds = [d.kind for d in line.details]
    assert f["billed_amount"] > 0 and f["quantity"] >= 1 and f["count"] >= 1 and f["base"] <= f["billed_amount"]
    if KEYS[code]["priced_by"] == "unit":
        assert f["coefficient"] == 100
    if lot["ps_speciality"] != 0:
        assert f["executor_speciality"] == lot["ps_speciality"]
    if code in CCAM_KEYS:
        assert kinds == ["4M"] and len(line.details[0].fields["ccam_code"]) == 7
    elif code == "B":
        assert kinds and set(kinds) == {"4B"}
    elif code in PHARMACY_KEYS:
        assert kinds == ["4P"]
        p = line.details[0].fields
        assert ean13_valid(f"{p['cip13']:013d}") and p["boxes"] == f["quantity"]
        assert p["box_unit_price"] == f["unit_price"] and p["total_billed"] == f["billed_amount"]
        assert p["rate_class"] == (0 if code == "PHN" else int(code[2]))
    elif KEYS[code]["category"] == "device":
        assert kinds and set(kinds) == {"3F"}
        assert sum(d.fields["total_billed"] for d in line.details) == f["billed_amount"]
    else:
        assert kinds == []


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_outputs(tmp_path: Path) -> None:
    """Same seed → same bytes, also in another process with another string-hash seed."""
    args: dict[str, Any] = {"invoices": 1_500, "days": 2, "population": 20_000}
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, seed=3, **args)
    script = f"from fseflow.generator import generate; generate({str(b)!r}, seed=3, **{args!r})"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=120)
    generate(c, seed=4, **args)
    da, db, dc = _digest(a), _digest(b), _digest(c)
    assert da == db and len(da) > 6
    assert da["beneficiaries.csv"] != dc["beneficiaries.csv"] and da["truth.jsonl"] != dc["truth.jsonl"]
