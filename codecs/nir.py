"""Identifier checks of b2-profile.md §4: NIR/NII key, `nir_id`, PS billing number, FINESS, CIP13.

Three forms of each check: a scalar function on `str` for tools and tests, an `@njit` function
on a byte buffer and an offset (`*_at`) that the B2 decoder kernel calls in place, and, where
the processors need one, a vectorised numpy function on a column.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fseflow.config import NJIT_OPTIONS

__all__ = [
    "CORSICA_OFFSET",
    "ean13_ok",
    "finess_ok",
    "luhn_key",
    "luhn_ok",
    "nir_id",
    "nir_ids",
    "nir_key",
    "nir_key_ok",
    "nir_keys",
    "ps_number_ok",
]

#: nir_id = digits (2A -> 19, 2B -> 18) + CORSICA_OFFSET * (1 for 2A, 2 for 2B): the digit
#: form alone would make a 2A NIR equal to the département-19 NIR with the same digits.
CORSICA_OFFSET = 10**13
_ZERO = 48


# --- njit forms on a byte buffer (used inside the decoder kernel) -------------------------

@njit(**NJIT_OPTIONS)
def nir_id_at(buf, p):  # type: ignore[no-untyped-def]
    """nir_id of the 13 bytes at `buf[p:p+13]`; -1 when malformed."""
    b6 = buf[p + 6]
    corsica = buf[p + 5] == 50 and (b6 == 65 or b6 == 66)  # '2A' or '2B' at 6-7
    v = np.int64(0)
    for j in range(13):
        if corsica and j == 5:
            v = v * 100 + (19 if b6 == 65 else 18)
            continue
        if corsica and j == 6:
            continue
        c = np.int64(buf[p + j]) - _ZERO
        if c < 0 or c > 9:
            return np.int64(-1)
        v = v * 10 + c
    if corsica:
        v += np.int64(CORSICA_OFFSET) * (1 if b6 == 65 else 2)
    return v


@njit(**NJIT_OPTIONS)
def luhn_ok_at(buf, p, n):  # type: ignore[no-untyped-def]
    """True when the `n` bytes at `p` are digits whose last one is the Luhn key of the others."""
    total = 0
    for j in range(n):
        c = np.int64(buf[p + n - 1 - j]) - _ZERO
        if c < 0 or c > 9:
            return False
        if j % 2 == 1:
            c *= 2
            if c > 9:
                c -= 9
        total += c
    return total % 10 == 0


@njit(**NJIT_OPTIONS)
def ean13_ok_at(buf, p):  # type: ignore[no-untyped-def]
    """True when the 13 bytes at `p` are digits with a valid EAN-13 check digit."""
    total = 0
    for j in range(13):
        c = np.int64(buf[p + j]) - _ZERO
        if c < 0 or c > 9:
            return False
        total += c * (3 if j % 2 == 1 else 1)
    return total % 10 == 0


# --- scalar forms -------------------------------------------------------------------------

def _as_str(s: str | bytes) -> str:
    return s.decode("ascii", "replace") if isinstance(s, bytes) else s


def nir_id(nir: str | bytes) -> int:
    """Unique int of a 13-character NIR (see CORSICA_OFFSET); -1 when malformed."""
    s = _as_str(nir)
    if len(s) != 13:
        return -1
    tag = 0
    if s[5:7] in ("2A", "2B"):
        tag = 1 if s[6] == "A" else 2
        s = s[:5] + ("19" if tag == 1 else "18") + s[7:]
    if not (s.isascii() and s.isdigit()):
        return -1
    return int(s) + tag * CORSICA_OFFSET


def nir_key(nir: str | bytes) -> int:
    """Expected key of a NIR/NII: 97 - (NIR mod 97), 2A -> 19 and 2B -> 18; -1 when malformed."""
    i = nir_id(nir)
    return -1 if i < 0 else 97 - (i % CORSICA_OFFSET) % 97


def nir_key_ok(nir: str | bytes, key: int | str | bytes) -> bool:
    """True when `key` (int or two digits) is the key of `nir`."""
    if not isinstance(key, int):
        k = _as_str(key)
        if len(k) != 2 or not (k.isascii() and k.isdigit()):
            return False
        key = int(k)
    expected = nir_key(nir)
    return expected >= 0 and key == expected


def luhn_key(digits: str) -> int:
    """Luhn check digit of a digit string (`99103843` -> 1)."""
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("Luhn key of a string that is not all digits")
    total = 0
    for j, ch in enumerate(reversed(digits)):
        c = int(ch)
        if j % 2 == 0:  # the key will take position 0, so the payload's last digit doubles
            c *= 2
            if c > 9:
                c -= 9
        total += c
    return (10 - total % 10) % 10


def luhn_ok(digits: str) -> bool:
    """True when `digits` (2 or more) are digits whose last one is the Luhn key of the others."""
    return len(digits) > 1 and digits.isascii() and digits.isdigit() and luhn_key(digits[:-1]) == int(digits[-1])


def _luhn_ok(s: str, n: int) -> bool:
    return len(s) == n and luhn_ok(s)


def ps_number_ok(ps: str | bytes) -> bool:
    """PS billing number: 9 digits, the 9th the Luhn key of the first 8 (C08)."""
    return _luhn_ok(_as_str(ps), 9)


def finess_ok(finess: str | bytes) -> bool:
    """FINESS: 9 digits with a Luhn-type key (a bad key is a signal only).

    Corsican FINESS numbers (2A/2B) have no documented key rule in the profile: not ok.
    """
    return _luhn_ok(_as_str(finess), 9)


def ean13_ok(code: str | bytes) -> bool:
    """CIP13: 13 digits with an EAN-13 check digit (profile choice)."""
    s = _as_str(code)
    if len(s) != 13 or not (s.isascii() and s.isdigit()):
        return False
    return sum(int(c) * (3 if j % 2 else 1) for j, c in enumerate(s)) % 10 == 0


# --- vectorised forms on decoded columns --------------------------------------------------

@njit(**NJIT_OPTIONS)
def _nir_ids(flat, n):  # type: ignore[no-untyped-def]
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = nir_id_at(flat, i * 13)
    return out


def nir_ids(nirs: np.ndarray) -> np.ndarray:
    """nir_id of every element of an `S13` column (int64, -1 when malformed)."""
    if nirs.dtype != np.dtype("S13"):
        raise TypeError(f"nir_ids expects an S13 column, got {nirs.dtype}: use .astype('S13')")
    flat = np.ascontiguousarray(nirs).view(np.uint8)
    return _nir_ids(flat, nirs.size)


def nir_keys(ids: np.ndarray) -> np.ndarray:
    """Expected key (int16) of each nir_id; -1 where the id is -1."""
    ids = np.asarray(ids, dtype=np.int64)
    keys = (97 - (ids % CORSICA_OFFSET) % 97).astype(np.int16)
    keys[ids < 0] = -1
    return keys
