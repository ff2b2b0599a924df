"""Dates as int32 day numbers (days since 1970-01-01), the form kernels compare.

`NO_DATE` stands for an absent date (`000000` in B2, an empty CSV cell). It is the
smallest int32, so it sorts before every real date; kernels test for it explicitly.
`OPEN_END` stands for an open period end (an empty `*_end` cell): after every real date.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np

NO_DATE: int = int(np.iinfo(np.int32).min)
OPEN_END: int = int(np.iinfo(np.int32).max)
_EPOCH = _dt.date(1970, 1, 1)
_EPOCH_ORDINAL = _EPOCH.toordinal()


def to_days(d: _dt.date | None) -> int:
    """Day number of a date; NO_DATE for None."""
    return NO_DATE if d is None else d.toordinal() - _EPOCH_ORDINAL


def from_days(n: int) -> _dt.date | None:
    """Date of a day number; None for NO_DATE (and OPEN_END)."""
    if n == NO_DATE or n == OPEN_END:
        return None
    return _dt.date.fromordinal(int(n) + _EPOCH_ORDINAL)


def parse_iso(s: str | None, empty: int = NO_DATE) -> int:
    """Day number of an ISO `YYYY-MM-DD` string; `empty` for an empty cell."""
    if s is None or s.strip() == "":
        return empty
    return to_days(_dt.date.fromisoformat(s.strip()))


def iso(n: int) -> str | None:
    """ISO string of a day number; None for NO_DATE."""
    d = from_days(n)
    return None if d is None else d.isoformat()
