"""The implementations under test: the pure-Python twin and (once built) the numba kernel."""
from __future__ import annotations

from fseflow.processors.reference import compile_reference
from fseflow.processors.twin import Twin


def run_twin(ic, lc, bene, pros, state):
    ref = compile_reference()
    out = Twin(ref.acts, ref.natures, bene, pros).run(ic, lc, state)
    return out, state


IMPLS = [run_twin]
