"""Errors of the services and the database layer (one root: fseflow.exceptions.FseflowError)."""
from __future__ import annotations

from fseflow.exceptions import FseflowError


class ServiceError(FseflowError):
    """A service could not be started or reached. The message names it and ends with its log tail."""


class StoreError(FseflowError):
    """PostgreSQL refused a batch. The message names table, column and constraint, never a value."""


class MigrationError(FseflowError):
    """The schema cannot be brought up to date (e.g. an applied migration was edited afterwards)."""


__all__ = ["ServiceError", "StoreError", "MigrationError"]
