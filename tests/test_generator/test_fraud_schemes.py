"""Fraud schemes of the generator (fraud.md §5): off by default and byte-neutral, and when on,
one truth row per actor whose signal the generated B2 files really show, while the controls
reject only what they must (care after death: C18) and the anomaly truth score stays exact.

The flow is decoded with the B2 codec and liquidated with the offline engine, as the demo does.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from fseflow.days import from_days, to_days
from fseflow.generator import GeneratorError, generate
from fseflow.generator.fraud import FRAUD_DEFAULT_RATES, SCHEMES
from fseflow.processors.tables import read_table
from fseflow.tests.test_generator.support import b2_files

b2 = pytest.importorskip("fseflow.codecs.b2")
offline = pytest.importorskip("fseflow.offline")
directory = pytest.importorskip("fseflow.processors.directory")

#: small: 20,000 persons give a few deceased beneficiaries and enough fresh ones for ghosts
FLOW: dict[str, Any] = {"invoices": 1_500, "seed": 13, "days": 3, "population": 20_000}
TRUTH_KEYS = {"scheme", "kind", "ps_number", "rpps", "indicators", "first_day", "last_day", "invoices", "patients",
              "amount_cents"}


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    plain, fraud = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("fraud")
    generate(plain, **FLOW)
    generate(fraud, **FLOW, fraud_rates=FRAUD_DEFAULT_RATES)
    return {"plain": plain, "fraud": fraud}


@pytest.fixture(scope="module")
def truth(flows: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    rows = defaultdict(list)
    for r in _jsonl(flows["fraud"] / "fraud_truth.jsonl"):
        rows[r["scheme"]].append(r)
    return rows


@pytest.fixture(scope="module")
def lines(flows: dict[str, Path]) -> list[dict[str, Any]]:
    """Every line of the fraud flow, decoded from its B2 files in arrival order, with its invoice."""
    out = []
    for path in b2_files(flows["fraud"]):
        d = b2.decode(path.read_bytes(), path.name)
        assert d.status == "P", path.name
        inv, ln = d.invoices, d.lines
        for i in range(inv["invoice_number"].size):
            lot = d.lots[int(inv["lot_idx"][i])]
            who = (inv["nir_opener"][i].decode(), int(inv["birth_date"][i]), int(inv["birth_rank"][i]),
                   int(inv["quality"][i]))
            start = int(inv["line_start"][i])
            for j in range(start, start + int(inv["line_count"][i])):
                out.append({
                    "file": path.name, "lot": lot.lot_number, "ps": f"{lot.ps_number:09d}",
                    "invoice": f"{int(inv['invoice_number'][i]):09d}", "patient": who,
                    "prescriber": int(inv["prescriber_rpps"][i]), "rpps": int(ln["executor_rpps"][j]),
                    "day": int(ln["care_date"][j]), "act": ln["act_code"][j].decode().strip(),
                    "quantity": int(ln["quantity"][j]), "coefficient": int(ln["coefficient"][j]),
                    "complement": int(ln["complement_code"][j]), "amo": int(ln["amo_amount"][j]),
                    "billed": int(ln["billed_amount"][j])})
    return out


Records = dict[tuple[str, int, str], dict[str, Any]]


@pytest.fixture(scope="module")
def liquidated(flows: dict[str, Path]) -> tuple[Records, Any]:
    """The fraud flow through the offline engine: décompte records by (file, lot, invoice), truth score."""
    from fseflow.truth import TruthChecker

    out = flows["fraud"]
    engine = offline.Engine(directory.load_beneficiaries(out / "beneficiaries.csv"),
                            directory.load_professionals(out / "professionals.csv"))
    checker = TruthChecker(out / "truth.jsonl")
    records = {}
    for path in b2_files(out):
        for rec in engine.liquidate_file(path.read_bytes(), path.name):
            checker.add(rec)
            records[(rec["file"], rec["lot"], rec.get("invoice"))] = rec
    return records, checker.score()


def _by_ps(lines: list[dict[str, Any]], ps: str) -> list[dict[str, Any]]:
    return [x for x in lines if x["ps"] == ps]


# -- off ---------------------------------------------------------------------------------------------
def test_fraud_off_leaves_every_output_byte_identical(flows: dict[str, Path], tmp_path: Path) -> None:
    plain = _files(flows["plain"])
    assert "fraud_truth.jsonl" not in plain and "fraud" not in json.loads(plain["summary.json"])
    zero = tmp_path / "zero"
    generate(zero, **FLOW, fraud_rates={s.name: 0.0 for s in SCHEMES})
    assert _files(zero) == plain
    # a folder that held a fraud flow: regenerated without fraud, nothing of it is left
    reused = tmp_path / "reused"
    generate(reused, **FLOW, fraud_rates={"care_after_death": 0.5})
    assert (reused / "fraud_truth.jsonl").exists()
    generate(reused, **FLOW, fraud_rates={})
    assert _files(reused) == plain


def test_unknown_or_out_of_range_rates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="unknown fraud schemes: nope"):
        generate(tmp_path, **FLOW, fraud_rates={"nope": 0.1})
    with pytest.raises(GeneratorError, match="between 0 and 1"):
        generate(tmp_path, **FLOW, fraud_rates={"rebilling": -0.1})


# -- truth -------------------------------------------------------------------------------------------
def test_one_truth_row_per_actor_with_the_summary_counts(flows: dict[str, Path],
                                                         truth: dict[str, list[dict[str, Any]]]) -> None:
    out = flows["fraud"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    numbers = {r["ps_number"] for r in _csv(out / "professionals.csv")}
    assert set(truth) == {s.name for s in SCHEMES}
    for s in SCHEMES:
        rows = truth[s.name]
        assert summary["fraud"][s.name] == {"actors": len(rows), "invoices": sum(r["invoices"] for r in rows),
                                            "amount_cents": sum(r["amount_cents"] for r in rows)}
        for r in rows:
            assert set(r) == TRUTH_KEYS | ({"beneficiary"} if s.actor == "beneficiary" else set())
            assert r["kind"] == s.actor and r["indicators"] == list(s.indicators)
            assert r["ps_number"] in numbers and r["invoices"] >= 1 and r["amount_cents"] > 0
            assert r["first_day"] <= r["last_day"]
            if s.actor == "beneficiary":  # a pseudonymous id, never a NIR
                assert isinstance(r["beneficiary"], int) and len(str(r["beneficiary"])) < 13


def test_invoice_numbers_stay_unique_per_ps(flows: dict[str, Path], lines: list[dict[str, Any]]) -> None:
    summary = json.loads((flows["fraud"] / "summary.json").read_text(encoding="utf-8"))
    invoices = {(x["file"], x["lot"], x["invoice"], x["ps"]) for x in lines}
    assert len(invoices) == summary["invoices"]
    repeated = {k for k, n in Counter((ps, inv) for _, _, inv, ps in invoices).items() if n > 1}
    resends = {(t["ps"], t["invoice"]) for t in _jsonl(flows["fraud"] / "truth.jsonl")
               if t["kind"] == "duplicate_invoice"}
    assert repeated == resends  # only the C28 anomalies reuse a number


@pytest.mark.slow
def test_truth_score_stays_exact_and_fraud_passes_the_controls(flows: dict[str, Path],
                                                               liquidated: tuple[Records, Any]) -> None:
    records, score = liquidated
    control = _jsonl(flows["fraud"] / "truth.jsonl")
    assert score.exact and score.found == score.expected == len(control)
    assert Counter(r["kind"] for r in control)["care_after_death"] >= 1
    listed = {(r["file"], r["lot"], r["invoice"]) for r in control}
    for key, rec in records.items():
        if key not in listed:
            assert rec["status"] == "paid" and not rec["rejects"], (key, rec["rejects"])
            assert all(s["code"] not in ("8040-001", "8041-001") for s in rec["signals"]), key


# -- the signals -------------------------------------------------------------------------------------
def test_hyperactive_nurse_bills_impossible_days(truth: dict[str, list[dict[str, Any]]],
                                                 lines: list[dict[str, Any]]) -> None:
    table = {r["code"]: (float(r["minutes"]), r["per"]) for r in read_table("act_minutes")}

    def minutes(x: dict[str, Any]) -> float:
        m, per = table.get(x["act"], (0.0, "act"))
        return x["quantity"] * (m if per == "act" else m * x["coefficient"] / 100)

    for r in truth["hyperactive_nurse"]:
        mine = [x for x in lines if x["rpps"] == int(r["rpps"])]
        per_day = Counter()
        for x in mine:
            per_day[x["day"]] += minutes(x)
        impossible = [d for d, m in per_day.items() if m > 1_440]
        assert len(impossible) >= min(3, FLOW["days"]), per_day
        assert {x["act"] for x in mine} & {"AMI", "AIS"}
        assert len({x["patient"] for x in mine}) >= 100  # spread over many patients


def test_rebilled_acts_repeat_earlier_lines_under_new_numbers_and_are_paid(
        truth: dict[str, list[dict[str, Any]]], lines: list[dict[str, Any]], liquidated: tuple[Records, Any]) -> None:
    records = liquidated[0]
    first: dict[tuple[Any, ...], tuple[str, str]] = {}
    repeats: list[dict[str, Any]] = []
    fraudsters = {r["ps_number"] for r in truth["rebilling"]}
    for x in lines:  # arrival order
        key = (x["patient"], x["act"], x["day"])
        if key in first and first[key] != (x["ps"], x["invoice"]) and x["ps"] in fraudsters:
            repeats.append({**x, "earlier": first[key]})
        first.setdefault(key, (x["ps"], x["invoice"]))
    for r in truth["rebilling"]:
        mine = [x for x in repeats if x["ps"] == r["ps_number"]]
        assert mine, r
        # F06 (same PS, another invoice number) and F03 (first billed by another PS)
        assert any(x["earlier"][0] == x["ps"] and x["earlier"][1] != x["invoice"] for x in mine)
        assert any(x["earlier"][0] != x["ps"] for x in mine)
        for x in mine:
            rec = records[(x["file"], x["lot"], x["invoice"])]
            assert rec["status"] == "paid" and not rec["rejects"]


def test_upcoding_gp_puts_majorations_on_most_lines(truth: dict[str, list[dict[str, Any]]],
                                                     lines: list[dict[str, Any]]) -> None:
    def share(xs: list[dict[str, Any]]) -> float:
        hits = sum(1 <= x["complement"] <= 3 for x in xs) + sum(x["act"] in ("MM", "MU", "MD") for x in xs)
        return hits / len(xs)

    upcoders = {r["ps_number"] for r in truth["upcoded_majorations"]}
    for ps in upcoders:
        assert share(_by_ps(lines, ps)) > 0.5
    gp_numbers = {x["ps"] for x in lines if x["act"] in ("G", "GS", "VG")} - upcoders
    peers = [x for x in lines if x["ps"] in gp_numbers]
    assert share(peers) < 0.2


def test_captive_supplier_is_new_and_fed_by_one_prescriber(flows: dict[str, Path],
                                                           truth: dict[str, list[dict[str, Any]]],
                                                           lines: list[dict[str, Any]]) -> None:
    before = {r["ps_number"] for r in _csv(flows["plain"] / "professionals.csv")}
    for r in truth["captive_supplier"]:
        assert r["ps_number"] not in before
        invoices = {(x["file"], x["invoice"]): x for x in _by_ps(lines, r["ps_number"])}
        assert len(invoices) == r["invoices"] >= 30
        top = Counter(x["prescriber"] for x in invoices.values()).most_common(1)[0][1]
        assert top / len(invoices) >= 0.8
        old = sum(_age(x["patient"][1], x["day"]) >= 75 for x in invoices.values())
        assert old / len(invoices) >= 0.7


def _age(birth: int, day: int) -> int:
    b, d = from_days(birth), from_days(day)
    assert b is not None and d is not None
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


def test_captive_supplier_volume_grows_fast(tmp_path: Path) -> None:
    generate(tmp_path, invoices=300, seed=5, days=65, population=5_000, fraud_rates={"captive_supplier": 0.01})
    (r,) = _jsonl(tmp_path / "fraud_truth.jsonl")
    months: Counter[tuple[int, int]] = Counter()
    for path in b2_files(tmp_path):
        if path.name.startswith(f"PS{r['ps_number']}-"):
            d = b2.decode(path.read_bytes(), path.name)
            for day, amount in zip(d.lines["care_date"].tolist(), d.lines["billed_amount"].tolist()):
                c = from_days(day)
                assert c is not None
                months[(c.year, c.month)] += amount
    assert months[(2026, 12)] >= 3 * months[(2026, 10)] > 0


def test_ghost_patients_get_no_other_care(truth: dict[str, list[dict[str, Any]]],
                                          lines: list[dict[str, Any]]) -> None:
    for r in truth["ghost_patients"]:
        patients = {x["patient"] for x in _by_ps(lines, r["ps_number"])}
        assert len(patients) >= r["patients"] >= 25
        others = {x["patient"] for x in lines if x["ps"] != r["ps_number"]}
        assert len(patients - others) >= r["patients"]


@pytest.mark.slow
def test_care_after_death_is_rejected_by_c18_and_listed_in_truth(
        flows: dict[str, Path], truth: dict[str, list[dict[str, Any]]], lines: list[dict[str, Any]],
        liquidated: tuple[Records, Any]) -> None:
    records, out = liquidated[0], flows["fraud"]
    rows = _csv(out / "beneficiaries.csv")
    control = [t for t in _jsonl(out / "truth.jsonl") if t["kind"] == "care_after_death"]
    assert len(control) == sum(r["invoices"] for r in truth["care_after_death"])
    for r in truth["care_after_death"]:
        person = rows[r["beneficiary"]]
        death = to_days(dt.date.fromisoformat(person["death_date"]))
        assert person["rights_end"] == ""  # rights still open: C18 alone can see it
        who = (person["nir"], to_days(dt.date.fromisoformat(person["birth_date"])), int(person["birth_rank"]),
               int(person["quality"]))
        mine = [x for x in lines if x["patient"] == who]
        assert len({(x["file"], x["invoice"]) for x in mine}) == r["invoices"]
        assert all(x["day"] > death and x["ps"] == r["ps_number"] for x in mine)
        for x in mine:
            key = (x["file"], x["lot"], x["invoice"])
            assert {c["code"] for c in records[key]["rejects"]} == {"8018-001"}
            assert any((t["file"], t["lot"], t["invoice"]) == key and t["code"] == "8018-001" for t in control)


# -- determinism and the CLI ---------------------------------------------------------------------------
def test_same_seed_same_bytes_through_the_cli_flag(flows: dict[str, Path], tmp_path: Path) -> None:
    from fseflow.cli import main

    args = ["generate", "--out", str(tmp_path), "--invoices", str(FLOW["invoices"]), "--seed", str(FLOW["seed"]),
            "--days", str(FLOW["days"]), "--population", str(FLOW["population"]), "--fraud"]
    assert main(args) == 0
    assert _files(tmp_path) == _files(flows["fraud"])
