"""Month-level fraud scoring: each practitioner's month against its peers (fraud.md §3–§4).

The fraud step adds every batch to running sums (practitioner-days, practitioner × beneficiary
× month links, supplier × prescriber × month); a practitioner-month's indicators need all of
its peers' sums, which span every partition, so they are scored by a periodic pass over those
sums (`infra/fraud_store.score_month`), not per batch. This module is that pass's pure part:
`MonthFacts` holds one row per practitioner of the month, built either from PostgreSQL
(`fraud_store.month_facts`) or straight from line features (`facts_from_lines`, the offline
twin the evaluation uses and the stream tests compare with); `score_months` turns the facts
into hits, scores and explanations with the kernels of processors/fraud.py.

Indicators at this grain: F01 (the month's worst day), F02 (eight metrics, z against
speciality × département × month, else national speciality × month), F03 (repeats in the
month), F04, F05 (share rule, or z of the majoration share), F06 (the day rule, or re-billed
patient-days in the month), F07 (new supplier, fast growth), F08 (prescriber concentration),
F10 (ghost patients). Only values above the peers count: a practitioner billing less than its
peers is not a fraud signal.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from fseflow.processors import fraud as fk
from fseflow.stream import fraud

#: first two digits of a 9-digit billing number: its département (fraud.md §3)
DEPT_DIVISOR = 10 ** 7


class MonthFacts(NamedTuple):
    """One row per practitioner active in the month (sorted by practitioner)."""
    practitioner: np.ndarray    # i8
    ps: np.ndarray              # i8 billing number of its first day in the month
    speciality: np.ndarray      # i2
    days: np.ndarray            # i8 active care days
    lines: np.ndarray           # i8
    invoices: np.ndarray        # i8
    amo_cents: np.ndarray       # i8
    at_stake_cents: np.ndarray  # i8
    billed_cents: np.ndarray    # i8
    base_cents: np.ndarray      # i8
    tp_lines: np.ndarray        # i8
    majorations: np.ndarray     # i8
    coef_sum: np.ndarray        # i8 hundredths
    coef_lines: np.ndarray      # i8
    f03: np.ndarray             # i8 lines with C45 in the month
    f04: np.ndarray             # i8 lines after death or inside a stay
    max_minutes: np.ndarray     # i8 centiminutes of the month's heaviest day
    max_identical: np.ndarray   # i8 most identical lines in one day (one batch)
    patients: np.ndarray        # i8 distinct beneficiaries
    patient_days: np.ndarray    # i8 distinct (beneficiary, day)
    link_invoices: np.ndarray   # i8 invoices of known beneficiaries
    ghosts: np.ndarray          # i8 patients with no other practitioner in the look-back
    # F07 and F08 are per billing number, repeated on the practitioners billing under it
    first_day: np.ndarray       # i4 first liquidation date of the billing number
    billed_month: np.ndarray    # i8 the billing number's billed cents in the month
    billed_before: np.ndarray   # i8 ... in the month 3 months earlier
    presc_invoices: np.ndarray  # i8 prescribed invoices (supply families)
    top_share: np.ndarray       # f8 share of the billed amount from the top prescriber
    hhi: np.ndarray             # f8 Herfindahl index of the prescribers' shares


def metrics(f: MonthFacts) -> dict[str, np.ndarray]:
    """float64 per practitioner: the F02 metrics (processors/fraud.F02_METRICS), lines per
    patient-day (F06's month form: care billed again adds lines, not patient-days) and the
    ghost-patient share (F10); NaN where a metric does not apply."""
    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a.astype(np.float64), b, out=np.full(a.shape[0], np.nan), where=b > 0)

    transport = fraud.in_families(f.speciality, frozenset({"transporter"}))
    return {
        "acts_per_working_day": ratio(f.lines, f.days),
        "patients_per_day": ratio(f.patient_days, f.days),
        "eur_per_patient": ratio(f.billed_cents, f.patients) / 100,
        "majoration_share": ratio(f.majorations, f.lines),
        "tiers_payant_share": ratio(f.tp_lines, f.lines),
        "coefficient_per_act": ratio(f.coef_sum, f.coef_lines) / 100,
        "excess_share": ratio(f.billed_cents - f.base_cents, f.billed_cents),
        "eur_per_trip": np.where(transport, ratio(f.billed_cents, f.invoices) / 100, np.nan),
        "lines_per_patient_day": ratio(f.lines, f.patient_days),
        "ghost_share": ratio(f.ghosts, f.patients),
    }


def peer_z(x: np.ndarray, speciality: np.ndarray, ps: np.ndarray, min_peers: int) -> np.ndarray:
    """z of each practitioner against speciality × département (the facts are one month's); where
    that group has fewer than `min_peers` values, against the national speciality, else against
    its billing family (GP specialists 22/23 with general practice 01, for instance)."""
    out = np.full(x.shape[0], np.nan)
    for groups in _groups(speciality, ps):   # widest first: each narrower group big enough wins
        g = int(groups.max(initial=-1)) + 1
        z = fk.z_scores(x, groups, fk.peer_stats(groups, x, g), min_peers)
        out = np.where(np.isnan(z), out, z)
    return out


def _groups(speciality: np.ndarray, ps: np.ndarray) -> tuple[np.ndarray, ...]:
    """Dense peer-group ids, widest first: billing family, speciality, speciality × département."""
    spec = speciality.astype(np.int64)
    fam = fraud.families()
    names = sorted(set(fam.values()))
    family = np.array([names.index(fam[c]) if c in fam else -1 for c in spec.tolist()], np.int64).reshape(spec.shape)
    out = []
    for keys in ((family,), (spec,), (spec, ps.astype(np.int64) // DEPT_DIVISOR)):
        out.append(fraud.group(*keys)[1])
    return tuple(out)


def funnel_z(x: np.ndarray, n: np.ndarray, speciality: np.ndarray, ps: np.ndarray, min_peers: int) -> np.ndarray:
    """z of a share x (out of n) against its peers, as a funnel plot draws it: the spread expected
    of a practitioner with n patients, p̄(1 − p̄)/n, plus the peers' own spread beyond it (τ²).
    A share of 3 patients out of 4 is not the outlier 300 out of 400 is. NaN where x is."""
    out = np.full(x.shape[0], np.nan)
    # national speciality, then speciality × département where big enough: a family mixes
    # practices whose patients see other practitioners at different rates
    for groups in _groups(speciality, ps)[1:]:
        g = int(groups.max(initial=-1)) + 1
        ok = np.isfinite(x) & (n > 0)
        st = fk.peer_stats(np.where(ok, groups, -1), np.where(ok, x, np.nan), g)
        mean = st.mean[groups]
        binom = np.zeros(g)
        np.add.at(binom, groups[ok], mean[ok] * (1 - mean[ok]) / n[ok])
        tau2 = np.maximum(0.0, st.variance() - binom / np.maximum(st.count, 1))[groups]
        sd = np.sqrt(mean * (1 - mean) / np.maximum(n, 1) + tau2)
        use = ok & (st.count[groups] >= min_peers) & (sd > 0)
        out[use] = (x[use] - mean[use]) / sd[use]
    return out


class MonthScores(NamedTuple):
    score: np.ndarray          # f8 [0, 1]
    top: np.ndarray            # (n, 3) i8 indicator columns
    hits: np.ndarray           # (n, N_INDICATORS) f8
    values: list[dict[str, Any]]  # per practitioner: the value of each indicator that hit


def score_months(f: MonthFacts, month_start_day: int, history_start_day: int) -> MonthScores:
    """Hits, scores and top indicators of every practitioner of one month.

    `month_start_day` is the month's first day (day number), `history_start_day` the first
    liquidation date the fraud state holds: F07 is only evaluated once it covers F07's months.
    """
    w = fk.weights()
    n = f.practitioner.shape[0]
    m = metrics(f)
    hits = np.zeros((n, fk.N_INDICATORS), np.float64)
    vals: dict[str, np.ndarray] = {}
    # F01: the month's worst day
    level = fk.workload_level(f.max_minutes.astype(np.int64))
    for lvl, col in enumerate(fk.LEVEL_INDICATOR):
        if col >= 0:
            hits[level == lvl, col] = 1.0
    vals["F01"] = f.max_minutes / 100
    # F02: one-sided z of each metric, practitioners with at least min_volume lines
    volume_ok = f.lines >= w.min_volume[fk.F02]
    z = {}
    for k, name in enumerate(fk.F02_METRICS):
        x = np.where(volume_ok, m[name], np.nan)
        z[name] = peer_z(x, f.speciality, f.ps, int(w.min_count[fk.F02]))
        hits[:, fk.F02 + k] = fk.z_strength(np.maximum(np.nan_to_num(z[name], nan=0.0), 0.0),
                                            float(w.threshold[fk.F02]))
        vals[f"F02_{name}"] = np.round(m[name], 3)
        vals[f"F02_{name}_z"] = np.round(z[name], 1)
    # F03: C45 hits, full strength at alt_threshold repeats in the month
    hits[:, fk.F03] = np.minimum(1.0, f.f03 / w.alt_threshold[fk.F03])
    vals["F03"] = f.f03
    hits[f.f04 > 0, fk.F04] = 1.0
    vals["F04"] = f.f04
    # F05: the share rule, or the share's z against peers
    share = m["majoration_share"]
    rule = fraud.passes(np.nan_to_num(share), w.op[fk.F05], w.threshold[fk.F05]) & (f.lines >= w.min_count[fk.F05])
    z05 = fk.z_strength(np.maximum(np.nan_to_num(z["majoration_share"], nan=0.0), 0.0), float(w.alt_threshold[fk.F05]))
    hits[:, fk.F05] = np.where(rule, 1.0, z05)
    vals["F05"] = np.round(share, 3)
    # F06 (auxiliaries): > threshold identical lines in a day, or lines per patient-day
    # against peers (the same care billed again under new invoice numbers in later files)
    aux = fraud.in_families(f.speciality, fraud.AUXILIARY_FAMILIES)
    lpd = np.where(aux & (f.lines >= w.min_volume[fk.F06]), m["lines_per_patient_day"], np.nan)
    z06 = peer_z(lpd, f.speciality, f.ps, int(w.min_count[fk.F02]))
    day_rule = aux & (f.max_identical > w.threshold[fk.F06])
    hits[:, fk.F06] = np.where(day_rule, 1.0, fk.z_strength(np.maximum(np.nan_to_num(z06, nan=0.0), 0.0),
                                                             float(w.alt_threshold[fk.F06])))
    vals["F06"] = np.round(m["lines_per_patient_day"], 2)
    vals["F06_z"] = np.round(z06, 1)
    # F07: new billing number growing fast. "First billing less than `months` months ago" is
    # only known once the history covers those months: before that, F07 is not evaluated.
    months_back = int(w.months[fk.F07])
    m0 = np.datetime64(int(month_start_day), "D").astype("datetime64[M]")
    since = int((m0 - np.timedelta64(months_back, "M")).astype("datetime64[D]").astype(np.int64))
    evaluable = history_start_day <= since
    new = f.first_day > since
    supply = fraud.in_families(f.speciality, fraud.SUPPLY_FAMILIES)
    f07 = evaluable & supply & new & (f.billed_month >= w.threshold[fk.F07] * f.billed_before) & (
        f.billed_month >= w.alt_threshold[fk.F07])
    hits[f07, fk.F07] = 1.0
    vals["F07"] = np.round(f.billed_month / 100, 2)
    # F08: one prescriber behind most of a supplier's billing
    f08 = supply & (f.presc_invoices >= w.min_count[fk.F08]) & (
        fraud.passes(f.top_share, w.op[fk.F08], w.threshold[fk.F08]) | fraud.passes(f.hhi, w.alt_op[fk.F08], w.alt_threshold[fk.F08]))
    hits[f08, fk.F08] = 1.0
    vals["F08"] = np.round(f.top_share, 3)
    # F10: ghost-patient share against peers
    ghost = np.where(f.patients >= w.min_volume[fk.F10], m["ghost_share"], np.nan)
    z10 = funnel_z(ghost, f.patients, f.speciality, f.ps, int(w.min_count[fk.F10]))
    hits[:, fk.F10] = fk.z_strength(np.maximum(np.nan_to_num(z10, nan=0.0), 0.0), float(w.threshold[fk.F10]))
    vals["F10"] = np.round(m["ghost_share"], 3)
    vals["F10_z"] = np.round(z10, 1)
    s, top = fk.score(hits)
    values = [_row_values(vals, i) for i in range(n)]
    return MonthScores(s, top, hits, values)


def _row_values(vals: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in vals.items():
        x = v[i].item()
        out[k] = None if isinstance(x, float) and np.isnan(x) else x
    out["F01_impossible"] = out["F01_red"] = out["F01_amber"] = out.pop("F01")
    return out


def facts_from_lines(cols: dict[str, np.ndarray], month: int, lookback_months: int | None = None) -> MonthFacts:
    """The facts of month number `month` from line features (every line the stream would have
    summed), as `fraud_store.month_facts` reads them from the running sums."""
    w = fk.weights()
    back = int(w.months[fk.F10]) if lookback_months is None else lookback_months
    all_days = fraud.aggregate(cols)
    in_month = fraud.month_of(all_days.day) == month
    days = fraud.Days(*(a[in_month] for a in all_days))
    prac, first_row, inv = np.unique(days.practitioner, return_index=True, return_inverse=True)
    # days are sorted by (practitioner, day): the first row of a practitioner is its first day
    g = prac.shape[0]
    inv = inv.ravel()

    def per(values: np.ndarray, how: str = "sum") -> np.ndarray:
        out = np.zeros(g, np.int64)
        (np.add if how == "sum" else np.maximum).at(out, inv, values.astype(np.int64))
        return out

    col = {k: per(days.sums[:, i]) for i, k in enumerate(fraud.SUMS)}
    m_all = fraud.month_of(cols["care_date"])
    month_cols = {k: v[m_all == month] for k, v in cols.items()}
    lk = fraud.links(month_cols)
    li = np.searchsorted(prac, lk.practitioner)
    patients, pdays, linv = np.zeros(g, np.int64), np.zeros(g, np.int64), np.zeros(g, np.int64)
    np.add.at(patients, li, 1)
    np.add.at(pdays, li, popcount(lk.days))
    np.add.at(linv, li, lk.invoices)
    # ghosts: beneficiaries with no other practitioner in the look-back months
    window = (m_all > month - back) & (m_all <= month) & (cols["bene"] >= 0)
    w_bene = cols["bene"][window]
    pair_first, _ = fraud.group(w_bene, cols["practitioner"][window])
    bene_ids, n_prac = np.unique(w_bene[pair_first], return_counts=True)
    lonely = n_prac[np.searchsorted(bene_ids, lk.bene)] == 1
    ghosts = np.zeros(g, np.int64)
    np.add.at(ghosts, li, lonely.astype(np.int64))
    # F07 per billing number, over the whole history of practitioner-days
    ps = days.ps[first_row]
    billers, bi = np.unique(all_days.ps, return_inverse=True)
    bi = bi.ravel()
    fb_ps, fb_day = fraud.first_billed(cols)
    first_day = fb_day[np.searchsorted(fb_ps, billers)]
    d_month = fraud.month_of(all_days.day)
    billed = all_days.sums[:, fraud.SUMS.index("billed_cents")]
    billed_m, billed_b = np.zeros(billers.shape[0], np.int64), np.zeros(billers.shape[0], np.int64)
    np.add.at(billed_m, bi, np.where(d_month == month, billed, 0))
    np.add.at(billed_b, bi, np.where(d_month == month - 3, billed, 0))
    presc_inv, top_share, hhi = concentration(fraud.prescriptions(month_cols), ps)
    at = np.searchsorted(billers, ps)
    return MonthFacts(
        prac.astype(np.int64), ps.astype(np.int64), days.speciality[first_row].astype(np.int16),
        per(np.ones(days.day.shape[0])), col["lines"], col["invoices"], col["amo_cents"], col["at_stake_cents"],
        col["billed_cents"], col["base_cents"], col["tp_lines"], col["majorations"], col["coef_sum"],
        col["coef_lines"], col["f03"], col["f04"], per(days.sums[:, 0], "max"), per(days.max_identical, "max"),
        patients, pdays, linv, ghosts, first_day[at].astype(np.int32), billed_m[at], billed_b[at], presc_inv,
        top_share, hhi)


def popcount(x: np.ndarray) -> np.ndarray:
    """int64 set bits of each non-negative int32."""
    v = x.astype(np.uint32)
    out = np.zeros(v.shape[0], np.int64)
    for _ in range(32):
        out += (v & 1).astype(np.int64)
        v >>= np.uint32(1)
    return out


def concentration(pr: fraud.Prescriptions, ps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per billing number in `ps`: prescribed invoices, the top prescriber's share of the billed
    amount and the Herfindahl index of the shares (0 when it has no prescribed billing)."""
    n = ps.shape[0]
    invoices, top, hhi = np.zeros(n, np.int64), np.zeros(n), np.zeros(n)
    if not pr.ps.shape[0]:
        return invoices, top, hhi
    sup, inv = np.unique(pr.ps, return_inverse=True)
    total = np.zeros(sup.shape[0], np.int64)
    np.add.at(total, inv, pr.billed_cents)
    share = np.divide(pr.billed_cents, total[inv], out=np.zeros(inv.shape[0]), where=total[inv] > 0)
    s_inv, s_top, s_hhi = np.zeros(sup.shape[0], np.int64), np.zeros(sup.shape[0]), np.zeros(sup.shape[0])
    np.add.at(s_inv, inv, pr.invoices)
    np.maximum.at(s_top, inv, share)
    np.add.at(s_hhi, inv, share * share)
    at = np.clip(np.searchsorted(sup, ps), 0, sup.shape[0] - 1)
    found = sup[at] == ps
    return np.where(found, s_inv[at], 0), np.where(found, s_top[at], 0.0), np.where(found, s_hhi[at], 0.0)
