"""`python -m fseflow.benchmarks.fraud_eval` on a small flow: it scores against the ground truth."""
from __future__ import annotations

from pathlib import Path

import orjson

from fseflow.benchmarks.fraud_eval import main


def test_fraud_eval_prints_per_scheme_figures(tmp_path: Path, capsys) -> None:
    assert main(["--invoices", "4000", "--days", "5", "--population", "20000", "--seed", "3",
                 "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    report = orjson.loads((tmp_path / "fraud-eval-3.json").read_bytes())
    schemes = report["schemes"]
    assert {"hyperactive_nurse", "care_after_death", "rebilling", "upcoded_majorations"} <= set(schemes)
    # impossible days (F01) and care after death (F04) weigh 0.9 each: always alerted
    assert schemes["hyperactive_nurse"]["recall"] == 1.0 and schemes["care_after_death"]["recall"] == 1.0
    assert report["alerted"] <= max(1, report["practitioners"] // 100)   # the 1 % cap
    assert report["precision"] == 1.0
    assert "hyperactive_nurse" in text and "precision" in text
