"""Sizes and helpers shared by the generator tests (kept small so the suite stays fast)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

AS_OF = dt.date(2026, 10, 5)
#: ≥ 100,000 persons: the size at which population.md states its tolerances
POPULATION = 150_000
#: a flow large enough for the quota shares, small enough to decode in a few seconds
FLOW: dict[str, Any] = {"invoices": 8_000, "seed": 11, "days": 3, "population": 100_000}


def b2_files(out: Path) -> list[Path]:
    """The B2 files of a generated flow, in arrival order (manifest.csv)."""
    from fseflow.generator import manifest_files

    return manifest_files(out)
