"""Fraud indicator kernels (fraud.md §3–§4): workload (F01), peer statistics (F02), scoring, alerts.

Pure functions over numpy arrays: no I/O, no dicts inside numba. Each public function checks
dtypes and shapes (a `TypeError` names the `.astype` to use), then calls a private `@njit`
kernel. Twin: `fraud_twin.py`, same signatures, plain Python loops.

Indicator ids are the columns of the hits matrix given to `score` (constants below). The
table `fraud_weights.csv` has one row per indicator or F01 level; the F02 row is expanded into
one column per F02 metric, all with its weight and thresholds. Columns form families (F01 levels,
F02 metrics, then one family per other indicator): only the `cap[family]` largest contributions
w·h of a family count, so at most one F01 level and two F02 metrics (the rows' `max_count`).

Units: minutes are int64 hundredths of a minute ("centiminutes"), money int64 cents.
"""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import NamedTuple

import numpy as np
from numba import njit

from fseflow.config import NJIT_OPTIONS
from fseflow.processors.tables import read_table

# -- indicator ids: the columns of the hits matrix (the one place they are declared) ---------
#: rows of fraud_weights.csv that are indicators, in column order (F02 expanded below)
TABLE_IDS = ("F01_impossible", "F01_red", "F01_amber", "F02", "F03", "F04", "F05", "F06", "F07",
             "F08", "F09", "F10")
#: F02 metrics (fraud.md §3), one column each: F02 + m is the column of metric m
F02_METRICS = ("acts_per_working_day", "patients_per_day", "eur_per_patient", "majoration_share",
               "tiers_payant_share", "coefficient_per_act", "excess_share", "eur_per_trip")
INDICATORS = (*TABLE_IDS[:3], *(f"F02_{m}" for m in F02_METRICS), *TABLE_IDS[4:])
F01_IMPOSSIBLE, F01_RED, F01_AMBER, F02 = 0, 1, 2, 3
F03, F04, F05, F06, F07, F08, F09, F10 = range(F02 + len(F02_METRICS), len(INDICATORS))
N_INDICATORS = len(INDICATORS)
#: families: F01 levels, F02 metrics, one per other indicator (FAMILIES[group[i]] names column i's)
FAMILIES = ("F01", "F02", "F03", "F04", "F05", "F06", "F07", "F08", "F09", "F10")
#: F01 level (workload_level) -> its column; level 0 has none
LEVEL_INDICATOR = (-1, F01_AMBER, F01_RED, F01_IMPOSSIBLE)
_ROW_OF = tuple(TABLE_IDS.index("F02" if i.startswith("F02_") else i) for i in INDICATORS)
#: median absolute deviation -> sd of a normal law (robust z, fraud.md §3)
MAD_SCALE = 0.6745
#: width of the z-strength ramp: h = min(1, (|z| - threshold) / Z_RAMP + 0.5) (fraud.md §4)
Z_RAMP = 3.0


def _want(name: str, a: object, dtype: str, ndim: int = 1) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype != np.dtype(dtype) or a.ndim != ndim:
        got = f"{a.dtype} ndim={a.ndim}" if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"{name}: expected a {ndim}-d numpy array of {dtype}, got {got}; use .astype('{dtype}')")
    return np.ascontiguousarray(a)


def _same_length(**arrays: np.ndarray) -> int:
    sizes = {k: v.shape[0] for k, v in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"arrays of different lengths: {sizes}")
    return next(iter(sizes.values()))


# -- the declarative table ---------------------------------------------------------------------
class FraudWeights(NamedTuple):
    """fraud_weights.csv, per column of the hits matrix (index with the indicator constants)."""
    weight: np.ndarray          # float64[N_INDICATORS]
    group: np.ndarray           # int64[N_INDICATORS]: family, index into FAMILIES and cap
    cap: np.ndarray             # int64[len(FAMILIES)]: contributions of a family that count
    op: tuple[str, ...]         # comparison of a value with `threshold`: ">", ">=" or ""
    threshold: np.ndarray       # float64, NaN when none
    min_count: np.ndarray       # int64, 0 when none (peers, lines, invoices)
    max_count: np.ndarray       # int64, 0 when none
    alt_op: tuple[str, ...]
    alt_threshold: np.ndarray   # float64, NaN when none (the "or" condition)
    months: np.ndarray          # int64, 0 when none
    min_volume: np.ndarray      # int64, 0 when none: smallest volume (lines, patients) of an entity
    alert_threshold: float
    max_alert_share: float


def _rows() -> dict[str, dict[str, str]]:
    rows = {r["id"]: r for r in read_table("fraud_weights")}
    missing = set(TABLE_IDS) - set(rows)
    if missing or "alert_score" not in rows or "alert_max_share" not in rows:
        raise ValueError(f"fraud_weights.csv lacks rows {sorted(missing)} or the alert rows")
    return rows


@cache
def weights() -> FraudWeights:
    """The table as arrays the kernels take; cached (the CSV ships with the package)."""
    rows = _rows()
    per = [rows[TABLE_IDS[r]] for r in _ROW_OF]

    def num(key: str, kind: type) -> np.ndarray:
        blank = np.nan if kind is float else 0
        return np.array([kind(r[key]) if r[key] else blank for r in per], dtype=np.float64 if kind is float else np.int64)

    weight = num("weight", float)
    if not ((weight >= 0) & (weight <= 1)).all():
        raise ValueError("fraud_weights.csv: every weight must be in [0, 1]")
    group = np.array([FAMILIES.index(i[:3]) for i in INDICATORS], dtype=np.int64)
    max_count = num("max_count", int)
    cap = np.array([max_count[group == g].max() or int((group == g).sum()) for g in range(len(FAMILIES))],
                   dtype=np.int64)
    out = FraudWeights(weight, group, cap, tuple(r["op"] for r in per), num("threshold", float),
                       num("min_count", int), max_count, tuple(r["alt_op"] for r in per),
                       num("alt_threshold", float), num("months", int), num("min_volume", int),
                       float(rows["alert_score"]["threshold"]), float(rows["alert_max_share"]["threshold"]))
    for a in out:
        if isinstance(a, np.ndarray):
            a.setflags(write=False)   # shared by every caller of the cached table
    return out


# -- F01 workload ------------------------------------------------------------------------------
@cache
def _minutes_rows() -> dict[str, tuple[int, int]]:
    out = {}
    for r in read_table("act_minutes"):
        c = Decimal(r["minutes"]) * 100
        if c != c.to_integral_value():
            raise ValueError(f"act_minutes.csv {r['code']}: {r['minutes']} is not a whole number of 1/100 minute")
        out[r["code"]] = (int(c), 0) if r["per"] == "act" else (0, int(c))
    return out


def act_minutes_table(act_codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(per_act, per_unit) int64 centiminutes for the caller's act ids (`act_codes[id]`).

    per_act: standard time of one act; per_unit: time per coefficient unit (AMI, AIS, AMO, AMY).
    A code absent from act_minutes.csv gets 0 (no own time).
    """
    rows = _minutes_rows()
    pairs = [rows.get(c.strip(), (0, 0)) for c in act_codes]
    return (np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64))


@njit(**NJIT_OPTIONS)
def _line_minutes(act, quantity, coefficient, eligible, per_act, per_unit, out):
    for j in range(act.shape[0]):
        a = act[j]
        if eligible[j] == 0 or a < 0 or a >= per_act.shape[0]:
            out[j] = 0
        else:
            unit = (per_unit[a] * np.int64(coefficient[j]) + 50) // 100
            out[j] = np.int64(quantity[j]) * (per_act[a] + unit)


@njit(**NJIT_OPTIONS)
def _runs(order, practitioner, day, minutes, n_lines):
    n_groups = 0
    for k in range(order.shape[0]):
        j = order[k]
        if k == 0 or practitioner[j] != practitioner[order[k - 1]] or day[j] != day[order[k - 1]]:
            n_groups += 1
    kp = np.empty(n_groups, dtype=np.int64)
    kd = np.empty(n_groups, dtype=np.int32)
    km = np.zeros(n_groups, dtype=np.int64)
    line_group = np.full(n_lines, -1, dtype=np.int64)
    g = -1
    for k in range(order.shape[0]):
        j = order[k]
        if k == 0 or practitioner[j] != practitioner[order[k - 1]] or day[j] != day[order[k - 1]]:
            g += 1
            kp[g] = practitioner[j]
            kd[g] = day[j]
        km[g] += minutes[j]
        line_group[j] = g
    return kp, kd, km, line_group


class Workload(NamedTuple):
    practitioner: np.ndarray    # int64[g], keys sorted by (practitioner, day)
    day: np.ndarray             # int32[g]
    minutes: np.ndarray         # int64[g]: Σ standard centiminutes of the key's lines
    line_group: np.ndarray      # int64[n]: key index of each line, -1 for a line not eligible
    line_minutes: np.ndarray    # int64[n]: centiminutes of each line (0 when not eligible)


def line_minutes(act: np.ndarray, quantity: np.ndarray, coefficient: np.ndarray, eligible: np.ndarray,
                 per_act: np.ndarray, per_unit: np.ndarray) -> np.ndarray:
    """int64 centiminutes per line: quantity × (per_act + round_half_up(per_unit × coefficient / 100)).

    act int32 (ids into per_act/per_unit; out of range = 0 minutes), quantity int32, coefficient
    int32 hundredths (AMI 1.5 = 150), eligible int8 (0: pharmacy, lab, supplier, transport company).
    """
    act, quantity = _want("act", act, "int32"), _want("quantity", quantity, "int32")
    coefficient, eligible = _want("coefficient", coefficient, "int32"), _want("eligible", eligible, "int8")
    per_act, per_unit = _want("per_act", per_act, "int64"), _want("per_unit", per_unit, "int64")
    n = _same_length(act=act, quantity=quantity, coefficient=coefficient, eligible=eligible)
    _same_length(per_act=per_act, per_unit=per_unit)
    out = np.empty(n, dtype=np.int64)
    _line_minutes(act, quantity, coefficient, eligible, per_act, per_unit, out)
    return out


def daily_workload(practitioner: np.ndarray, day: np.ndarray, act: np.ndarray, quantity: np.ndarray,
                   coefficient: np.ndarray, eligible: np.ndarray, per_act: np.ndarray,
                   per_unit: np.ndarray) -> Workload:
    """F01: Σ standard minutes per (practitioner int64, care day int32) over the eligible lines."""
    practitioner, day = _want("practitioner", practitioner, "int64"), _want("day", day, "int32")
    minutes = line_minutes(act, quantity, coefficient, eligible, per_act, per_unit)
    n = _same_length(practitioner=practitioner, day=day, act=act)
    idx = np.flatnonzero(eligible != 0)
    order = idx[np.lexsort((day[idx], practitioner[idx]))]
    kp, kd, km, line_group = _runs(order, practitioner, day, minutes, n)
    return Workload(kp, kd, km, line_group, minutes)


def _strict_bounds() -> np.ndarray:
    """(amber, red, impossible) as int64 centiminutes b with `minutes > b` ⇔ the table's test
    (read from the CSV's decimal text, not from the float arrays of `weights()`)."""
    rows = _rows()
    out = []
    for rid in ("F01_amber", "F01_red", "F01_impossible"):
        c = Fraction(rows[rid]["threshold"]) * 100
        # integer m: m > c ⇔ m > floor(c); m >= c ⇔ m > ceil(c) - 1
        out.append(int(np.floor(c)) if rows[rid]["op"] == ">" else -int(np.floor(-c)) - 1)
    return np.array(out, dtype=np.int64)


@njit(**NJIT_OPTIONS)
def _level(minutes, bounds, out):
    for g in range(minutes.shape[0]):
        lv = 0
        for k in range(3):
            if minutes[g] > bounds[k]:
                lv = k + 1
        out[g] = lv


def workload_level(minutes: np.ndarray) -> np.ndarray:
    """int8 F01 level per key: 0 none, 1 amber, 2 red, 3 impossible (LEVEL_INDICATOR gives the column)."""
    minutes = _want("minutes", minutes, "int64")
    out = np.empty(minutes.shape[0], dtype=np.int8)
    _level(minutes, _strict_bounds(), out)
    return out


# -- F02 peer statistics -------------------------------------------------------------------------
class PeerStats(NamedTuple):
    count: np.ndarray   # int64[G]
    mean: np.ndarray    # float64[G]
    m2: np.ndarray      # float64[G]: Σ (x - mean)²; variance = m2 / (count - 1)

    def variance(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count >= 2, self.m2 / np.maximum(self.count - 1, 1), np.nan)


@njit(**NJIT_OPTIONS)
def _welford(group, values, count, mean, m2):
    for j in range(values.shape[0]):
        g, x = group[j], values[j]
        if g < 0 or not np.isfinite(x):
            continue
        count[g] += 1
        d = x - mean[g]
        mean[g] += d / count[g]
        m2[g] += d * (x - mean[g])


@njit(**NJIT_OPTIONS)
def _chan(na, ma, sa, nb, mb, sb, count, mean, m2):
    for g in range(na.shape[0]):
        if na[g] == 0:
            count[g] = nb[g]
            mean[g] = mb[g]
            m2[g] = sb[g]
        elif nb[g] == 0:
            count[g] = na[g]
            mean[g] = ma[g]
            m2[g] = sa[g]
        else:
            n = na[g] + nb[g]
            d = mb[g] - ma[g]
            count[g] = n
            mean[g] = ma[g] + d * nb[g] / n
            m2[g] = sa[g] + sb[g] + d * d * na[g] * nb[g] / n


def _groups(group: np.ndarray, n_groups: int) -> np.ndarray:
    group = _want("group", group, "int64")
    if group.size and group.max() >= n_groups:
        raise ValueError(f"group ids must be < n_groups={n_groups} (encode with np.unique(..., return_inverse=True))")
    return group


def peer_stats(group: np.ndarray, values: np.ndarray, n_groups: int) -> PeerStats:
    """Welford in one pass: count, mean, M2 per dense group id 0..n_groups-1.

    group int64 (speciality × département × month encoded densely; -1 = skip the value),
    values float64 (a value that is not finite is skipped).
    """
    group, values = _groups(group, n_groups), _want("values", values, "float64")
    _same_length(group=group, values=values)
    out = PeerStats(np.zeros(n_groups, np.int64), np.zeros(n_groups, np.float64), np.zeros(n_groups, np.float64))
    _welford(group, values, *out)
    return out


def merge_stats(a: PeerStats, b: PeerStats) -> PeerStats:
    """Chan et al.: the statistics of two partitions or batches combined, group by group."""
    arrs = [_want(f"{s}.{f}", x, "int64" if f == "count" else "float64")
            for s, st in (("a", a), ("b", b)) for f, x in zip(PeerStats._fields, st)]
    _same_length(**{f"{i}": x for i, x in enumerate(arrs)})
    n = arrs[0].shape[0]
    out = PeerStats(np.empty(n, np.int64), np.empty(n, np.float64), np.empty(n, np.float64))
    _chan(*arrs, *out)
    return out


@njit(**NJIT_OPTIONS)
def _z(x, group, count, mean, m2, min_peers, out):
    for j in range(x.shape[0]):
        g = group[j]
        out[j] = np.nan
        if g < 0 or count[g] < min_peers or count[g] < 2 or not np.isfinite(x[j]):
            continue
        sd = np.sqrt(m2[g] / (count[g] - 1))
        if sd > 0.0:
            out[j] = (x[j] - mean[g]) / sd


def z_scores(x: np.ndarray, group: np.ndarray, stats: PeerStats, min_peers: int | None = None) -> np.ndarray:
    """float64 z = (x - mean) / sd of each entity against its group; NaN when the group has fewer
    than min_peers values (default: the F02 row's min_count, 20) or sd = 0, or x is not finite.
    The caller then compares at national speciality level (fraud.md §3)."""
    x, group = _want("x", x, "float64"), _groups(group, stats.count.shape[0])
    _same_length(x=x, group=group)
    mp = int(weights().min_count[F02]) if min_peers is None else int(min_peers)
    out = np.empty(x.shape[0], dtype=np.float64)
    _z(x, group, _want("count", stats.count, "int64"), _want("mean", stats.mean, "float64"),
       _want("m2", stats.m2, "float64"), mp, out)
    return out


class RobustZ(NamedTuple):
    z: np.ndarray       # float64[n]: 0.6745 (x - median) / MAD, NaN when not computable
    median: np.ndarray  # float64[G], NaN for an empty group
    mad: np.ndarray     # float64[G]: median of |x - median|, NaN for an empty group
    count: np.ndarray   # int64[G]: finite values per group


@njit(**NJIT_OPTIONS)
def _robust(order, group, values, min_peers, z, median, mad, count):
    k, n = 0, order.shape[0]
    while k < n:
        g = group[order[k]]
        e = k
        while e < n and group[order[e]] == g:
            e += 1
        m = e - k
        h = k + m // 2
        med = values[order[h]] if m % 2 == 1 else 0.5 * (values[order[h - 1]] + values[order[h]])
        dev = np.empty(m, dtype=np.float64)
        for i in range(m):
            dev[i] = abs(values[order[k + i]] - med)
        dev = np.sort(dev)
        md = dev[m // 2] if m % 2 == 1 else 0.5 * (dev[m // 2 - 1] + dev[m // 2])
        median[g], mad[g], count[g] = med, md, m
        if m >= min_peers and md > 0.0:
            for i in range(k, e):
                j = order[i]
                z[j] = MAD_SCALE * (values[j] - med) / md
        k = e


def robust_z(values: np.ndarray, group: np.ndarray, n_groups: int, min_peers: int | None = None) -> RobustZ:
    """Robust twin of the F02 z-score, per dense group id (sort-based median and MAD).

    z is NaN for a value that is not finite, a group id -1, a group with fewer than min_peers
    finite values (default: the F02 row's min_count) or MAD = 0."""
    values, group = _want("values", values, "float64"), _groups(group, n_groups)
    n = _same_length(values=values, group=group)
    idx = np.flatnonzero((group >= 0) & np.isfinite(values))
    order = idx[np.lexsort((values[idx], group[idx]))]
    mp = int(weights().min_count[F02]) if min_peers is None else int(min_peers)
    out = RobustZ(np.full(n, np.nan), np.full(n_groups, np.nan), np.full(n_groups, np.nan), np.zeros(n_groups, np.int64))
    _robust(order, group, values, mp, *out)
    return out


@njit(**NJIT_OPTIONS)
def _strength(z, threshold, out):
    for j in range(z.shape[0]):
        a = abs(z[j])
        out[j] = min(1.0, (a - threshold) / Z_RAMP + 0.5) if a >= threshold else 0.0


def z_strength(z: np.ndarray | float, threshold: float | None = None) -> np.ndarray | float:
    """h = min(1, (|z| - 3) / 3 + 0.5) when |z| >= threshold (default: the F02 row's, 3), else 0
    (also for NaN). Two-sided; for a one-sided test (F05, F10: z >= 3) pass max(z, 0)."""
    t = float(weights().threshold[F02]) if threshold is None else float(threshold)
    arr = np.atleast_1d(np.asarray(z, dtype=np.float64)).ravel()
    out = np.empty(arr.shape[0], dtype=np.float64)
    _strength(arr, t, out)
    return float(out[0]) if np.ndim(z) == 0 else out.reshape(np.shape(z))


# -- scoring and alerts ----------------------------------------------------------------------------
@njit(**NJIT_OPTIONS)
def _score(hits, weight, group, cap, score, top):
    n, k = hits.shape
    c = np.empty(k, dtype=np.float64)
    keep = np.empty(k, dtype=np.bool_)
    for e in range(n):
        for i in range(k):
            h = hits[e, i]
            h = 0.0 if not h > 0.0 else min(h, 1.0)  # NaN or negative: no hit
            c[i] = weight[i] * h
        for i in range(k):
            keep[i] = c[i] > 0.0
            g = group[i]
            if keep[i] and g >= 0:
                rank = 0
                for j in range(k):
                    if group[j] == g and (c[j] > c[i] or (c[j] == c[i] and j < i)):
                        rank += 1
                keep[i] = rank < cap[g]
        prod = 1.0
        for i in range(k):
            if keep[i]:
                prod *= 1.0 - c[i]
        score[e] = 1.0 - prod
        for s in range(3):
            best = -1
            for i in range(k):
                if keep[i] and (best < 0 or c[i] > c[best]):
                    best = i
            top[e, s] = best
            if best >= 0:
                keep[best] = False


def score(hits: np.ndarray, weight: np.ndarray | None = None, group: np.ndarray | None = None,
          cap: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """score = 1 - Π (1 - w_i·h_i) per entity (row), and its top-3 indicators.

    hits float64 (n, k): strength h of each indicator column (NaN or <= 0: no hit, clipped to 1);
    weight float64 (k,) in [0, 1]; group int64 (k,): family of each column (-1: no family);
    cap int64 (families,): in a family only the cap largest w·h count (ties: lower column).
    Defaults: the table (`weights()`), k = N_INDICATORS. Returns score float64 (n,) in [0, 1]
    and top int64 (n, 3): columns of the largest counted w·h (ties: lower column), -1 for none.
    """
    if weight is None or group is None or cap is None:
        w = weights()
        weight, group, cap = (w.weight if weight is None else weight, w.group if group is None else group,
                              w.cap if cap is None else cap)
    hits, weight = _want("hits", hits, "float64", 2), _want("weight", weight, "float64")
    group, cap = _want("group", group, "int64"), _want("cap", cap, "int64")
    if hits.shape[1] != weight.shape[0] or group.shape[0] != weight.shape[0]:
        raise ValueError(f"hits has {hits.shape[1]} columns, weight {weight.shape[0]}, group {group.shape[0]}")
    if not ((weight >= 0) & (weight <= 1)).all() or (group.size and group.max() >= cap.shape[0]):
        raise ValueError("weights must be in [0, 1] and every group id < len(cap)")
    out, top = np.empty(hits.shape[0], dtype=np.float64), np.empty((hits.shape[0], 3), dtype=np.int64)
    _score(hits, weight, group, cap, out, top)
    return out, top


def alert_cap(max_share: float, population: int) -> int:
    """floor(max_share × population), exact on the decimal written (0.01 × 2900 = 29)."""
    return int(Decimal(repr(float(max_share))) * int(population))


def alerts(score: np.ndarray, amount_at_stake_cents: np.ndarray, threshold: float | None = None,
           max_share: float | None = None, population: int | None = None) -> np.ndarray:
    """int64 entity indices to alert, in order: score >= threshold (default 0.8), at most
    floor(max_share (default 0.01) × population (default: len(score))), at least 1 if any
    qualifies; by score desc, then amount at stake (int64 cents) desc, then entity index."""
    score, amount = _want("score", score, "float64"), _want("amount_at_stake_cents", amount_at_stake_cents, "int64")
    _same_length(score=score, amount=amount)
    w = weights()
    t = w.alert_threshold if threshold is None else float(threshold)
    share = w.max_alert_share if max_share is None else float(max_share)
    pop = score.shape[0] if population is None else int(population)
    idx = np.flatnonzero(score >= t)
    order = idx[np.lexsort((idx, -amount[idx], -score[idx]))]
    return order[:max(1, alert_cap(share, pop))].astype(np.int64)
