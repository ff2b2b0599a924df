"""Fixtures shared by the whole suite: the real services of tests/services.py."""
from fseflow.tests.services import empty_db, fresh_db, kafka_bootstrap, postgres_url  # noqa: F401
