"""Dates of the generated flow: working days, month arithmetic, ages and the forclusion limit.

Files arrive on French working days (population.md §3); the rules on dates are those of
controls.md §4.7 (date + n months) and liquidation.md L17 (forclusion).
"""
from __future__ import annotations

import datetime as dt
from functools import cache

import holidays


@cache
def _holidays(year: int) -> frozenset[dt.date]:
    return frozenset(holidays.France(years=year))


def is_working_day(d: dt.date) -> bool:
    return d.weekday() < 5 and d not in _holidays(d.year)


def working_days(start: dt.date, count: int) -> list[dt.date]:
    """The first `count` working days on or after `start`."""
    out: list[dt.date] = []
    d = start
    while len(out) < count:
        if is_working_day(d):
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def previous_working_day(d: dt.date) -> dt.date:
    d -= dt.timedelta(days=1)
    while not is_working_day(d):
        d -= dt.timedelta(days=1)
    return d


def add_months(d: dt.date, n: int) -> dt.date:
    """Same day n months later, or the last day of a shorter month (controls.md §4.7)."""
    k = d.month - 1 + n
    y, m = d.year + k // 12, k % 12 + 1
    nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
    return dt.date(y, m, min(d.day, (nxt - dt.timedelta(days=1)).day))


def age_at(birth: dt.date, d: dt.date) -> int:
    """Completed years; a 29 February birthday counts on 1 March in other years."""
    return d.year - birth.year - ((d.month, d.day) < (birth.month, birth.day))


def forclusion_limit(care: dt.date, years: int) -> dt.date:
    """1st day of the quarter after the care quarter, plus `years` (liquidation.md L17)."""
    first = dt.date(care.year, (care.month - 1) // 3 * 3 + 1, 1)
    return add_months(first, 3 + 12 * years)
