"""Real services for the tests: PostgreSQL and Kafka, started once per session (or the environment's).

`postgres_url` and `kafka_bootstrap` are DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS when set, else
an embedded server started on first use and stopped at the end of the session. `fresh_db` is a
new, migrated database on that server, dropped after the test; `empty_db` the same, unmigrated.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from contextlib import contextmanager
from typing import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fseflow.infra.db import migrate
from fseflow.infra.services import DATABASE_ENV, KAFKA_ENV, start_kafka, start_postgres

__all__ = ["postgres_url", "kafka_bootstrap", "fresh_db", "empty_db", "new_database"]


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get(DATABASE_ENV)
    if url:
        yield url
        return
    # not under pytest's basetemp: pytest makes `pytest-of-<user>` private (0700) at each session
    # start, which locks the server's own OS user out when two test sessions run at once
    folder = Path(tempfile.mkdtemp(prefix="fseflow-test-pg-"))
    try:
        with start_postgres(folder) as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    bootstrap = os.environ.get(KAFKA_ENV)
    if bootstrap:
        yield bootstrap
        return
    with start_kafka(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@contextmanager
def new_database(server_url: str) -> Iterator[str]:
    """A new database on the server of `server_url` (dropped on exit); yields its connection string."""
    name = f"fseflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_db(postgres_url: str) -> Iterator[str]:
    with new_database(postgres_url) as url:
        yield url


@pytest.fixture
def fresh_db(postgres_url: str) -> Iterator[str]:
    with new_database(postgres_url) as url:
        migrate(url)
        yield url
