"""The domain code tables (CSV, from the domain specification), shipped inside the package.

Each CSV is the declarative source of one rule family: an official value replaces a profile
choice by editing the CSV, not the code.
"""
from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources


@cache
def read_table(name: str) -> tuple[dict[str, str], ...]:
    """Rows of `<name>.csv` as dicts of stripped strings (the header row gives the keys)."""
    text = resources.files(__name__).joinpath(f"{name}.csv").read_text(encoding="utf-8")
    return tuple(
        {k.strip(): (v or "").strip() for k, v in row.items()}
        for row in csv.DictReader(io.StringIO(text))
    )
