"""Migrations: in order, recorded, idempotent, safe against concurrent callers, edits refused."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from fseflow.infra.db import connect, migrate, migrations
from fseflow.infra.exceptions import MigrationError, ServiceError

EXPECTED_TABLES = {"schema_migrations", "files", "lots_refused", "decomptes", "decompte_lines", "decompte_rejects",
                   "decompte_signals", "beneficiaries", "professionals"}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_migrate_applies_all_in_order_then_nothing(empty_db: str) -> None:
    names = [name for name, _ in migrations()]
    assert names == sorted(names) and names[0].startswith("0001_")
    assert migrate(empty_db) == names
    assert migrate(empty_db) == []
    assert EXPECTED_TABLES <= _tables(empty_db)
    with psycopg.connect(empty_db) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")] == names


def test_concurrent_migrations_apply_each_once(empty_db: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: migrate(empty_db), range(4)))
    applied = [name for r in results for name in r]
    assert sorted(applied) == [name for name, _ in migrations()]  # each once, by whichever caller came first
    assert sum(bool(r) for r in results) == 1


def test_an_edited_migration_is_refused(fresh_db: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        conn.execute("UPDATE schema_migrations SET sha256 = 'x' WHERE version = '0001'")
    with pytest.raises(MigrationError, match="0001_claims changed after it was applied"):
        migrate(fresh_db)


def test_amounts_are_bigint_cents(fresh_db: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        types = {t for (t,) in conn.execute(
            "SELECT DISTINCT data_type FROM information_schema.columns WHERE table_schema = 'public'"
            " AND column_name LIKE '%\\_cents' AND table_name NOT LIKE 'ref\\_%'")}  # code tables are text
    assert types == {"bigint"}


def test_an_unreachable_server_is_a_service_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ServiceError, match="cannot connect to PostgreSQL"):
        connect(f"postgresql://nobody@/x?host={tmp_path}&connect_timeout=2")
