"""Beneficiaries: the protected persons of population.md, as numpy columns, and `beneficiaries.csv`.

Counts per age band × status are exact at full scale (782,783) and apportioned at any other
size; households attach every family member to one insured opener. Rights periods (ALD, C2S,
SIG), deaths, APIAS events and pregnancies are drawn here once, so that every invoice the
flow builds can be checked against the same rows the liquidation engine loads.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fseflow.days import NO_DATE, OPEN_END, to_days
from fseflow.generator import _households, _shares as S
from fseflow.generator._ids import iban_array, nir_key_array, nir_strings

__all__ = ["Population", "build_population", "scaled", "write_beneficiaries", "BENEFICIARY_COLUMNS"]

BENEFICIARY_COLUMNS = (
    "nir", "key", "rang", "birth_date", "birth_rank", "sex", "quality", "rights_start", "rights_end",
    "ald_start", "ald_end", "c2s_start", "c2s_end", "sig_start", "sig_end", "death_date", "iban",
)
_YEAR = 365.25


@dataclass
class Population:
    """One row per protected person; dates are int32 day numbers (`fseflow.days`)."""

    as_of: dt.date
    status: np.ndarray        # i1: ACTIVE, RETIRED, OTHER, FAMILY
    band: np.ndarray          # i1: index in BANDS
    age: np.ndarray           # i2: completed years at as_of
    sex: np.ndarray           # i1: 1 male, 2 female
    birth: np.ndarray         # i4
    quality: np.ndarray       # i1: 1 insured, 2 spouse, 3 child, 4 other
    opener: np.ndarray        # i8: row of the household's opener (itself for an insured)
    rang: np.ndarray          # i2: rank in the household, 0 for the opener
    birth_rank: np.ndarray    # i1: 1–9, separates twins
    own_nir: np.ndarray       # i8: the person's own NIR, Corsica digits replaced (19/18)
    own_corsica: np.ndarray   # i1: 0, 1 (2A) or 2 (2B)
    rights_start: np.ndarray  # i4
    rights_end: np.ndarray    # i4, OPEN_END = open
    ald_start: np.ndarray     # i4, NO_DATE = none
    ald_end: np.ndarray       # i4
    c2s_start: np.ndarray
    c2s_end: np.ndarray
    c2s_free: np.ndarray      # bool: C2S free of charge (else with a contribution)
    sig_start: np.ndarray
    sig_end: np.ndarray
    sig_consumer: np.ndarray  # bool: among the SIG holders who consume care
    death: np.ndarray         # i4, NO_DATE = alive
    apias_event: np.ndarray   # i4: date of the AT event of an APIAS insured, NO_DATE = none
    pregnancy_start: np.ndarray  # i4, NO_DATE = not pregnant at as_of
    iban: np.ndarray          # S27, b"" = none (family members carry none)
    weight: np.ndarray        # f8: relative consumption of care

    def __len__(self) -> int:
        return int(self.status.shape[0])

    @property
    def nir(self) -> np.ndarray:
        """Opener's NIR per row (numeric, Corsica digits replaced)."""
        return self.own_nir[self.opener]

    @property
    def corsica(self) -> np.ndarray:
        return self.own_corsica[self.opener]

    @property
    def key(self) -> np.ndarray:
        return nir_key_array(self.nir)


def scaled(count: int, size: int) -> int:
    """A full-scale count at `size` protected persons."""
    return int(round(count * size / S.FULL_SCALE))


def apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts proportional to `weights` summing exactly to `total` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = w / w.sum() * total if w.sum() > 0 else np.zeros_like(w)
    base = np.floor(exact).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:short]] += 1
    return base


def _birth_days(age: np.ndarray, as_of: dt.date, rng: np.random.Generator) -> np.ndarray:
    """A birth date per person with exactly `age` completed years at as_of."""
    def anniversary(years_back: int) -> int:
        y = as_of.year - years_back
        day = 28 if (as_of.month, as_of.day) == (2, 29) else as_of.day
        return to_days(dt.date(y, as_of.month, day))

    top = int(age.max()) + 2
    hi = np.array([anniversary(a) for a in range(top)], dtype=np.int64)
    lo = np.append(hi[1:], 0) + 1
    span = hi[age] - lo[age] + 1
    return (lo[age] + np.floor(rng.random(age.shape[0]) * span).astype(np.int64)).astype(np.int32)


def _ages(band: np.ndarray, status: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lo = np.array([b[1] for b in S.BANDS])[band]
    hi = np.array([b[2] for b in S.BANDS])[band]
    lo = np.where(status == S.FAMILY, lo, np.maximum(lo, S.INSURED_MIN_AGE))
    age = lo + np.floor(rng.random(band.shape[0]) * (hi - lo + 1)).astype(np.int64)
    last = band == len(S.BANDS) - 1
    w = np.array(S.OLDEST_AGE_WEIGHTS)
    age[last] = S.BANDS[-1][1] + rng.choice(len(w), size=int(last.sum()), p=w / w.sum())
    return age.astype(np.int16)


def _sexes(status: np.ndarray, age: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Exactly round(MEN × size / FULL_SCALE) men; the active share is solved (population.md §4)."""
    groups = {
        "retired": status == S.RETIRED, "other": status == S.OTHER,
        "family_child": (status == S.FAMILY) & (age < 18), "family_adult": (status == S.FAMILY) & (age >= 18),
    }
    sex = np.full(status.shape[0], 2, dtype=np.int8)
    men_left = scaled(S.MEN, size)
    for name, mask in groups.items():
        rows = np.flatnonzero(mask)
        k = int(round(S.MALE_SHARE[name] * rows.size))
        sex[rng.permutation(rows)[:k]] = 1
        men_left -= k
    active = np.flatnonzero(status == S.ACTIVE)
    sex[rng.permutation(active)[:min(max(men_left, 0), active.size)]] = 1
    return sex


def _years_ago(as_of_day: int, years: np.ndarray) -> np.ndarray:
    return (as_of_day - np.floor(years * _YEAR)).astype(np.int32)


def build_population(size: int, as_of: dt.date, rng: np.random.Generator) -> Population:
    """Draw `size` protected persons as they stand at `as_of`."""
    cells = np.array(S.AGE_STATUS_COUNTS, dtype=np.int64)
    counts = cells.ravel() if size == S.FULL_SCALE else apportion(cells.ravel(), size)
    band = np.repeat(np.repeat(np.arange(len(S.BANDS)), len(S.STATUSES)), counts).astype(np.int8)
    status = np.repeat(np.tile(np.arange(len(S.STATUSES)), len(S.BANDS)), counts).astype(np.int8)
    n = band.shape[0]
    age = _ages(band, status, rng)
    birth = _birth_days(age, as_of, rng)
    sex = _sexes(status, age, size, rng)
    day0 = to_days(as_of)

    hh = _households.build(status, age, sex, birth, rng)
    birth = hh.birth
    own_nir, own_corsica = _households.nirs(sex, birth, rng)

    # rights: affiliation dates by status, family members from the later of birth and the opener's
    years = np.select(
        [status == S.ACTIVE, status == S.RETIRED, status == S.OTHER],
        [0.2 + rng.random(n) * np.clip(age - 18.0, 0.3, 30.0), 1 + rng.random(n) * 39, 0.2 + rng.random(n) * 12],
        0.0)
    rights_start = np.maximum(_years_ago(day0, years), birth + np.where(status < S.FAMILY, 16 * 365, 0))
    rights_start = np.minimum(rights_start, day0).astype(np.int32)
    rights_start = np.where(status == S.FAMILY, np.maximum(birth, rights_start[hh.opener]), rights_start)
    rights_end = np.full(n, OPEN_END, dtype=np.int32)

    openers = np.flatnonzero(status == S.ACTIVE)
    closed_openers = rng.permutation(openers)[:int(round(S.RIGHTS_CLOSED_SHARE * openers.size))]
    closed_end = np.full(n, OPEN_END, dtype=np.int64)
    lo, hi = S.RIGHTS_CLOSED_DAYS
    closed_end[closed_openers] = day0 - rng.integers(lo, hi + 1, closed_openers.size)
    closed = closed_end[hh.opener] != OPEN_END
    rights_end[closed] = closed_end[hh.opener][closed]
    rights_start = np.where(closed, np.minimum(rights_start, rights_end - 30), rights_start).astype(np.int32)

    death = np.full(n, NO_DATE, dtype=np.int32)
    p_die = np.array(S.MORTALITY)[band] * S.DEATH_WINDOW_DAYS / 365.0
    dead = (rng.random(n) < p_die) & ~closed
    death[dead] = day0 - rng.integers(1, S.DEATH_WINDOW_DAYS + 1, int(dead.sum()))
    rights_end[dead] = death[dead]

    ald_start, ald_end = _ald(band, birth, day0, size, rng)
    c2s_start, c2s_end, c2s_free = _c2s(hh.opener, day0, size, rng)
    sig_start, sig_end, consumer = _sig(status, age, birth, day0, size, rng)
    apias = np.full(n, NO_DATE, dtype=np.int32)
    pick = _first_by_priority([status == S.ACTIVE, status < S.FAMILY], scaled(S.APIAS_INSURED, size), rng)
    apias[pick] = day0 - rng.integers(5, 366, pick.size)
    pregnancy = np.full(n, NO_DATE, dtype=np.int32)
    fertile = (sex == 2) & (age >= S.PREGNANCY_AGES[0]) & (age <= S.PREGNANCY_AGES[1]) \
        & ((hh.quality == 1) | (hh.quality == 2)) & ~closed & ~dead
    pick = _first_by_priority([fertile], scaled(S.PREGNANCIES, size), rng)
    pregnancy[pick] = day0 - rng.integers(7, 271, pick.size)

    iban = np.zeros(n, dtype="S27")
    with_iban = (status < S.FAMILY) & (rng.random(n) >= S.NO_IBAN_SHARE)
    k = int(with_iban.sum())
    banks = np.array([30004, 30003, 30002, 20041, 10278, 11306, 10107, 13335, 17515, 18206, 15589, 30066])
    iban[with_iban] = iban_array(banks[rng.integers(0, banks.size, k)], rng.integers(1, 100_000, k),
                                 rng.integers(1, 10**11, k))
    weight = np.array(S.CONSUMPTION)[band] * np.where(sex == 2, S.WOMEN_FACTOR, 1.0)
    weight = weight * np.where(ald_start != NO_DATE, S.ALD_FACTOR, 1.0)
    return Population(
        as_of, status, band, age, sex, birth, hh.quality, hh.opener, hh.rang, hh.birth_rank,
        own_nir, own_corsica, rights_start, rights_end, ald_start, ald_end, c2s_start, c2s_end, c2s_free,
        sig_start, sig_end, consumer, death, apias, pregnancy, iban, weight,
    )


def _first_by_priority(pools: list[np.ndarray], k: int, rng: np.random.Generator) -> np.ndarray:
    """k rows drawn from the first pool, topped up from the next ones (population.md: "X first")."""
    chosen: list[np.ndarray] = []
    taken = np.zeros(pools[0].shape[0], dtype=bool)
    for pool in pools:
        need = k - sum(c.size for c in chosen)
        if need <= 0:
            break
        rows = rng.permutation(np.flatnonzero(pool & ~taken))[:need]
        taken[rows] = True
        chosen.append(rows)
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _ald(band: np.ndarray, birth: np.ndarray, day0: int, size: int, rng: np.random.Generator
         ) -> tuple[np.ndarray, np.ndarray]:
    n = band.shape[0]
    per_band = np.bincount(band, minlength=len(S.BANDS))
    target = apportion(np.array(S.ALD_PREVALENCE) * per_band, scaled(S.ALD, size))
    start = np.full(n, NO_DATE, dtype=np.int32)
    end = np.full(n, NO_DATE, dtype=np.int32)
    for b, k in enumerate(target):
        rows = rng.permutation(np.flatnonzero(band == b))[:int(k)]
        s = np.maximum(_years_ago(day0, 0.1 + rng.random(rows.size) * 15), birth[rows] + 1)
        start[rows] = np.minimum(s, day0 - 30)
        open_end = rng.random(rows.size) < 0.5
        end[rows] = np.where(open_end, OPEN_END, day0 + rng.integers(120, 5 * 365, rows.size))
    return start, end


def _c2s(opener: np.ndarray, day0: int, size: int, rng: np.random.Generator
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """C2S by whole household, exactly round(C2S × scale) persons (population.md §4)."""
    n = opener.shape[0]
    hh_size = np.bincount(opener, minlength=n)
    households = rng.permutation(np.flatnonzero(hh_size > 0))
    chosen = _fill_exact(households, hh_size, scaled(S.C2S, size))
    free = _fill_exact(chosen, hh_size, scaled(S.C2S_FREE, size))
    start_hh = np.full(n, NO_DATE, dtype=np.int32)
    start_hh[chosen] = day0 - rng.integers(0, 330, chosen.size)
    free_hh = np.zeros(n, dtype=bool)
    free_hh[free] = True
    start = start_hh[opener]
    end = np.where(start == NO_DATE, NO_DATE, start + 364).astype(np.int32)
    return start, end, free_hh[opener] & (start != NO_DATE)


def _fill_exact(households: np.ndarray, hh_size: np.ndarray, target: int) -> np.ndarray:
    """Households in the given order whose sizes add up to exactly `target` where possible."""
    sizes = hh_size[households]
    take = np.cumsum(sizes) <= target
    left = target - int(sizes[take].sum())
    for i in np.flatnonzero(~take):
        if left <= 0:
            break
        if sizes[i] <= left:
            take[i] = True
            left -= int(sizes[i])
    return households[take]


def _sig(status: np.ndarray, age: np.ndarray, birth: np.ndarray, day0: int, size: int,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = status.shape[0]
    holders = _first_by_priority(
        [(status == S.RETIRED) & (age >= 60), status == S.RETIRED, status < S.FAMILY],
        scaled(S.SIG_HOLDERS, size), rng)
    start = np.full(n, NO_DATE, dtype=np.int32)
    s = np.maximum(_years_ago(day0, 1 + rng.random(holders.size) * 44), birth[holders] + 18 * 365)
    start[holders] = np.minimum(s, day0 - 30)
    end = np.where(start == NO_DATE, NO_DATE, OPEN_END).astype(np.int32)
    consumer = np.zeros(n, dtype=bool)
    consumer[rng.permutation(holders)[:scaled(S.SIG_CONSUMERS, size)]] = True
    return start, end, consumer


def _iso(days: np.ndarray) -> np.ndarray:
    """ISO dates as bytes; b"" for NO_DATE and OPEN_END (formatted once per distinct day)."""
    uniq, inverse = np.unique(days, return_inverse=True)
    empty = (uniq == NO_DATE) | (uniq == OPEN_END)
    text = np.where(empty, 0, uniq).astype("datetime64[D]").astype("S10")
    text[empty] = b""
    return text[inverse]


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    uniq, inverse = np.unique(values, return_inverse=True)
    return np.char.zfill(uniq.astype(f"S{width}"), width)[inverse]


def write_beneficiaries(pop: Population, path: Path) -> None:
    """`beneficiaries.csv` (controls.md §2 B), households together, openers first."""
    order = np.lexsort((pop.rang, pop.opener))
    cols = [
        nir_strings(pop.nir, pop.corsica), _digits(pop.key, 2), _digits(pop.rang, 3), _iso(pop.birth),
        _digits(pop.birth_rank, 1), _digits(pop.sex, 1), _digits(pop.quality, 1),
        _iso(pop.rights_start), _iso(pop.rights_end), _iso(pop.ald_start), _iso(pop.ald_end),
        _iso(pop.c2s_start), _iso(pop.c2s_end), _iso(pop.sig_start), _iso(pop.sig_end),
        _iso(pop.death), pop.iban,
    ]
    rows = zip(*(c[order].tolist() for c in cols))
    with open(path, "wb") as fh:
        fh.write(",".join(BENEFICIARY_COLUMNS).encode("ascii") + b"\n")
        fh.write(b"\n".join(b",".join(r) for r in rows))
        fh.write(b"\n")
