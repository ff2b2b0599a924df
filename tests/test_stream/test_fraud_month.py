"""The fraud month pass (stream/fraud_month.py) on hand-made facts and line features: each
indicator's rule, the peer z-scores, and the facts counted from lines."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from fseflow.days import to_days
from fseflow.processors import fraud as fk
from fseflow.stream import fraud, fraud_month as fm

MONTH_START = to_days(dt.date(2026, 3, 1))
MONTH = int(fraud.month_of(np.array([MONTH_START]))[0])


def facts(n: int, **over: object) -> fm.MonthFacts:
    """n unremarkable general practitioners of one département (all values alike), then `over`."""
    base = {f: np.zeros(n, np.int64) for f in fm.MonthFacts._fields}
    base.update(practitioner=np.arange(1, n + 1, dtype=np.int64) + 10_000_000_000,
                ps=np.full(n, 751_000_000, np.int64) + np.arange(n), speciality=np.full(n, 1, np.int16),
                days=np.full(n, 20), lines=np.full(n, 200), invoices=np.full(n, 180), patients=np.full(n, 150),
                patient_days=np.full(n, 180), link_invoices=np.full(n, 180), billed_cents=np.full(n, 500_000),
                base_cents=np.full(n, 500_000), ghosts=np.full(n, 60), first_day=np.full(n, MONTH_START - 400),
                top_share=np.zeros(n), hhi=np.zeros(n))
    rng = np.random.default_rng(0)   # peers differ a little, so their spread is not 0
    base["lines"] = base["lines"] + rng.integers(-20, 21, n)
    base["ghosts"] = base["ghosts"] + rng.integers(-8, 9, n)
    base["majorations"] = rng.integers(0, 10, n)
    for k, v in over.items():
        a = base[k].astype(np.float64 if k in ("top_share", "hhi") else base[k].dtype)
        for i, x in (v.items() if isinstance(v, dict) else enumerate(v)):  # type: ignore[union-attr]
            a[i] = x
        base[k] = a
    return fm.MonthFacts(**base)


def scored(f: fm.MonthFacts, history_start: int = MONTH_START - 800) -> fm.MonthScores:
    return fm.score_months(f, MONTH_START, history_start)


def test_quiet_peers_score_zero_and_a_hyperactive_day_scores_its_level() -> None:
    f = facts(30, max_minutes={0: 1_500 * 100, 1: 800 * 100})
    s = scored(f)
    assert s.score[0] == pytest.approx(fk.weights().weight[fk.F01_IMPOSSIBLE])
    assert fk.INDICATORS[s.top[0, 0]] == "F01_impossible" and s.values[0]["F01_impossible"] == 1500
    assert s.hits[1, fk.F01_AMBER] == 1.0 and s.hits[1, fk.F01_RED] == 0.0
    assert (s.score[2:] == 0).all(), s.score


def test_upcoding_is_found_by_the_majoration_share_against_peers() -> None:
    f = facts(30, majorations={0: 150})
    s = scored(f)
    assert s.hits[0, fk.F05] == 1.0 and s.hits[0, fk.F02 + fk.F02_METRICS.index("majoration_share")] == 1.0
    assert s.score[0] >= fk.weights().alert_threshold
    assert s.values[0]["F02_majoration_share_z"] > 4.5 and (s.score[1:] < 0.5).all()


def test_peer_z_needs_twenty_peers_else_a_wider_group() -> None:
    x = np.r_[np.full(10, 1.0), 5.0, np.linspace(0.9, 1.1, 25)]
    spec = np.r_[np.full(11, 22), np.full(25, 1)].astype(np.int16)   # 22 and 01: both general practice
    z = fm.peer_z(x, spec, np.full(36, 751_000_000, np.int64), 20)
    # 11 practitioners of speciality 22 are too few: they are compared with the physicians' family
    assert z[10] > 3 and np.isfinite(z[:11]).all()
    z_alone = fm.peer_z(x[:11], spec[:11], np.full(11, 751_000_000, np.int64), 20)
    assert np.isnan(z_alone).all()


def test_funnel_z_weighs_the_number_of_patients() -> None:
    n = np.r_[np.full(40, 100), 4, 400]
    x = np.r_[np.random.default_rng(1).binomial(100, 0.4, 40) / 100, 0.75, 0.75]
    z = fm.funnel_z(x, n, np.full(42, 1, np.int16), np.full(42, 751_000_000, np.int64), 20)
    assert z[41] > 3 * z[40] and z[41] > 4   # 300 of 400 is an outlier, 3 of 4 is not


def test_ghost_patients_against_peers() -> None:
    f = facts(40, ghosts={0: 140})     # 140 of 150 patients seen by nobody else
    s = scored(f)
    assert s.hits[0, fk.F10] == 1.0 and fk.INDICATORS[s.top[0, 0]] == "F10"
    assert s.values[0]["F10"] == pytest.approx(140 / 150, abs=1e-3) and (s.hits[1:, fk.F10] == 0).all()


def test_rebilling_auxiliary_lines_per_patient_day_and_identical_acts() -> None:
    nurse = {"speciality": {i: 24 for i in range(30)}}
    f = facts(31, lines={0: 600}, max_identical={1: 6, 30: 6}, **nurse)   # 30: a GP, not an auxiliary
    s = scored(f)
    assert s.hits[0, fk.F06] == 1.0 and s.values[0]["F06_z"] > 4.5
    assert s.hits[1, fk.F06] == 1.0        # > 4 identical acts in a day
    assert s.hits[30, fk.F06] == 0.0       # F06 is for auxiliary acts only


def test_f03_grows_with_repeats_in_the_month() -> None:
    s = scored(facts(3, f03={0: 1, 1: 5, 2: 50}))
    full = fk.weights().alt_threshold[fk.F03]
    assert s.hits[:, fk.F03].tolist() == pytest.approx([1 / full, 5 / full, 1.0])


def test_new_supplier_growth_needs_the_history_to_cover_the_look_back() -> None:
    supplier = {"speciality": {0: 65, 1: 65}, "first_day": {0: MONTH_START - 60, 1: MONTH_START - 60},
                "billed_month": {0: 3_000_000, 1: 3_000_000}, "billed_before": {0: 0, 1: 1_500_000}}
    f = facts(3, **supplier)
    s = scored(f)
    assert s.hits[0, fk.F07] == 1.0     # new, ≥ 20,000 EUR, ≥ 3 × three months earlier
    assert s.hits[1, fk.F07] == 0.0     # 2 × only
    assert s.hits[2, fk.F07] == 0.0     # a GP: F07 is for suppliers, pharmacies, transporters, labs
    young = scored(f, history_start=MONTH_START - 100)   # 3 months of history cannot tell who is new
    assert (young.hits[:, fk.F07] == 0).all()


def test_prescriber_concentration() -> None:
    pr = fraud.Prescriptions(np.array([5, 5, 6, 6, 6], np.int64), np.array([1, 2, 1, 2, 3], np.int64),
                             np.zeros(5, np.int32), np.array([27, 3, 10, 10, 10], np.int64),
                             np.array([900, 100, 100, 100, 100], np.int64))
    inv, top, hhi = fm.concentration(pr, np.array([6, 5, 7], np.int64))
    assert inv.tolist() == [30, 30, 0]
    assert top.tolist() == pytest.approx([1 / 3, 0.9, 0.0]) and hhi.tolist() == pytest.approx([1 / 3, 0.82, 0.0])
    f = facts(3, speciality={0: 65, 1: 65}, presc_invoices={0: 30, 1: 29}, top_share={0: 0.9, 1: 0.9})
    s = scored(f)
    assert s.hits[:, fk.F08].tolist() == [1.0, 0.0, 0.0]   # 29 invoices are too few; a GP is no supplier


def test_popcount() -> None:
    x = np.random.default_rng(3).integers(0, 2**31 - 1, 200).astype(np.int32)
    assert fm.popcount(x).tolist() == [bin(int(v)).count("1") for v in x]


def _lines(rows: list[tuple[int, int, int, str, int, int]]) -> dict[str, np.ndarray]:
    """Line features from (practitioner, beneficiary, care day, act, first line?, billing number)."""
    n = len(rows)
    col = lambda k, dtype: np.array([r[k] for r in rows], dtype)  # noqa: E731
    out = {k: np.zeros(n, dtype) for k, dtype in
           {"quantity": "i4", "coefficient": "i4", "amo_cents": "i8", "at_stake_cents": "i8", "billed_cents": "i8",
            "base_cents": "i8", "paid": "i1", "majoration": "i1", "f03": "i1", "f04": "i1", "tp": "i1",
            "prescriber": "i8", "speciality": "i2"}.items()}
    out.update(practitioner=col(0, "i8"), bene=col(1, "i8"), care_date=col(2, "i4"), act=col(3, "S5"),
               first=col(4, "i1"), ps=col(5, "i8"), liq_date=col(2, "i4") + 3)
    out["speciality"][:] = 24
    out["quantity"][:] = 1
    out["billed_cents"][:] = 1_000
    return out


def test_facts_from_lines_count_patients_days_and_ghosts() -> None:
    d = MONTH_START
    cols = _lines([
        (1, 100, d, "AMI", 1, 9), (1, 100, d, "IFD", 0, 9),    # one invoice, two lines
        (1, 100, d, "AMI", 1, 9),                               # the same care billed again
        (1, 101, d + 1, "AMI", 1, 9), (1, 101, d + 2, "AMI", 1, 9),
        (2, 101, d + 2, "AMI", 1, 8),                           # 101 sees practitioner 2 as well
        (2, 102, d - 40, "AMI", 1, 8),                          # another month
    ])
    f = fm.facts_from_lines(cols, MONTH)
    assert f.practitioner.tolist() == [1, 2]
    assert f.lines.tolist() == [5, 1] and f.invoices.tolist() == [4, 1] and f.days.tolist() == [3, 1]
    assert f.patients.tolist() == [2, 1] and f.patient_days.tolist() == [3, 1]
    assert f.ghosts.tolist() == [1, 0]        # 100 sees nobody else; 101 sees both
    assert f.billed_month.tolist() == [5_000, 1_000] and f.first_day.tolist() == [d + 3, d - 37]
