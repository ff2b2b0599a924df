"""The fraud step: line features of one PS partition → practitioner-day aggregates, and scores.

The fraud step (stream/fraud_feed.py) adds each step's aggregates to PostgreSQL
(`fraud_practitioner_days`, additive upserts in the transaction that also records the consumed
offsets, so a replay adds nothing) and scores the practitioner-days the step touched from their
new totals. Pure functions over numpy arrays; the kernels are processors/fraud.py.

In-stream indicators (fraud.md §3): F01 daily workload, F03 same act same day by two PS (the C45
signal), F04 care after death or during a stay (C18, C46), F05 majoration share (month to
date, the share rule), F06 repeated identical acts (within a step's batch). The peer z-scores
(F02, F10) need every practitioner of a peer group: stream/fraud_month.py scores them.

The beneficiary side (fraud.md §4, `fraud_beneficiary_days`): F03, F04 and F06 per beneficiary
and care date, and F09, boxes of one drug (CIP13) dispensed in the care month so far and the
pharmacies that dispensed it.
"""
from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

import numpy as np

from fseflow.processors import fraud as fk
from fseflow.processors.tables import read_table

#: billing families whose daily workload is meaningful (fraud.md F01: individual practitioners —
#: physicians, dentists, midwives, auxiliaries; not pharmacies, labs, suppliers or transporters)
WORKLOAD_FAMILIES = frozenset({"physician", "dentist", "midwife", "nurse", "physio", "podiatrist", "speech",
                               "orthoptist"})
#: aggregate columns of a practitioner-day, in the order of fraud_practitioner_days
SUMS = ("minutes", "lines", "amo_cents", "at_stake_cents", "majorations", "f03", "f04", "billed_cents",
        "base_cents", "tp_lines", "coef_sum", "coef_lines", "invoices")
#: auxiliaries (fraud.md F06: identical auxiliary acts)
AUXILIARY_FAMILIES = frozenset({"nurse", "physio", "podiatrist", "speech", "orthoptist"})
#: billing families F07 and F08 apply to (fraud.md §3: suppliers, pharmacies, transporters, labs)
SUPPLY_FAMILIES = frozenset({"supplier", "pharmacy", "transporter", "lab"})


class Days(NamedTuple):
    practitioner: np.ndarray   # i8
    day: np.ndarray            # i4 care date
    ps: np.ndarray             # i8 billing number (the smallest of the day)
    speciality: np.ndarray     # i2
    sums: np.ndarray           # (n, len(SUMS)) i8, minutes in hundredths
    max_identical: np.ndarray  # i8: most identical lines (beneficiary, act) of the day in this batch


@cache
def families() -> dict[int, str]:
    """Billing family of each speciality code (specialities.csv)."""
    return {int(r["code"]): r["billing_family"] for r in read_table("specialities") if r["code"].isdigit()}


@cache
def _speciality_flags(wanted: frozenset[str]) -> np.ndarray:
    fam = families()
    out = np.zeros(max(fam) + 1, np.int8)
    for code, family in fam.items():
        out[code] = family in wanted
    return out


def in_families(speciality: np.ndarray, wanted: frozenset[str]) -> np.ndarray:
    """bool per speciality code: its billing family is one of `wanted` (unknown codes: False)."""
    table = _speciality_flags(wanted)
    spec = speciality.astype(np.int64)
    ok = (spec >= 0) & (spec < table.shape[0])
    return ok & (table[np.clip(spec, 0, table.shape[0] - 1)] == 1)


def month_of(day: np.ndarray) -> np.ndarray:
    """int32 month number (months since 1970-01) of int day numbers."""
    return day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int32)


def month_start(month: np.ndarray) -> np.ndarray:
    """int32 day number of the first day of each month number."""
    return month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int32)


def group(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows grouped by equal keys (the first key the most significant), as np.unique of a record
    array would, several times faster: (each group's first row, the group of each row); groups
    are in key order."""
    n = keys[0].shape[0]
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort(keys[::-1])   # stable: a group's first row is its first occurrence
    new = np.zeros(n, bool)
    new[0] = True
    for k in keys:
        sk = k[order]
        new[1:] |= sk[1:] != sk[:-1]
    inv = np.empty(n, np.int64)
    inv[order] = np.cumsum(new) - 1
    return order[new], inv


def act_ids(act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct act codes, the index of each line's code): np.unique of the S5 codes, over
    their bytes as integers rather than as strings."""
    as_int = np.zeros(act.shape[0], "S8")
    as_int[:] = act
    codes, inv = np.unique(as_int.view(">u8"), return_inverse=True)
    return codes.astype(">u8").view("S8").astype("S5"), inv.ravel()


def aggregate(cols: dict[str, np.ndarray]) -> Days:
    """Sum a batch of line features per (practitioner, care date)."""
    n = cols["practitioner"].shape[0]
    if not n:
        z = np.zeros(0, np.int64)
        return Days(z, z.astype(np.int32), z, z.astype(np.int16), np.zeros((0, len(SUMS)), np.int64), z)
    codes, acts = act_ids(cols["act"])
    per_act, per_unit = fk.act_minutes_table([c.decode("ascii", "replace") for c in codes.tolist()])
    eligible = in_families(cols["speciality"], WORKLOAD_FAMILIES)
    minutes = fk.line_minutes(acts.astype(np.int32), cols["quantity"].astype(np.int32),
                              cols["coefficient"].astype(np.int32), eligible.astype(np.int8), per_act, per_unit)
    first, inv = group(cols["practitioner"], cols["care_date"])
    g = first.shape[0]
    sums = np.zeros((g, len(SUMS)), np.int64)
    coef = cols["coefficient"].astype(np.int64)
    for k, values in enumerate((minutes, np.ones(n, np.int64), cols["amo_cents"], cols["at_stake_cents"],
                                cols["majoration"], cols["f03"], cols["f04"], cols["billed_cents"],
                                cols["base_cents"], cols["tp"], coef, coef > 0, cols["first"])):
        np.add.at(sums[:, k], inv, values.astype(np.int64))
    # F06: identical lines of one beneficiary, act and day by the practitioner
    ifirst, iinv = group(inv, cols["bene"], acts)
    max_identical = np.zeros(g, np.int64)
    np.maximum.at(max_identical, inv[ifirst], np.bincount(iinv, minlength=ifirst.shape[0]))
    # the smallest billing number and speciality of the day: the same whatever the batches' order
    ps, spec = cols["ps"][first].astype(np.int64), cols["speciality"][first].astype(np.int16)
    np.minimum.at(ps, inv, cols["ps"].astype(np.int64))
    np.minimum.at(spec, inv, cols["speciality"].astype(np.int16))
    return Days(cols["practitioner"][first].astype(np.int64), cols["care_date"][first].astype(np.int32), ps, spec,
                sums, max_identical)


class Links(NamedTuple):
    """Practitioner × beneficiary × month of a batch: who treated whom (F02 patients, F10)."""
    practitioner: np.ndarray   # i8
    bene: np.ndarray           # i8 beneficiary row
    month: np.ndarray          # i4 month number
    lines: np.ndarray          # i8
    invoices: np.ndarray       # i8
    days: np.ndarray           # i4 bit d-1 set: care on day d of the month


def links(cols: dict[str, np.ndarray]) -> Links:
    """Sum a batch of line features per (practitioner, beneficiary, care month); lines of an
    unknown beneficiary are left out."""
    keep = cols["bene"] >= 0
    p, b, d = cols["practitioner"][keep], cols["bene"][keep], cols["care_date"][keep].astype(np.int32)
    m = month_of(d)
    first, inv = group(p, b, m)
    g = first.shape[0]
    lines, invoices, days = np.zeros(g, np.int64), np.zeros(g, np.int64), np.zeros(g, np.int32)
    np.add.at(lines, inv, 1)
    np.add.at(invoices, inv, cols["first"][keep].astype(np.int64))
    np.bitwise_or.at(days, inv, (np.int32(1) << (d - month_start(m))).astype(np.int32))
    return Links(p[first].astype(np.int64), b[first].astype(np.int64), m[first].astype(np.int32),
                 lines, invoices, days)


class Prescriptions(NamedTuple):
    """Supplier × prescriber × month of a batch (F08), for the SUPPLY_FAMILIES only."""
    ps: np.ndarray             # i8 billing number
    prescriber: np.ndarray     # i8 prescriber RPPS
    month: np.ndarray          # i4 month number
    invoices: np.ndarray       # i8
    billed_cents: np.ndarray   # i8


def prescriptions(cols: dict[str, np.ndarray]) -> Prescriptions:
    """Sum a batch of line features per (billing number, prescriber, care month), over the
    prescribed lines of suppliers, pharmacies, transporters and labs."""
    keep = (cols["prescriber"] > 0) & in_families(cols["speciality"], SUPPLY_FAMILIES)
    s, p, m = cols["ps"][keep], cols["prescriber"][keep], month_of(cols["care_date"][keep])
    first, inv = group(s, p, m)
    invoices, billed = np.zeros(first.shape[0], np.int64), np.zeros(first.shape[0], np.int64)
    np.add.at(invoices, inv, cols["first"][keep].astype(np.int64))
    np.add.at(billed, inv, cols["billed_cents"][keep].astype(np.int64))
    return Prescriptions(s[first].astype(np.int64), p[first].astype(np.int64), m[first].astype(np.int32),
                         invoices, billed)


def first_billed(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(billing numbers, i4 earliest liquidation date of each) of a batch (F07's first billing:
    when the PS first billed the fund, not its oldest care date)."""
    ps, inv = np.unique(cols["ps"], return_inverse=True)
    first = np.full(ps.shape[0], np.iinfo(np.int32).max, np.int32)
    np.minimum.at(first, inv.ravel(), cols["liq_date"].astype(np.int32))
    return ps.astype(np.int64), first


class BeneDays(NamedTuple):
    """Beneficiary × care date of a batch: the beneficiary side of the score (fraud.md §4)."""
    bene: np.ndarray           # i8 beneficiary row (pseudonymous)
    day: np.ndarray            # i4 care date
    lines: np.ndarray          # i8
    at_stake_cents: np.ndarray  # i8
    f03: np.ndarray            # i8 lines with C45 (same act, same day, another PS)
    f04: np.ndarray            # i8 lines after death (C18) or during a stay (C46)
    max_identical: np.ndarray  # i8 F06: most identical auxiliary lines (practitioner, act) in this batch


def bene_days(cols: dict[str, np.ndarray]) -> BeneDays:
    """Sum a batch of line features per (beneficiary, care date); unknown beneficiaries left out."""
    keep = cols["bene"] >= 0
    b, d = cols["bene"][keep].astype(np.int64), cols["care_date"][keep].astype(np.int32)
    first, inv = group(b, d)
    g = first.shape[0]
    sums = np.zeros((4, g), np.int64)
    sums[0] = np.bincount(inv.ravel(), minlength=g)
    for k, name in enumerate(("at_stake_cents", "f03", "f04"), start=1):
        np.add.at(sums[k], inv, cols[name][keep].astype(np.int64))
    # F06 (fraud.md: beneficiary × practitioner × act × day, auxiliary acts)
    aux = in_families(cols["speciality"][keep], AUXILIARY_FAMILIES)
    _, acts = act_ids(cols["act"][keep][aux])
    ifirst, iinv = group(inv[aux], cols["practitioner"][keep][aux], acts)
    max_identical = np.zeros(g, np.int64)
    np.maximum.at(max_identical, inv[aux][ifirst], np.bincount(iinv, minlength=ifirst.shape[0]))
    return BeneDays(b[first], d[first], *sums, max_identical)


class Dispensings(NamedTuple):
    """Boxes of a drug dispensed to a beneficiary by a pharmacy on a day (F09)."""
    bene: np.ndarray           # i8
    cip13: np.ndarray          # i8
    day: np.ndarray            # i4 dispensing (care) date
    ps: np.ndarray             # i8 the pharmacy's billing number
    boxes: np.ndarray          # i8


def dispensings(cols: dict[str, np.ndarray]) -> Dispensings:
    """Sum the pharmacy lines of a batch per (beneficiary, CIP13, day, pharmacy)."""
    keep = (cols["cip13"] > 0) & (cols["bene"] >= 0)
    b, c = cols["bene"][keep].astype(np.int64), cols["cip13"][keep].astype(np.int64)
    d, p = cols["care_date"][keep].astype(np.int32), cols["ps"][keep].astype(np.int64)
    first, inv = group(b, c, d, p)
    boxes = np.zeros(first.shape[0], np.int64)
    np.add.at(boxes, inv, cols["quantity"][keep].astype(np.int64))
    return Dispensings(b[first], c[first], d[first], p[first], boxes)


class StepSums(NamedTuple):
    """What one fraud step adds to the running sums."""
    days: Days
    links: Links
    prescriptions: Prescriptions
    billers: tuple[np.ndarray, np.ndarray]
    bene_days: BeneDays
    dispensings: Dispensings


def step_sums(cols: dict[str, np.ndarray]) -> StepSums:
    return StepSums(aggregate(cols), links(cols), prescriptions(cols), first_billed(cols), bene_days(cols),
                    dispensings(cols))


class Scored(NamedTuple):
    score: np.ndarray          # f8 in [0, 1]
    top: np.ndarray            # (n, 3) i8 indicator columns of processors/fraud.py, −1 none
    hits: np.ndarray           # (n, N_INDICATORS) f8 strengths


def score_days(minutes: np.ndarray, f03: np.ndarray, f04: np.ndarray, max_identical: np.ndarray,
               month_lines: np.ndarray, month_majorations: np.ndarray, speciality: np.ndarray) -> Scored:
    """Scores of practitioner-days from their running totals (minutes in hundredths)."""
    auxiliary = in_families(speciality, AUXILIARY_FAMILIES)
    w = fk.weights()
    n = minutes.shape[0]
    hits = np.zeros((n, fk.N_INDICATORS), np.float64)
    level = fk.workload_level(minutes.astype(np.int64))
    for lvl, col in enumerate(fk.LEVEL_INDICATOR):
        if col >= 0:
            hits[level == lvl, col] = 1.0
    hits[f03 > 0, fk.F03] = 1.0
    hits[f04 > 0, fk.F04] = 1.0
    hits[passes(max_identical, w.op[fk.F06], w.threshold[fk.F06]) & auxiliary, fk.F06] = 1.0
    share = np.divide(month_majorations, month_lines, out=np.zeros(n), where=month_lines > 0)
    f05 = passes(share, w.op[fk.F05], w.threshold[fk.F05]) & (month_lines >= w.min_count[fk.F05])
    hits[f05, fk.F05] = 1.0
    s, top = fk.score(hits)
    return Scored(s, top, hits)


def score_bene_days(f03: np.ndarray, f04: np.ndarray, max_identical: np.ndarray, boxes: np.ndarray,
                    pharmacies: np.ndarray) -> Scored:
    """Scores of beneficiary-days from their running totals: F03, F04 and F06 rule hits, and F09
    from the care month so far of the drugs dispensed that day (`boxes`: the most boxes of one
    CIP13, `pharmacies`: the most pharmacies that dispensed one CIP13)."""
    w = fk.weights()
    hits = np.zeros((f03.shape[0], fk.N_INDICATORS), np.float64)
    hits[f03 > 0, fk.F03] = 1.0
    hits[f04 > 0, fk.F04] = 1.0
    hits[passes(max_identical, w.op[fk.F06], w.threshold[fk.F06]), fk.F06] = 1.0
    f09 = passes(boxes, w.op[fk.F09], w.threshold[fk.F09]) | passes(pharmacies, w.alt_op[fk.F09],
                                                                      w.alt_threshold[fk.F09])
    hits[f09, fk.F09] = 1.0
    s, top = fk.score(hits)
    return Scored(s, top, hits)


def passes(x: np.ndarray, op: str, threshold: float) -> np.ndarray:
    """x `op` threshold, for a fraud_weights.csv comparison (">" or ">=")."""
    return x > threshold if op == ">" else x >= threshold


def explain(top: np.ndarray, hits: np.ndarray, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The top contributions of one scored row, named, with their weight × strength, their value
    and, for a z-scored indicator, its z against peers (`values["<indicator>_z"]`)."""
    w = fk.weights()
    out = []
    for c in top.tolist():
        if c < 0:
            continue
        name = fk.INDICATORS[c]
        item: dict[str, Any] = {"indicator": name, "contribution": round(float(w.weight[c] * hits[c]), 3)}
        if name in values:
            item["value"] = values[name]
        if f"{name}_z" in values:
            item["z"] = values[f"{name}_z"]
        out.append(item)
    return out
