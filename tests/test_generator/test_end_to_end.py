"""The liquidation engine finds no reject on clean invoices and exactly the injected code on each anomaly.

This runs the offline engine (`fseflow.offline`) over a small generated flow, in arrival order
(manifest.csv), each file liquidated on its creation date, as `fseflow liquidate` does.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fseflow.generator import generate
from fseflow.tests.test_generator.support import b2_files

offline = pytest.importorskip("fseflow.offline")
directory = pytest.importorskip("fseflow.processors.directory")

RATES = {"duplicate_invoice": 0.005, "unknown_beneficiary": 0.005, "rights_closed": 0.005, "future_care_date": 0.005,
         "forclusion": 0.005, "bad_nir_key": 0.005, "unknown_ps": 0.005, "missing_prescription": 0.005}


@pytest.mark.slow
def test_engine_rejects_exactly_the_injected_anomalies(tmp_path: Path) -> None:
    summary = generate(tmp_path, invoices=1_600, seed=21, days=2, population=30_000, anomaly_rates=RATES)
    truth = {(r["file"], r["lot"], r["invoice"]): r
             for r in map(json.loads, (tmp_path / "truth.jsonl").read_text(encoding="utf-8").splitlines())}
    engine = offline.Engine(directory.load_beneficiaries(tmp_path / "beneficiaries.csv"),
                            directory.load_professionals(tmp_path / "professionals.csv"))
    seen, records = set(), 0
    for path in b2_files(tmp_path):
        for rec in engine.liquidate_file(path.read_bytes(), path.name):
            records += 1
            key = (rec["file"], rec["lot"], rec.get("invoice"))
            codes = {r["code"] for r in rec["rejects"]}
            if key in truth:
                seen.add(key)
                assert codes == {truth[key]["code"]}, (truth[key]["kind"], sorted(codes))
                assert rec["nir"] == truth[key]["nir"] and rec["ps"] == truth[key]["ps"]
            else:
                assert rec["status"] == "paid" and not codes, (key, sorted(codes))
                assert all(s["code"] not in ("8040-001", "8041-001") for s in rec["signals"])
    assert records == summary.invoices and seen == set(truth) and len(truth) == 8 * 8
