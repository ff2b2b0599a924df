"""An open-addressing hash table over one numpy array, for kernel state and directory indexes.

Keys are triples of int64 (a, b, c), values int64, stored together as rows `(a, b, c, value)`
of a `(capacity, 4)` array, so a probe touches one cache line (the state of a year of flow is
far larger than the CPU caches: every miss counts). The table is arrays a kernel can take and
give back (no Python objects): the per-beneficiary counters are "state arrays passed in and
returned". Kernels never grow a table; they stop when it passes `MAX_LOAD` and the Python
wrapper grows it and resumes (`engine.run_kernel`).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from fseflow.config import NJIT_LEAF

EMPTY = np.int64(np.iinfo(np.int64).min)
MAX_LOAD = 0.6
A, B, C, VAL = 0, 1, 2, 3


class Table(NamedTuple):
    slots: np.ndarray  # (capacity, 4) int64: a, b, c, value; slots[i, 0] == EMPTY marks a free slot
    used: np.ndarray   # (1,) int64: occupied slots


def new_table(capacity: int = 1024) -> Table:
    cap = 1 << max(4, int(capacity - 1).bit_length())
    slots = np.zeros((cap, 4), dtype=np.int64)
    slots[:, A] = EMPTY
    return Table(slots, np.zeros(1, dtype=np.int64))


@njit(**NJIT_LEAF)
def _hash(a: int, b: int, c: int) -> np.uint64:
    # keys may be negative: reinterpret them as unsigned before mixing
    h = np.uint64(np.int64(a)) * np.uint64(0x9E3779B97F4A7C15)
    h ^= np.uint64(np.int64(b)) + np.uint64(0x632BE59BD9B4E019) + (h << np.uint64(6)) + (h >> np.uint64(2))
    h ^= np.uint64(np.int64(c)) * np.uint64(0xC2B2AE3D27D4EB4F)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return h


@njit(**NJIT_LEAF)
def slot(t: np.ndarray, a: int, b: int, c: int) -> int:
    """Row of the key, or of the free slot where it would go."""
    mask = np.int64(t.shape[0] - 1)
    i = np.int64(_hash(a, b, c) & np.uint64(mask))
    while True:
        k0 = t[i, A]
        if k0 == EMPTY or (k0 == a and t[i, B] == b and t[i, C] == c):
            return i
        i = (i + 1) & mask


@njit(**NJIT_LEAF)
def get(t: np.ndarray, a: int, b: int, c: int, default: int) -> int:
    i = slot(t, a, b, c)
    return default if t[i, A] == EMPTY else t[i, VAL]


@njit(**NJIT_LEAF)
def claim(t: np.ndarray, used: np.ndarray, i: int, a: int, b: int, c: int, v: int) -> None:
    """Occupy free row i (from `slot`) with key (a, b, c) and value v."""
    t[i, A] = a
    t[i, B] = b
    t[i, C] = c
    t[i, VAL] = v
    used[0] += 1


@njit(**NJIT_LEAF)
def put(t: np.ndarray, used: np.ndarray, a: int, b: int, c: int, v: int) -> None:
    i = slot(t, a, b, c)
    if t[i, A] == EMPTY:
        claim(t, used, i, a, b, c, v)
    else:
        t[i, VAL] = v


@njit(**NJIT_LEAF)
def add(t: np.ndarray, used: np.ndarray, a: int, b: int, c: int, delta: int) -> int:
    i = slot(t, a, b, c)
    if t[i, A] == EMPTY:
        claim(t, used, i, a, b, c, delta)
    else:
        t[i, VAL] += delta
    return t[i, VAL]


@njit(**NJIT_LEAF)
def _rehash(old: np.ndarray, t: np.ndarray, used: np.ndarray) -> None:
    for i in range(old.shape[0]):
        if old[i, A] != EMPTY:
            put(t, used, old[i, A], old[i, B], old[i, C], old[i, VAL])


def grow(t: Table, extra: int) -> Table:
    """The same table, or a larger copy, with room for `extra` more keys under MAX_LOAD."""
    need = int(t.used[0]) + int(extra)
    if need <= t.slots.shape[0] * MAX_LOAD:
        return t
    bigger = new_table(max(int(need / MAX_LOAD) + 1, 2 * t.slots.shape[0]))
    _rehash(t.slots, bigger.slots, bigger.used)
    return bigger


def to_dict(t: Table) -> dict[tuple[int, int, int], int]:
    """The table as a plain dict (tests compare it with the twin's state)."""
    live = t.slots[t.slots[:, A] != EMPTY]
    return {(int(r[0]), int(r[1]), int(r[2])): int(r[3]) for r in live}


def from_dict(d: dict[tuple[int, int, int], int]) -> Table:
    t = new_table(int(len(d) / MAX_LOAD) + 16)
    for (a, b, c), v in d.items():
        put(t.slots, t.used, a, b, c, v)
    return t


@njit(**NJIT_LEAF)
def build_index(t: np.ndarray, used: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, rows: np.ndarray) -> None:
    """Index by (a[i], b[i], c[i]) → rows[i]; the first one wins on a repeated key."""
    for i in range(a.shape[0]):
        s = slot(t, a[i], b[i], c[i])
        if t[s, A] == EMPTY:
            claim(t, used, s, a[i], b[i], c[i], rows[i])
