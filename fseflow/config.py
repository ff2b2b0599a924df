"""Process-wide settings that are not business rules: numba options and its cache.

Numba options live here only (never inline in a kernel), so CI can check that no kernel
turns on fastmath: money is integer cents and must not depend on float reassociation.

Numba's on-disk cache is invalidated only when the file defining a kernel changes, not when a
constant it imports from another module (reason bits, table ids) does. The cache therefore
lives in a folder named after a fingerprint of every source file and table of the package:
any change to them compiles afresh. This module must be imported before numba (the package's
`__init__` does it first).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def _fingerprint() -> str:
    root = Path(__file__).resolve().parent
    import importlib.util

    h = hashlib.sha256()
    for pkg in ("fseflow.processors", "fseflow.codecs"):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            for f in sorted(Path(folder).rglob("*")):
                if f.suffix in (".py", ".csv") and "__pycache__" not in f.parts:
                    h.update(f.name.encode())
                    h.update(f.read_bytes())
    h.update((root / "config.py").read_bytes())
    return h.hexdigest()[:16]


if "NUMBA_CACHE_DIR" not in os.environ:
    _base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) if Path.home().exists() else Path(tempfile.gettempdir())
    os.environ["NUMBA_CACHE_DIR"] = str(_base / "fseflow" / f"numba-{_fingerprint()}")

#: options of every @njit in fseflow; `cache` keeps the compiled kernels across runs.
NJIT_OPTIONS: dict[str, bool] = {
    "cache": os.environ.get("FSEFLOW_NUMBA_CACHE", "1") == "1",
    "fastmath": False,
    "nogil": True,
}
#: options of the leaf kernels that never allocate: without numba's runtime (NRT) a call does
#: not incref/decref each array of its named-tuple arguments. With the ~35-column claim tuples
#: that bookkeeping cost ~0.5 µs per call, 50x the work of a typical control (measured with
#: benchmarks/kernels.py). A function compiled this way must not create arrays.
NJIT_LEAF: dict[str, bool] = {**NJIT_OPTIONS, "_nrt": False}
#: leaf kernels called once per line or invoice with the claim tuples: inlined into the
#: driver, because numba passes a named tuple as its flattened fields (hundreds of words per
#: call for the ~35 claim columns), which cost more than the work itself (benchmarks/kernels.py).
NJIT_INLINE: dict[str, object] = {**NJIT_LEAF, "inline": "always"}
