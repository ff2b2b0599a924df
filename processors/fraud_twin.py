"""Pure-Python reference twin of the fraud kernels (`fraud.py`), written for clarity.

Same signatures and outputs (numpy arrays built at the end), but plain lists, dicts, `sorted`,
`statistics.median` and `Fraction`; no numba. The property tests check the kernels against it.
"""
from __future__ import annotations

import math
import statistics
from fractions import Fraction

import numpy as np

from fseflow.processors.fraud import F02, MAD_SCALE, Z_RAMP, PeerStats, RobustZ, Workload, weights
from fseflow.processors.tables import read_table


def line_minutes(act: np.ndarray, quantity: np.ndarray, coefficient: np.ndarray, eligible: np.ndarray,
                 per_act: np.ndarray, per_unit: np.ndarray) -> np.ndarray:
    pa, pu = per_act.tolist(), per_unit.tolist()
    out = []
    for a, q, c, e in zip(act.tolist(), quantity.tolist(), coefficient.tolist(), eligible.tolist()):
        if e == 0 or not 0 <= a < len(pa):
            out.append(0)
        else:
            out.append(q * (pa[a] + (pu[a] * c + 50) // 100))   # half-up on 1/100 minute
    return np.array(out, dtype=np.int64)


def daily_workload(practitioner: np.ndarray, day: np.ndarray, act: np.ndarray, quantity: np.ndarray,
                   coefficient: np.ndarray, eligible: np.ndarray, per_act: np.ndarray,
                   per_unit: np.ndarray) -> Workload:
    minutes = line_minutes(act, quantity, coefficient, eligible, per_act, per_unit).tolist()
    sums: dict[tuple[int, int], int] = {}
    keys = list(zip(practitioner.tolist(), day.tolist()))
    for j, key in enumerate(keys):
        if eligible[j] != 0:
            sums[key] = sums.get(key, 0) + minutes[j]
    ordered = sorted(sums)
    index = {k: g for g, k in enumerate(ordered)}
    line_group = [index[k] if eligible[j] != 0 else -1 for j, k in enumerate(keys)]
    return Workload(np.array([k[0] for k in ordered], dtype=np.int64), np.array([k[1] for k in ordered], dtype=np.int32),
                    np.array([sums[k] for k in ordered], dtype=np.int64), np.array(line_group, dtype=np.int64),
                    np.array(minutes, dtype=np.int64))


def workload_level(minutes: np.ndarray) -> np.ndarray:
    rows = {r["id"]: r for r in read_table("fraud_weights")}
    levels = []
    for m in minutes.tolist():
        lv = 0
        for k, rid in enumerate(("F01_amber", "F01_red", "F01_impossible"), start=1):
            t, x = Fraction(rows[rid]["threshold"]), Fraction(m, 100)
            if (x > t) if rows[rid]["op"] == ">" else (x >= t):
                lv = k
        levels.append(lv)
    return np.array(levels, dtype=np.int8)


def peer_stats(group: np.ndarray, values: np.ndarray, n_groups: int) -> PeerStats:
    count, mean, m2 = [0] * n_groups, [0.0] * n_groups, [0.0] * n_groups
    for g, x in zip(group.tolist(), values.tolist()):
        if g < 0 or not math.isfinite(x):
            continue
        count[g] += 1
        d = x - mean[g]
        mean[g] += d / count[g]
        m2[g] += d * (x - mean[g])
    return PeerStats(np.array(count, dtype=np.int64), np.array(mean, dtype=np.float64), np.array(m2, dtype=np.float64))


def merge_stats(a: PeerStats, b: PeerStats) -> PeerStats:
    count, mean, m2 = [], [], []
    for na, ma, sa, nb, mb, sb in zip(*(x.tolist() for x in (*a, *b))):
        if na == 0 or nb == 0:
            n, m, s = (nb, mb, sb) if na == 0 else (na, ma, sa)
        else:
            n, d = na + nb, mb - ma
            m, s = ma + d * nb / n, sa + sb + d * d * na * nb / n
        count.append(n)
        mean.append(m)
        m2.append(s)
    return PeerStats(np.array(count, dtype=np.int64), np.array(mean, dtype=np.float64), np.array(m2, dtype=np.float64))


def z_scores(x: np.ndarray, group: np.ndarray, stats: PeerStats, min_peers: int | None = None) -> np.ndarray:
    mp = int(weights().min_count[F02]) if min_peers is None else min_peers
    count, mean, m2 = (s.tolist() for s in stats)
    out = []
    for v, g in zip(x.tolist(), group.tolist()):
        z = math.nan
        if g >= 0 and count[g] >= max(mp, 2) and math.isfinite(v):
            sd = math.sqrt(m2[g] / (count[g] - 1))
            if sd > 0:
                z = (v - mean[g]) / sd
        out.append(z)
    return np.array(out, dtype=np.float64)


def robust_z(values: np.ndarray, group: np.ndarray, n_groups: int, min_peers: int | None = None) -> RobustZ:
    mp = int(weights().min_count[F02]) if min_peers is None else min_peers
    members: dict[int, list[float]] = {}
    for g, v in zip(group.tolist(), values.tolist()):
        if g >= 0 and math.isfinite(v):
            members.setdefault(g, []).append(v)
    median, mad, count = [math.nan] * n_groups, [math.nan] * n_groups, [0] * n_groups
    for g, vs in members.items():
        median[g] = statistics.median(vs)
        mad[g] = statistics.median([abs(v - median[g]) for v in vs])
        count[g] = len(vs)
    z = []
    for g, v in zip(group.tolist(), values.tolist()):
        ok = g >= 0 and math.isfinite(v) and count[g] >= mp and mad[g] > 0
        z.append(MAD_SCALE * (v - median[g]) / mad[g] if ok else math.nan)
    return RobustZ(np.array(z, dtype=np.float64), np.array(median, dtype=np.float64),
                   np.array(mad, dtype=np.float64), np.array(count, dtype=np.int64))


def z_strength(z: np.ndarray | float, threshold: float | None = None) -> np.ndarray | float:
    t = float(weights().threshold[F02]) if threshold is None else float(threshold)

    def one(v: float) -> float:
        return min(1.0, (abs(v) - t) / Z_RAMP + 0.5) if abs(v) >= t else 0.0
    if np.ndim(z) == 0:
        return one(float(z))
    return np.array([one(v) for v in np.asarray(z, dtype=np.float64).ravel().tolist()],
                    dtype=np.float64).reshape(np.shape(z))


def score(hits: np.ndarray, weight: np.ndarray | None = None, group: np.ndarray | None = None,
          cap: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    w = weights()
    ws = (w.weight if weight is None else weight).tolist()
    gs = (w.group if group is None else group).tolist()
    caps = (w.cap if cap is None else cap).tolist()
    scores, tops = [], []
    for row in hits.tolist():
        c = [wi * (min(h, 1.0) if h > 0 else 0.0) for wi, h in zip(ws, row)]
        hit = [i for i in range(len(c)) if c[i] > 0]
        kept = {i for i in hit if gs[i] < 0}
        for g in set(gs) - {-1}:
            family = sorted((i for i in hit if gs[i] == g), key=lambda i: (-c[i], i))
            kept.update(family[:caps[g]])
        prod = 1.0
        for i in range(len(c)):          # column order, as the kernel multiplies
            if i in kept:
                prod *= 1.0 - c[i]
        scores.append(1.0 - prod)
        top = sorted(kept, key=lambda i: (-c[i], i))[:3]
        tops.append(top + [-1] * (3 - len(top)))
    return np.array(scores, dtype=np.float64), np.array(tops, dtype=np.int64).reshape(len(tops), 3)


def alerts(score: np.ndarray, amount_at_stake_cents: np.ndarray, threshold: float | None = None,
           max_share: float | None = None, population: int | None = None) -> np.ndarray:
    w = weights()
    t = w.alert_threshold if threshold is None else threshold
    share = Fraction(str(w.max_alert_share if max_share is None else max_share))
    pop = len(score) if population is None else population
    s, a = score.tolist(), amount_at_stake_cents.tolist()
    chosen = sorted((i for i in range(len(s)) if s[i] >= t), key=lambda i: (-s[i], -a[i], i))
    return np.array(chosen[:max(1, math.floor(share * pop))], dtype=np.int64)
