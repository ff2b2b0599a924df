"""The fraud step: line features of one PS partition → practitioner-day aggregates, and scores.

The fraud agent (stream/app.py) adds each step's aggregates to PostgreSQL
(`fraud_practitioner_days`, additive upserts in the transaction that also records the consumed
offsets, so a replay adds nothing) and scores the practitioner-days the step touched from their
new totals. Pure functions over numpy arrays; the kernels are processors/fraud.py.

In-stream indicators (fraud.md §3): F01 daily workload, F03 same act same day by two PS (the C45
signal), F04 care after death or during a stay (C18, C46), F05 majoration share (month to
date, the share rule), F06 repeated identical acts (within a step's batch). The peer z-scores
(F02, F10) need every practitioner of a peer group, so they are not computed here.
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
SUMS = ("minutes", "lines", "amo_cents", "at_stake_cents", "majorations", "f03", "f04")


class Days(NamedTuple):
    practitioner: np.ndarray   # i8
    day: np.ndarray            # i4 care date
    ps: np.ndarray             # i8 billing number (the first seen)
    speciality: np.ndarray     # i2
    sums: np.ndarray           # (n, len(SUMS)) i8, minutes in hundredths
    max_identical: np.ndarray  # i8: most identical lines (beneficiary, act) of the day in this batch


@cache
def _workload_specialities() -> np.ndarray:
    families = {int(r["code"]): r["billing_family"] for r in read_table("specialities") if r["code"].isdigit()}
    out = np.zeros(max(families) + 1, np.int8)
    for code, family in families.items():
        out[code] = family in WORKLOAD_FAMILIES
    return out


def aggregate(cols: dict[str, np.ndarray]) -> Days:
    """Sum a batch of line features per (practitioner, care date)."""
    n = cols["practitioner"].shape[0]
    if not n:
        z = np.zeros(0, np.int64)
        return Days(z, z.astype(np.int32), z, z.astype(np.int16), np.zeros((0, len(SUMS)), np.int64), z)
    codes, act_ids = np.unique(cols["act"], return_inverse=True)
    per_act, per_unit = fk.act_minutes_table([c.decode("ascii", "replace") for c in codes.tolist()])
    spec = cols["speciality"].astype(np.int64)
    table = _workload_specialities()
    eligible = np.where((spec >= 0) & (spec < table.shape[0]), table[np.clip(spec, 0, table.shape[0] - 1)], 0)
    minutes = fk.line_minutes(act_ids.astype(np.int32), cols["quantity"].astype(np.int32),
                              cols["coefficient"].astype(np.int32), eligible.astype(np.int8), per_act, per_unit)
    keys = np.rec.fromarrays([cols["practitioner"], cols["care_date"]], names="p,d")
    uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    g = uniq.shape[0]
    sums = np.zeros((g, len(SUMS)), np.int64)
    for k, values in enumerate((minutes, np.ones(n, np.int64), cols["amo_cents"], cols["at_stake_cents"],
                                cols["majoration"], cols["f03"], cols["f04"])):
        np.add.at(sums[:, k], inv, values.astype(np.int64))
    # F06: identical lines of one beneficiary, act and day by the practitioner
    ident = np.rec.fromarrays([inv, cols["bene"], act_ids], names="g,b,a")
    iu, icount = np.unique(ident, return_counts=True)
    max_identical = np.zeros(g, np.int64)
    np.maximum.at(max_identical, iu["g"], icount)
    return Days(uniq["p"].astype(np.int64), uniq["d"].astype(np.int32), cols["ps"][first].astype(np.int64),
                cols["speciality"][first].astype(np.int16), sums, max_identical)


class Scored(NamedTuple):
    score: np.ndarray          # f8 in [0, 1]
    top: np.ndarray            # (n, 3) i8 indicator columns of processors/fraud.py, −1 none
    hits: np.ndarray           # (n, N_INDICATORS) f8 strengths


def score_days(minutes: np.ndarray, f03: np.ndarray, f04: np.ndarray, max_identical: np.ndarray,
               month_lines: np.ndarray, month_majorations: np.ndarray) -> Scored:
    """Scores of practitioner-days from their running totals (minutes in hundredths)."""
    w = fk.weights()
    n = minutes.shape[0]
    hits = np.zeros((n, fk.N_INDICATORS), np.float64)
    level = fk.workload_level(minutes.astype(np.int64))
    for lvl, col in enumerate(fk.LEVEL_INDICATOR):
        if col >= 0:
            hits[level == lvl, col] = 1.0
    hits[f03 > 0, fk.F03] = 1.0
    hits[f04 > 0, fk.F04] = 1.0
    hits[_passes(max_identical, w.op[fk.F06], w.threshold[fk.F06]), fk.F06] = 1.0
    share = np.divide(month_majorations, month_lines, out=np.zeros(n), where=month_lines > 0)
    f05 = _passes(share, w.op[fk.F05], w.threshold[fk.F05]) & (month_lines >= w.min_count[fk.F05])
    hits[f05, fk.F05] = 1.0
    s, top = fk.score(hits)
    return Scored(s, top, hits)


def _passes(x: np.ndarray, op: str, threshold: float) -> np.ndarray:
    return x > threshold if op == ">" else x >= threshold


def explain(top: np.ndarray, hits: np.ndarray, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The top contributions of one scored row, named, with their weight × strength."""
    w = fk.weights()
    return [{"indicator": fk.INDICATORS[c], "contribution": round(float(w.weight[c] * hits[c]), 3),
             **({"value": values[fk.INDICATORS[c]]} if fk.INDICATORS[c] in values else {})}
            for c in top.tolist() if c >= 0]
