"""Compiled lookups shared by the control and liquidation kernels: tables by date, periods."""
from __future__ import annotations

import numpy as np
from numba import njit

from fseflow.config import NJIT_LEAF
from fseflow.processors.reference import LK_FROM


@njit(**NJIT_LEAF)
def letter_row(lk_rows: np.ndarray, lk_span: np.ndarray, act: int, zone: int, day: int) -> int:
    """Row of letter_keys in force at `day` for the zone, else zone 00 (L03); -1 if none (C34)."""
    if act < 0:
        return -1
    for k in range(2):
        z = zone if k == 0 else 0  # the PS's zone first, then zone 00
        if z < 0 or z >= lk_span.shape[1]:
            continue
        first, end = lk_span[act, z, 0], lk_span[act, z, 1]
        for r in range(end - 1, first - 1, -1):  # rows sorted by effective_from
            if lk_rows[r, LK_FROM] <= day:
                return r
    return -1


@njit(**NJIT_LEAF)
def param(params: np.ndarray, param_n: np.ndarray, pid: int, day: int) -> int:
    """Value of a parameter in force at `day`; -1 when empty or not in force."""
    for k in range(param_n[pid] - 1, -1, -1):
        if params[pid, k, 0] <= day:
            return params[pid, k, 1]
    return -1


@njit(**NJIT_LEAF)
def holds(periods: np.ndarray, row: int, k: int, day: int) -> bool:
    return periods[row, k, 0] <= day <= periods[row, k, 1]


@njit(**NJIT_LEAF)
def nir_key_ok(nid: int, key: int) -> bool:
    return nid >= 0 and key == 97 - (nid % 10_000_000_000_000) % 97
