"""Synthetic data generator: population, PS directory and B2 flows with known anomalies.

`generate(out_dir, invoices, seed, ...)` writes a whole synthetic flow (see `api.py`); the
modules below it are usable on their own for tests: `population`, `professionals`, `care`
(the care mix), `flow` (the plan), `files` (lots and files), `anomalies`, `writer`.
"""
from fseflow.generator.anomalies import ANOMALIES, DEFAULT_RATES
from fseflow.generator.api import DEFAULT_START_DATE, Summary, generate
from fseflow.generator.exceptions import GeneratorError
from fseflow.generator.writer import manifest_files

__all__ = ["generate", "Summary", "GeneratorError", "ANOMALIES", "DEFAULT_RATES", "DEFAULT_START_DATE", "manifest_files"]
