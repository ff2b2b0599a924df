"""`fseflow demo` as a newcomer runs it (small): it ends with its summary, and nothing it prints or
logs holds a NIR, IBAN or name of the generated directory."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fseflow.benchmarks.faults import logs_of, personal_data_in

pytestmark = pytest.mark.slow


def test_the_demo_runs_end_to_end_and_prints_no_personal_data(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "fseflow.cli", "demo", "--invoices", "800", "--population", "20000",
                           "--workers", "1", "--partitions", "2", "--out", str(out)],
                          env={**env, "COLUMNS": "160"}, capture_output=True, timeout=600)
    (tmp_path / "demo.out").write_bytes(done.stdout)
    (tmp_path / "demo.err").write_bytes(done.stderr)
    text = (done.stdout + done.stderr).decode("utf-8", "replace")
    assert done.returncode == 0, text[-6000:]
    assert "décomptes" in text and "reconcil" in text.lower(), text[-6000:]
    logs = [tmp_path / "demo.out", tmp_path / "demo.err", *logs_of(out)]
    assert any(p.name.startswith("worker-") for p in logs)
    assert personal_data_in(logs, out / "flow") == []
