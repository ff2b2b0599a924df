"""The flow plan: which PS bills which beneficiary for what, on which dates, received which day.

Everything is drawn as numpy columns over all invoices at once: reception days by weekday
profile, segments by exact quotas (APIAS, SIG, teleconsultation, maternity), PS and visits by
the care mix, beneficiaries by consumption weight, then care dates. A vectorised check redraws
the beneficiary of any invoice that a clean flow could not contain (rights, event and
pregnancy windows, one consultation per beneficiary, practitioner and day, one B 17 a day).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

import numpy as np

from fseflow.days import NO_DATE, OPEN_END, to_days
from fseflow.generator import care as C
from fseflow.generator._calendar import is_working_day
from fseflow.generator._tariffs import ONCE_PER_DAY_CATEGORIES, Tariffs
from fseflow.generator.exceptions import GeneratorError
from fseflow.generator.population import Population, apportion
from fseflow.generator.professionals import Directory

__all__ = ["WEEKDAY_PROFILE", "FlowPlan", "plan_flow", "day_counts", "MAX_SESSIONS"]

#: population.md §3: Mon 1.30, Tue 1.00, Wed 0.95, Thu 0.90, Fri 0.85 × the working-day mean
WEEKDAY_PROFILE = (1.30, 1.00, 0.95, 0.90, 0.85)
MAX_SESSIONS = 7
#: beneficiaries must hold rights and be born this many days before the first reception day
POOL_MARGIN_DAYS = 60
MAX_REDRAWS = 40
SEGMENT_NAMES = tuple(s.name for s in C.SEGMENTS)


@dataclass
class FlowPlan:
    """One row per invoice of the clean flow (before anomalies and resends)."""

    reception_days: list[dt.date]
    day: np.ndarray          # i4 index in reception_days
    segment: np.ndarray      # i1 index in care.SEGMENTS
    kind: list[str]          # kind of care (a health centre's invoices carry the member's kind)
    ps: np.ndarray           # i4 index in the directory
    member: np.ndarray       # i4 index in the structure's members, -1 for an individual PS
    visit: list[C.Visit]
    bene: np.ndarray         # i8 row of the population
    care: np.ndarray         # (n, MAX_SESSIONS) i4 care dates, last first, NO_DATE padding
    payee: np.ndarray        # i2 drawn payee code (C2S adjustments come later)

    def __len__(self) -> int:
        return int(self.day.shape[0])


def day_counts(reception_days: list[dt.date], total: int) -> np.ndarray:
    """Invoices per reception day: the weekday profile, apportioned exactly."""
    return apportion(np.array([WEEKDAY_PROFILE[d.weekday()] for d in reception_days]), total)


def segment_counts(total_files: int, base: int) -> np.ndarray:
    """Invoices per segment: exact quotas of the total files, the rest regular."""
    counts = np.array([0 if s.share is None else int(round(s.share * total_files)) for s in C.SEGMENTS])
    rest = base - int(counts.sum())
    if rest < 0:
        raise GeneratorError("too few invoices for the segment quotas")
    counts[SEGMENT_NAMES.index("regular")] = rest
    return counts


@cache
def _visit_codes(visit: C.Visit) -> tuple[str, ...]:
    return tuple(a.code for a in visit.acts)


def _visit_flags(visit: C.Visit, tariffs: Tariffs, day: dt.date) -> tuple[bool, bool]:
    """(has a consultation or visit code, has the B 17 fee) — the once-per-day controls (C37)."""
    once = False
    for code in _visit_codes(visit):
        key = tariffs.key(code, "00", day) or tariffs.key(C.FALLBACK_CODES.get(code, code), "00", day)
        once = once or (key is not None and key.category in ONCE_PER_DAY_CATEGORIES)
    b17 = any(a.detail == "nabm:preanalytic" for a in visit.acts)
    return once, b17


def _weighted(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    cum = np.cumsum(weights)
    return np.minimum(np.searchsorted(cum, rng.random(k) * cum[-1], side="right"), weights.size - 1)


class _Pools:
    """Beneficiary pools by (segment pool, age range, sex), with cumulative consumption weights."""

    def __init__(self, pop: Population, first_day: dt.date) -> None:
        lo = to_days(first_day) - POOL_MARGIN_DAYS
        self.pop = pop
        clean = (pop.death == NO_DATE) & (pop.rights_end == OPEN_END) & (pop.rights_start <= lo) & (pop.birth <= lo)
        self.base = {
            "all": clean,
            "apias": clean & (pop.apias_event != NO_DATE),
            "sig": clean & pop.sig_consumer & (pop.sig_start <= lo),
            "pregnant": clean & (pop.pregnancy_start != NO_DATE),
        }
        self._cache: dict[tuple[str, int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def rows(self, pool: str, age: tuple[int, int], sex: int) -> tuple[np.ndarray, np.ndarray]:
        key = (pool, age[0], age[1], sex)
        if key not in self._cache:
            p = self.pop
            mask = self.base[pool] & (p.age >= age[0]) & (p.age <= age[1]) & ((p.sex == sex) if sex else True)
            if not mask.any():
                mask = self.base[pool]
            if not mask.any():
                raise GeneratorError(f"no beneficiary can receive care of pool {pool}")
            rows = np.flatnonzero(mask)
            self._cache[key] = (rows, np.cumsum(p.weight[rows]))
        return self._cache[key]

    def draw(self, pool: str, age: tuple[int, int], sex: int, k: int, rng: np.random.Generator) -> np.ndarray:
        rows, cum = self.rows(pool, age, sex)
        pos = np.minimum(np.searchsorted(cum, rng.random(k) * cum[-1], side="right"), rows.size - 1)
        return rows[pos]


def _care_day_table(reception: list[dt.date]) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """For each (reception index, lag in working days): candidate care days and their weights."""
    table: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    max_lag = max(l for l, _ in C.LAG_WORKING_DAYS)
    for r, day in enumerate(reception):
        # lag of a care day = working days after it, up to and including reception (C31)
        lag, d = 0, day
        days: dict[int, list[tuple[int, float]]] = {}
        while True:
            if d != day and is_working_day(d + dt.timedelta(days=1)):
                lag += 1
            if lag > max_lag:
                break
            work = is_working_day(d)
            w = C.CARE_WEEKDAY_WEIGHTS[d.weekday()] if (work or d.weekday() >= 5) else C.HOLIDAY_CARE_WEIGHT
            days.setdefault(lag, []).append((to_days(d), w))
            d -= dt.timedelta(days=1)
        for lag_, pairs in days.items():
            table[(r, lag_)] = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
    return table


def plan_flow(pop: Population, directory: Directory, reception_days: list[dt.date], total_files: int,
              base: int, tariffs: Tariffs, rng: np.random.Generator) -> FlowPlan:
    """Plan `base` clean invoices over the reception days (`total_files` sets the quotas)."""
    day = np.repeat(np.arange(len(reception_days)), day_counts(reception_days, base)).astype(np.int32)
    segment = rng.permutation(np.repeat(np.arange(len(C.SEGMENTS)), segment_counts(total_files, base))).astype(np.int8)
    n = base
    kind = np.empty(n, dtype=object)
    for s, seg in enumerate(C.SEGMENTS):
        rows = np.flatnonzero(segment == s)
        names = [k for k, _ in seg.kinds]
        kind[rows] = np.array(names, dtype=object)[_weighted(rng, np.array([w for _, w in seg.kinds]), rows.size)]
    ps = np.empty(n, dtype=np.int32)
    member = np.full(n, -1, dtype=np.int32)
    pros = directory.professionals
    for k in np.unique(kind):
        rows = np.flatnonzero(kind == k)
        cands = np.array(directory.by_kind[k])
        ps[rows] = cands[_weighted(rng, np.array([pros[i].weight for i in cands]), rows.size)]
    for row in np.flatnonzero(kind == "health_centre").tolist():
        members = pros[ps[row]].members
        m = int(rng.integers(0, len(members)))
        member[row], kind[row] = m, members[m].kind

    tele = segment == SEGMENT_NAMES.index("teleconsultation")
    visits = np.empty(n, dtype=object)
    for (k, is_tele) in sorted(set(zip(kind.tolist(), tele.tolist()))):  # sorted: draws in a fixed order
        rows = np.flatnonzero((kind == k) & (tele == is_tele))
        mix = (C.TELE_MIX if is_tele else C.CARE_MIX)[k]
        picks = _weighted(rng, np.array([v.weight for v in mix]), rows.size)
        visits[rows] = [mix[j] for j in picks]

    payee = np.empty(n, dtype=np.int16)
    special = np.isin(segment, [SEGMENT_NAMES.index(s) for s in ("apias", "sig_nature", "sig_exo21")])
    for k in np.unique(kind):
        rows = np.flatnonzero(kind == k)
        shares = np.array(C.PAYEE_SHARES.get(k, C.DEFAULT_PAYEE_SHARES))
        payee[rows] = np.array([10, 35, 36])[_weighted(rng, shares, rows.size)]
    payee[special] = np.array([10, 35, 36])[_weighted(rng, np.array(C.SPECIAL_PAYEE_SHARES), int(special.sum()))]

    # care dates: the last one from the lag in working days, earlier sessions before it
    lags = np.array([l for l, _ in C.LAG_WORKING_DAYS])
    lag = lags[_weighted(rng, np.array([w for _, w in C.LAG_WORKING_DAYS]), n)]
    lag = np.minimum(lag, np.array([C.MAX_LAG[int(p)] for p in (10, 35, 36)])[np.searchsorted([10, 35, 36], payee)])
    table = _care_day_table(reception_days)
    care = np.full((n, MAX_SESSIONS), NO_DATE, dtype=np.int32)
    for (r, l), (cand, w) in table.items():
        rows = np.flatnonzero((day == r) & (lag == l))
        if rows.size:
            care[rows, 0] = cand[_weighted(rng, w, rows.size)]
    sessions = np.array([int(rng.integers(v.sessions[0], v.sessions[1] + 1)) for v in visits.tolist()])
    gaps = rng.integers(C.SESSION_GAP_DAYS[0], C.SESSION_GAP_DAYS[1] + 1, (n, MAX_SESSIONS))
    for s in range(1, MAX_SESSIONS):
        more = sessions > s
        care[more, s] = care[more, s - 1] - gaps[more, s]

    pools = _Pools(pop, reception_days[0])
    groups: dict[tuple[str, tuple[int, int], int], list[int]] = {}
    seg_pool = [C.SEGMENTS[s].pool for s in segment.tolist()]
    for i, (p, v) in enumerate(zip(seg_pool, visits.tolist())):
        groups.setdefault((p, v.age, v.sex), []).append(i)
    bene = np.empty(n, dtype=np.int64)
    group_rows = {g: np.array(r) for g, r in groups.items()}
    for (p, age, sex), rows in group_rows.items():
        bene[rows] = pools.draw(p, age, sex, rows.size, rng)

    flags = {v: _visit_flags(v, tariffs, reception_days[0]) for v in set(visits.tolist())}
    once = np.array([flags[v][0] for v in visits.tolist()])
    b17 = np.array([flags[v][1] for v in visits.tolist()])
    practitioner = np.array([
        int(pros[p].members[m].rpps) if m >= 0 else (-int(pros[p].ps_number) if k in C.ENTITY_KINDS
                                                     else int(pros[p].rpps))
        for p, m, k in zip(ps.tolist(), member.tolist(), kind.tolist())], dtype=np.int64)
    kind_id = np.unique(np.array(kind.tolist()), return_inverse=True)[1].astype(np.int64)
    for _ in range(MAX_REDRAWS):
        bad = _invalid(pop, segment, care, bene, once, b17, practitioner, kind_id)
        if not bad.any():
            break
        for (p, age, sex), rows in group_rows.items():
            redo = rows[bad[rows]]
            if redo.size:
                bene[redo] = pools.draw(p, age, sex, redo.size, rng)
    else:
        raise GeneratorError("could not place every invoice on a valid beneficiary; raise --population")
    return FlowPlan(reception_days, day, segment, kind.tolist(), ps, member, visits.tolist(), bene, care, payee)


def _add_months_days(days: np.ndarray, months: int) -> np.ndarray:
    """Vectorised date + n months (same day, or the month's last day), on day numbers."""
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    target = m + months
    day_of_month = (d - m.astype("datetime64[D]")).astype(np.int64)
    last = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64) - 1
    return (target.astype("datetime64[D]") + np.minimum(day_of_month, last)).astype(np.int64)


def _invalid(pop: Population, segment: np.ndarray, care: np.ndarray, bene: np.ndarray, once: np.ndarray,
             b17: np.ndarray, practitioner: np.ndarray, kind_id: np.ndarray) -> np.ndarray:
    """Invoices whose beneficiary a clean flow cannot carry, that repeat a once-per-day act (C37),
    or that give one beneficiary the same kind of care twice on a day (C45 signals kept rare)."""
    present = care != NO_DATE
    first = np.where(present, care, np.iinfo(np.int32).max).min(axis=1)
    last = care[:, 0]
    bad = np.zeros(care.shape[0], dtype=bool)
    at = segment == SEGMENT_NAMES.index("apias")
    bad |= at & (pop.apias_event[bene] > first)
    ma = segment == SEGMENT_NAMES.index("maternity")
    start = pop.pregnancy_start[bene]
    safe_start = np.where(start == NO_DATE, 0, start)
    bad |= ma & ((start > first) | (last > _add_months_days(safe_start, 10)))
    sig = np.isin(segment, [SEGMENT_NAMES.index("sig_nature"), SEGMENT_NAMES.index("sig_exo21")])
    bad |= sig & (pop.sig_start[bene] > first)
    bad |= _repeats(once, bene, practitioner, last)
    bad |= _repeats(b17, bene, np.zeros_like(practitioner), last)
    bad |= _repeats(np.ones_like(once), bene, kind_id, last)
    return bad


def _repeats(mask: np.ndarray, bene: np.ndarray, who: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Rows of `mask` whose (beneficiary, who, day) appeared in an earlier row."""
    rows = np.flatnonzero(mask)
    out = np.zeros(mask.shape[0], dtype=bool)
    if rows.size < 2:
        return out
    keys = np.stack([bene[rows], who[rows], day[rows].astype(np.int64)], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    dup = np.ones(rows.size, dtype=bool)
    dup[first] = False
    out[rows[dup]] = True
    return out
