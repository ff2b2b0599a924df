"""`fseflow db migrate` and `fseflow db load-reference`, on DATABASE_URL or the embedded server."""
from __future__ import annotations

from pathlib import Path

import pytest

from fseflow.cli import main
from fseflow.infra.db import migrations
from fseflow.infra.services import DATABASE_ENV

DATA = Path(__file__).resolve().parents[1] / "data"
BENE, PROS = str(DATA / "example-beneficiaries.csv"), str(DATA / "example-professionals.csv")


def test_db_migrate_twice_on_database_url(empty_db: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(DATABASE_ENV, empty_db)
    assert main(["db", "migrate"]) == 0
    assert capsys.readouterr().out == f"applied {', '.join(name for name, _ in migrations())}\n"
    assert main(["db", "migrate"]) == 0
    assert capsys.readouterr().out == "database schema up to date\n"


def code_tables() -> list[str]:
    from importlib import resources

    return [f.name for f in resources.files("fseflow.processors.tables").iterdir() if f.name.endswith(".csv")]


def test_db_commands_on_the_embedded_server_in_dot_fseflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["db", "load-reference", BENE, PROS]) == 0  # migrates a new database first
    assert capsys.readouterr().out.splitlines()[:2] == ["beneficiaries: 3 added, 0 changed",
                                                       "professionals: 3 added, 0 changed"]
    assert main(["db", "load-reference", BENE, PROS]) == 0
    assert capsys.readouterr().out.splitlines() == ["beneficiaries: 0 added, 0 changed",
                                                    "professionals: 0 added, 0 changed",
                                                    f"code tables: 0 of {len(code_tables())} replaced (0 rows)"]
    assert main(["db", "migrate"]) == 0
    assert capsys.readouterr().out == "database schema up to date\n"
    pgdata = tmp_path / ".fseflow" / "pgdata"
    assert (pgdata / "PG_VERSION").exists()
    assert not (pgdata / "postmaster.pid").exists()  # stopped cleanly after each command


def test_load_reference_bad_input_exits_2_naming_the_file(empty_db: str, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv(DATABASE_ENV, empty_db)
    assert main(["db", "load-reference", str(tmp_path / "nope.csv"), PROS]) == 2
    assert capsys.readouterr().err == f"fseflow: error: {tmp_path / 'nope.csv'}: no such file\n"
