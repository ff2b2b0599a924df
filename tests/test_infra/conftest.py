"""A small generated flow shared by the database tests (population, PS directory, B2 files)."""
from __future__ import annotations

from pathlib import Path

import pytest

from fseflow.generator import generate


@pytest.fixture(scope="session")
def small_flow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small-flow")
    generate(out, invoices=1500, seed=7, population=3000)
    return out
