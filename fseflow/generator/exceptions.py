"""Errors of the generator, under `fseflow.exceptions.FseflowError`. Messages never carry a personal value."""
from __future__ import annotations

from fseflow.exceptions import FseflowError


class GeneratorError(FseflowError):
    """A generation request that cannot be met (sizes, dates, rates)."""
