"""Working days: French public holidays and weekends, as arrays the kernels index.

Used by C31 (transmission delay in working days) and C47 (Sunday / holiday complement), and
later by the payment deadlines. Holidays come from the `holidays` package (metropolitan
France), which is kept up to date for moveable feasts.
"""
from __future__ import annotations

import datetime as dt
from functools import cache
from typing import NamedTuple

import holidays
import numpy as np

from fseflow.days import to_days

FIRST_YEAR, LAST_YEAR = 1990, 2100


class Calendar(NamedTuple):
    base: int                 # day number of FIRST_YEAR-01-01
    holiday: np.ndarray       # (n_days,) int8: 1 on a French public holiday
    work_cum: np.ndarray      # (n_days,) int32: working days from base up to and including the day


@cache
def french_holidays() -> frozenset[int]:
    return frozenset(to_days(d) for d in holidays.France(years=range(FIRST_YEAR, LAST_YEAR + 1)))


@cache
def load_calendar() -> Calendar:
    base = to_days(dt.date(FIRST_YEAR, 1, 1))
    end = to_days(dt.date(LAST_YEAR, 12, 31))
    days = np.arange(base, end + 1)
    holiday = np.zeros(days.size, dtype=np.int8)
    for h in french_holidays():
        holiday[h - base] = 1
    weekday = (days + 3) % 7
    working = (weekday < 5) & (holiday == 0)
    return Calendar(base, holiday, np.cumsum(working).astype(np.int32))


def is_working_day(day: int) -> bool:
    """Reference form used by the twin: Monday–Friday and not a public holiday."""
    return (day + 3) % 7 < 5 and day not in french_holidays()
