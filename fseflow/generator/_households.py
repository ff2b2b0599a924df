"""Households and NIRs of the population: who opens whose rights, birth ranks, own NIRs.

Every family member is attached to one insured opener (population.md §4): spouses to an
insured of the other sex and a close age (one spouse per opener), children to an insured
22–42 years older, other dependants to any adult insured. All of it is vectorised.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fseflow.generator import _shares as S


@dataclass
class Households:
    quality: np.ndarray     # i1
    opener: np.ndarray      # i8
    rang: np.ndarray        # i2
    birth_rank: np.ndarray  # i1
    birth: np.ndarray       # i4 (twins share their birth date)


def _qualities(age: np.ndarray, family: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    quality = np.ones(age.shape[0], dtype=np.int8)
    u = rng.random(size=int(age.shape[0]))
    for lo, hi, p2, p3, _p4 in S.FAMILY_QUALITY:
        rows = family & (age >= lo) & (age <= hi)
        quality[rows] = np.where(u[rows] < p2, 2, np.where(u[rows] < p2 + p3, 3, 4))
    return quality


def _weighted_sample(weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct indices drawn with probability ∝ weights (Gumbel top-k)."""
    keys = np.log(weights) - np.log(-np.log(rng.random(weights.shape[0])))
    return np.argpartition(-keys, k - 1)[:k] if k > 0 else np.zeros(0, dtype=np.int64)


def _match_spouses(spouses: np.ndarray, pool: np.ndarray, age: np.ndarray, gap: tuple[float, float],
                   rng: np.random.Generator) -> np.ndarray:
    """One distinct opener of `pool` per spouse, paired by age rank around age + gap."""
    target = np.clip(np.rint(age[spouses] + rng.normal(gap[0], gap[1], spouses.size)), 18, 110).astype(np.int64)
    k = min(spouses.size, pool.size)
    want = np.bincount(target, minlength=128).astype(np.float64)
    have = np.bincount(age[pool], minlength=128).astype(np.float64)
    w = want[age[pool]] / np.maximum(have[age[pool]], 1.0) + 1e-9
    chosen = pool[_weighted_sample(w, k, rng)]
    order_s = spouses[np.argsort(target, kind="stable")][:k] if k < spouses.size else \
        spouses[np.argsort(target, kind="stable")]
    order_o = chosen[np.argsort(age[chosen] + rng.random(k), kind="stable")]
    out = np.full(spouses.size, -1, dtype=np.int64)
    pos = {int(s): i for i, s in enumerate(spouses)}
    out[[pos[int(s)] for s in order_s]] = order_o
    return out


def _nearest_by_age(targets: np.ndarray, pool: np.ndarray, age: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A member of `pool` whose age is nearest to each target, uniformly among equal ages."""
    ages = age[pool].astype(np.int64)
    order = np.argsort(ages, kind="stable")
    count = np.bincount(ages, minlength=128)
    start = np.r_[0, np.cumsum(count)[:-1]]
    present = np.flatnonzero(count)
    # nearest age that has members, for every possible target age
    grid = np.arange(count.size)
    nearest = present[np.abs(grid[:, None] - present[None, :]).argmin(axis=1)]
    t = nearest[np.clip(np.asarray(targets, dtype=np.int64), 0, count.size - 1)]
    pos = start[t] + np.floor(rng.random(t.size) * count[t]).astype(np.int64)
    return pool[order[pos]]


def build(status: np.ndarray, age: np.ndarray, sex: np.ndarray, birth: np.ndarray,
          rng: np.random.Generator) -> Households:
    n = status.shape[0]
    family = status == S.FAMILY
    quality = _qualities(age, family, rng)
    opener = np.arange(n, dtype=np.int64)
    insured = np.flatnonzero(~family)
    adults = insured[age[insured] >= 20]
    taken = np.zeros(n, dtype=bool)
    for spouse_sex, key in ((2, "female_spouse"), (1, "male_spouse")):
        spouses = np.flatnonzero((quality == 2) & (sex == spouse_sex))
        pool = adults[(sex[adults] != spouse_sex) & ~taken[adults]]
        if pool.size < spouses.size:
            pool = adults[~taken[adults]]
        match = _match_spouses(spouses, pool, age, S.SPOUSE_AGE_GAP[key], rng)
        ok = match >= 0
        opener[spouses[ok]] = match[ok]
        taken[match[ok]] = True
        unmatched = spouses[~ok]
        opener[unmatched] = adults[rng.integers(0, adults.size, unmatched.size)]
    children = np.flatnonzero(quality == 3)
    lo, hi = S.PARENT_AGE_GAP
    targets = age[children] + rng.integers(lo, hi + 1, children.size)
    opener[children] = _nearest_by_age(targets, insured[age[insured] >= 18], age, rng)
    others = np.flatnonzero(quality == 4)
    opener[others] = adults[rng.integers(0, adults.size, others.size)]

    birth = birth.copy()
    minors = children[age[children] < 18]
    twins = rng.permutation(minors)[:int(round(S.TWIN_SHARE * minors.size))]
    if twins.size:
        firsts = _nearest_by_age(age[twins].astype(np.float64), minors, age, rng)
        ok = (firsts != twins) & (age[firsts] == age[twins])
        opener[twins[ok]] = opener[firsts[ok]]
        birth[twins[ok]] = birth[firsts[ok]]

    # rang: 0 for the opener, then members by birth date; birth_rank: 1, 2 … among equal birth dates
    order = np.lexsort((birth, quality != 1, opener))
    grp_start = np.r_[0, np.flatnonzero(np.diff(opener[order])) + 1]
    first_of = np.repeat(grp_start, np.diff(np.r_[grp_start, n]))
    rang = np.empty(n, dtype=np.int16)
    rang[order] = np.arange(n) - first_of
    order = np.lexsort((quality, birth, opener))
    key = opener[order] * 100_000 + birth[order]
    grp_start = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    first_of = np.repeat(grp_start, np.diff(np.r_[grp_start, n]))
    birth_rank = np.empty(n, dtype=np.int8)
    birth_rank[order] = np.minimum(np.arange(n) - first_of + 1, 9)
    return Households(quality, opener, rang, birth_rank, birth)


def nirs(sex: np.ndarray, birth: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A distinct own NIR per person (numeric, Corsica digits replaced) and its Corsica flag."""
    n = sex.shape[0]
    day = birth.astype("datetime64[D]")
    year = day.astype("datetime64[Y]").astype(np.int64) + 1970
    month = day.astype("datetime64[M]").astype(np.int64) % 12 + 1
    places = list(S.BIRTH_PLACE)
    p = np.array([S.BIRTH_PLACE[k] for k in places])
    kind = rng.choice(len(places), size=n, p=p / p.sum())
    metro = np.array([d for d in range(1, 96) if d != 20])
    dept = metro[rng.integers(0, metro.size, size=int(n))]
    commune = rng.integers(1, 900, size=int(n))
    corsica = np.zeros(n, dtype=np.int8)
    cors = kind == places.index("corsica")
    flag = rng.integers(1, 3, size=int(n)).astype(np.int8)
    modern = cors & (year >= 1976)
    corsica[modern] = flag[modern]
    dept = np.where(modern, np.where(flag == 1, 19, 18), np.where(cors, 20, dept))
    dom = kind == places.index("overseas")
    digits = np.array(S.OVERSEAS_DIGITS)
    dept = np.where(dom, 97, dept)
    commune = np.where(dom, digits[rng.integers(0, digits.size, n)] * 100 + rng.integers(1, 60, n), commune)
    abroad = kind == places.index("abroad")
    dept = np.where(abroad, 99, dept)
    commune = np.where(abroad, rng.integers(100, 500, n), commune)
    stem = (sex.astype(np.int64) * 10**12 + (year % 100) * 10**10 + month * 10**8 + dept * 10**6 + commune * 10**3)
    nir = stem + rng.integers(1, 1000, n)
    for _ in range(50):
        ident = nir + corsica.astype(np.int64) * 10**13
        _, first = np.unique(ident, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        nir[dup] = stem[dup] + rng.integers(1, 1000, int(dup.sum()))
    return nir, corsica
