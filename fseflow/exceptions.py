"""The one root of fseflow's errors; each package adds small subclasses of its own."""
from __future__ import annotations


class FseflowError(Exception):
    """Base of every error fseflow raises on purpose."""


class InputError(FseflowError):
    """Input that cannot be read at all (missing file, not B2, bad CSV).

    The message names the file and, where known, the record and field — never a personal
    value (NIR, name, IBAN).
    """
