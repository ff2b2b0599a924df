"""PostgreSQL: connections, versioned migrations, and the reference data the kernels load.

Migrations are `migrations/NNNN_name.sql`, applied in order, each in its own transaction and
recorded in `schema_migrations` with its SHA-256 (an applied migration edited afterwards is an
error, not silently skipped). A session advisory lock makes concurrent `migrate` calls (several
workers starting at once) apply each migration exactly once.
"""
from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import psycopg

from fseflow.infra._reference import load_directory, load_reference
from fseflow.infra.exceptions import MigrationError, ServiceError

#: pg_advisory_lock key of `migrate` (any constant unique to fseflow)
MIGRATE_LOCK = 0x0F5EF1_0001


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """A psycopg connection; a server that cannot be reached is a ServiceError naming the cause."""
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as e:
        # libpq's message names host, socket and user only: no personal data
        raise ServiceError(f"cannot connect to PostgreSQL: {str(e).strip()}") from None


def migrations() -> list[tuple[str, str]]:
    """(name, sql) of every shipped migration, in version order."""
    folder = resources.files(__package__).joinpath("migrations")
    files = sorted(f for f in folder.iterdir() if f.name.endswith(".sql"))
    return [(f.name.removesuffix(".sql"), f.read_text("utf-8")) for f in files]


def migrate(url: str) -> list[str]:
    """Apply the pending migrations in order; returns their names (empty when up to date)."""
    applied: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
        try:
            # created under the lock: CREATE TABLE IF NOT EXISTS is not safe against a concurrent twin
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, name text NOT NULL,"
                         " sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            done = {v: h for v, h in conn.execute("SELECT version, sha256 FROM schema_migrations")}
            for name, sql in migrations():
                version = name.split("_", 1)[0]
                digest = hashlib.sha256(sql.encode()).hexdigest()
                if version in done:
                    if done[version] != digest:
                        raise MigrationError(f"migration {name} changed after it was applied: "
                                             "add a new migration instead of editing it")
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())  # several statements: no parameters, simple query protocol
                    conn.execute("INSERT INTO schema_migrations (version, name, sha256) VALUES (%s, %s, %s)",
                                 (version, name, digest))
                applied.append(name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
    return applied


__all__ = ["connect", "migrate", "migrations", "load_reference", "load_directory", "MIGRATE_LOCK"]
