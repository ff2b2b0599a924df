"""The implementations under test: the pure-Python twin and (once built) the numba kernel."""
from __future__ import annotations

from fseflow.processors.reference import compile_reference
from fseflow.processors.twin import Twin


def run_twin(ic, lc, bene, pros, state):
    ref = compile_reference()
    out = Twin(ref.acts, ref.natures, bene, pros).run(ic, lc, state)
    return out, state


IMPLS = [run_twin]


def run_numba(ic, lc, bene, pros, state):
    from fseflow.processors import _hashtable as ht
    from fseflow.processors.engine import run_kernel

    out, table = run_kernel(ic, lc, bene, pros, ht.from_dict(state))
    return out, ht.to_dict(table)


IMPLS = [run_twin, run_numba]
