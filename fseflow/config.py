"""Process-wide settings that are not business rules: numba options, sentinels.

Numba options live here only (never inline in a kernel), so CI can check that no kernel
turns on fastmath: money is integer cents and must not depend on float reassociation.
"""
from __future__ import annotations

import os

#: options of every @njit in fseflow; `cache` keeps the compiled kernels across runs.
NJIT_OPTIONS: dict[str, bool] = {
    "cache": os.environ.get("FSEFLOW_NUMBA_CACHE", "1") == "1",
    "fastmath": False,
    "nogil": True,
}
