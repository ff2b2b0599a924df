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
from typing import Any, Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fseflow.infra.db import migrate
from fseflow.infra.services import DATABASE_ENV, KAFKA_ENV, free_port, start_kafka, start_postgres

__all__ = ["postgres_url", "kafka_bootstrap", "fresh_db", "empty_db", "new_database", "flow_through_one_worker"]


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


def flow_through_one_worker(tmp_path: Path, database_url: str, kafka_bootstrap: str, *, invoices: int, seed: int,
                            population: int) -> tuple[str, Any, dict[str, Any]]:
    """Generate a small flow, load its directory, run it through one real worker serving /metrics.

    Returns the worker's /metrics exposition once the flow is drained, the drained progress and
    `store.counts` of the database."""
    import urllib.request

    from fseflow.generator import generate
    from fseflow.infra import db, store
    from fseflow.stream.ingest import ingest
    from fseflow.stream.runner import Workers, wait_drained
    from fseflow.stream.settings import Settings
    from fseflow.tests.test_generator.support import b2_files

    flow = tmp_path / "flow"
    generate(flow, invoices=invoices, seed=seed, days=1, population=population)
    db.load_reference(database_url, flow / "beneficiaries.csv", flow / "professionals.csv")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, database_url=database_url, partitions=2,
                        prefix=f"w{uuid.uuid4().hex[:8]}.", metrics_port=free_port())
    files = b2_files(flow)
    with Workers(settings, tmp_path) as workers, db.connect(database_url) as conn:
        workers.wait_ready()
        ingest(files, settings)
        progress = wait_drained(conn, len(files), workers, timeout=180, ledger=True, fraud=True)
        url = f"http://127.0.0.1:{workers.metrics_port(0)}/metrics"
        exposition = urllib.request.urlopen(url, timeout=10).read().decode()
        counts = store.counts(conn)
    assert progress.files == len(files)
    return exposition, progress, counts
