"""`fseflow pay`, `fseflow reconcile` and `fseflow report delays` on DATABASE_URL."""
from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from fseflow.cli import main
from fseflow.infra.services import DATABASE_ENV
from fseflow.tests.test_payments.support import load_example


def test_pay_reconcile_and_report_delays(fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    load_example(fresh_db)
    monkeypatch.setenv(DATABASE_ENV, fresh_db)
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "payments"
    assert main(["pay", "--date", "2025-03-14", "--out", str(out)]) == 0
    text = capsys.readouterr().err
    assert "FSF-AMO-20250317-01.xml" in text and "24.78 €" in text and "-3.00 € (2)" in text
    assert (out / "sepa" / "FSF-AMO-20250317-01.xml").exists()
    assert (out / "returns" / "NOEMIE-830004123-20250314.txt").exists()
    assert main(["reconcile", "--date", "2025-03-14", "--out", str(out)]) == 0
    assert "reconciliation of 2025-03-14 holds" in capsys.readouterr().err
    assert main(["report", "delays", "--from", "2025-03-01", "--to", "2025-03-31"]) == 0
    text = capsys.readouterr().err
    assert "1.00 working days" in text and "2 (100.0%)" in text
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("UPDATE transfers SET amount_cents = 2477")
    assert main(["reconcile", "--date", "2025-03-14", "--out", str(out)]) == 1
    text = capsys.readouterr().err
    assert "FAILS" in text and "AMO20250317P830004123001" in text and "1850483137042" not in text


def test_reconcile_without_a_cut_off_says_so(fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(DATABASE_ENV, fresh_db)
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["reconcile", "--date", "2025-03-14", "--out", str(tmp_path)]) == 1
    assert "run `fseflow pay --date 2025-03-14` first" in capsys.readouterr().err
