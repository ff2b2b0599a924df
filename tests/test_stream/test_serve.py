"""`fseflow serve --spool`: the intake, a worker and the services together, stopped by SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from fseflow.infra import db, store

DATA = Path(__file__).resolve().parents[1] / "data"
pytestmark = pytest.mark.slow


def test_a_file_dropped_in_the_spool_ends_as_decomptes_in_postgresql(tmp_path: Path, fresh_db: str,
                                                                     kafka_bootstrap: str) -> None:
    db.load_reference(fresh_db, DATA / "example-beneficiaries.csv", DATA / "example-professionals.csv")
    spool = tmp_path / "spool"
    spool.mkdir()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": fresh_db,
           "FSEFLOW_TOPIC_PREFIX": f"s{uuid.uuid4().hex[:8]}.", "FSEFLOW_PARTITIONS": "2"}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "fseflow.cli", "serve", "--spool", str(spool), "--settle", "0.1"],
                            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        part = spool / "PS830004123.b2.part"
        part.write_bytes((DATA / "b2-example-v1.b2").read_bytes())
        part.rename(spool / "PS830004123.b2")
        with db.connect(fresh_db) as conn:
            deadline = time.monotonic() + 120
            while True:
                got = store.read_decomptes(conn)
                conn.commit()
                if len(got) == 2:
                    break
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.3)
        assert sorted(r["invoice"] for r in got) == ["250000101", "250000102"]
        assert {r["file"] for r in got} == {"PS830004123.b2"}
        assert (spool / "archive" / "PS830004123.b2").exists() and (spool / "archive" / "PS830004123.b2.arl").exists()
        assert not (spool / "PS830004123.b2").exists()
        # the health view: every component up, and (once swept) nothing pending in the journal
        deadline = time.monotonic() + 30
        while True:
            up = status(tmp_path, env)
            text = up.stdout + up.stderr  # the report console writes to stderr
            if up.returncode == 0 and "journal: 0 file(s)" in text:
                break
            assert time.monotonic() < deadline, (up.returncode, up.stdout, up.stderr)
            time.sleep(0.5)
        for component in ("broker", "postgres", "worker-0", "spool"):
            assert any(line.split()[:2] == [component, "up"] for line in text.splitlines()), text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, (tmp_path / "serve.log").read_text()
    gone = status(tmp_path, env)
    assert gone.returncode == 1 and "not running" in gone.stdout + gone.stderr
    (tmp_path / "elsewhere").mkdir()
    none = status(tmp_path / "elsewhere", env)
    assert none.returncode == 2 and "no fseflow serve has run" in none.stderr


def status(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fseflow.cli", "status"], cwd=cwd, env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=60)
