"""Civil-calendar arithmetic on day numbers, compiled for the kernels.

The kernels need years, ages, quarters and "date + n months" (controls.md §4.7) without
leaving nopython mode. The algorithms are H. Hinnant's days-from-civil / civil-from-days,
exact for the proleptic Gregorian calendar. The twin uses `datetime` instead, so the property
tests compare two independent implementations.
"""
from __future__ import annotations

from numba import njit

from fseflow.config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day number (days since 1970-01-01)."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


@njit(**NJIT_OPTIONS)
def days_from_civil(y: int, m: int, d: int) -> int:
    y = y - 1 if m <= 2 else y
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(**NJIT_OPTIONS)
def _month_length(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


@njit(**NJIT_OPTIONS)
def add_months(days: int, n: int) -> int:
    """Same day number n months later, or the last day of a shorter month (§4.7)."""
    y, m, d = civil(days)
    k = (m - 1) + n
    y2 = y + k // 12
    m2 = k % 12 + 1
    last = _month_length(y2, m2)
    return days_from_civil(y2, m2, d if d <= last else last)


@njit(**NJIT_OPTIONS)
def year_of(days: int) -> int:
    return civil(days)[0]


@njit(**NJIT_OPTIONS)
def age_at(birth: int, day: int) -> int:
    """Completed years; it goes up on the birthday (29 February counts on 1 March)."""
    by, bm, bd = civil(birth)
    y, m, d = civil(day)
    age = y - by
    if m < bm or (m == bm and d < bd):
        age -= 1
    return age


@njit(**NJIT_OPTIONS)
def forclusion_limit(care: int, years: int) -> int:
    """1st day of the quarter after the care quarter, plus `years` (L17, C30)."""
    y, m, _ = civil(care)
    q_next = ((m - 1) // 3 + 1) * 3 + 1  # first month of the next quarter, 4..13
    if q_next > 12:
        return days_from_civil(y + 1 + years, 1, 1)
    return days_from_civil(y + years, q_next, 1)


@njit(**NJIT_OPTIONS)
def weekday(days: int) -> int:
    """0 Monday … 6 Sunday (1970-01-01 was a Thursday)."""
    return (days + 3) % 7
