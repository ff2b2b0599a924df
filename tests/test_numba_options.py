"""Numba options come from fseflow/config.py only, and no kernel turns on fastmath: money is
integer cents and must never depend on float reassociation (STYLE.md §6)."""
from __future__ import annotations

import ast
from pathlib import Path

from fseflow.config import NJIT_INLINE, NJIT_LEAF, NJIT_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for folder in ("codecs", "processors", "fseflow", "stream", "benchmarks")
           for p in sorted((ROOT / folder).rglob("*.py"))]


def test_fastmath_is_off_in_every_option_set() -> None:
    assert all(opts["fastmath"] is False for opts in (NJIT_OPTIONS, NJIT_LEAF, NJIT_INLINE))


def test_every_njit_takes_its_options_from_config() -> None:
    bad = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("njit", "jit"):
                inline = [k.arg for k in node.keywords if k.arg is not None]
                if inline or not any(isinstance(k.value, ast.Name) and k.arg is None for k in node.keywords):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(d, ast.Name) and d.id in ("njit", "jit") for d in node.decorator_list):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} bare @njit")
            if isinstance(node, ast.keyword) and node.arg == "fastmath":
                bad.append(f"{path.relative_to(ROOT)}:{node.value.lineno} fastmath")
    assert SOURCES and not bad, bad
