"""Shared generated data for the generator tests: built once per session, kept small for speed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fseflow.generator import generate
from fseflow.generator.api import Summary
from fseflow.generator.population import Population, build_population
from fseflow.generator.professionals import Directory, build_directory
from fseflow.tests.test_generator.support import AS_OF, FLOW, POPULATION


@pytest.fixture(scope="session")
def population() -> Population:
    return build_population(POPULATION, AS_OF, np.random.default_rng(5))


@pytest.fixture(scope="session")
def full_population() -> Population:
    return build_population(782_783, AS_OF, np.random.default_rng(6))


@pytest.fixture(scope="session")
def directory() -> Directory:
    return build_directory(POPULATION, np.random.default_rng(7))


@pytest.fixture(scope="session")
def flow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    out = tmp_path_factory.mktemp("flow")
    return out, generate(out, **FLOW)
