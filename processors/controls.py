"""Control kernels (controls.md C14–C47): invoice controls as a bitmask, line controls as one
reason per line. Pure functions over the claim columns, the reference arrays, the directory
and the counter state; they read the state and never write it (the driver does).
Twin: `twin.Twin._invoice_controls` and the first loop of `twin.Twin._lines`.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
from numba import njit

from fseflow.config import NJIT_INLINE
from fseflow.days import NO_DATE, to_days
from fseflow.processors import _hashtable as ht
from fseflow.processors import rules
from fseflow.processors import state as st
from fseflow.processors._civil import add_months
from fseflow.processors._lookup import holds, nir_key_ok, param
from fseflow.processors.directory import PERIODS, PS_BY_PAIR, PS_BY_RPPS, PS_OWN
from fseflow.processors.reference import (
    ACT_ONCE_DAY, ACT_PREANALYTIC, ACT_KM, ACT_SINGLE_QTY, CHECK_ALD, CHECK_MATERNITY, CHECK_NONE,
    CHECK_SIG, EXO_CHECK, EXO_EXONERATING, EXO_KNOWN, EXONERATING_NO, LK_PRESC, LK_UNIT,
    MAX_CODE, NAT_ACCEPTED, NAT_FAMILY, NAT_IS_AT, NAT_IS_MA, NAT_IS_SG, P,
)
from fseflow.processors.rules import R

RIGHTS, ALD, C2S, SIG = (PERIODS.index(p) for p in ("rights", "ald", "c2s", "sig"))
ESTABLISHMENT = rules.FAMILIES.index(rules.HOSPITAL_LINE_FAMILY)
ESTABLISHMENT_BIT = 1 << ESTABLISHMENT
BIT = {name: np.int64(1) << np.int64(i) for name, i in R.items()}
B_C14, B_C15, B_C16, B_C17, B_C18, B_C19, B_C20, B_C21, B_C22, B_C22S, B_C23, B_C24S, B_C25, B_C26, \
    B_C27, B_C28, B_C29, B_C31S, B_C32A, B_C32B, B_C33 = (BIT[n] for n in (
        "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21", "C22", "C22S", "C23", "C24S", "C25", "C26",
        "C27", "C28", "C29", "C31S", "C32A", "C32B", "C33"))
R_C30, R_C34, R_C35, R_C36, R_C37, R_C38, R_C39, R_C42 = (R[n] for n in (
    "C30", "C34", "C35", "C36", "C37", "C38", "C39", "C42"))
INVOICE_REJECT_MASK = np.int64(sum(int(BIT[r.name]) for r in rules.REASONS if r.level == "invoice" and r.kind == "reject"))
PREANALYTIC_COEF = rules.PREANALYTIC_COEF_HUNDREDTHS

# kernel ids of the parameters read here (numba takes ints, not the dict)
P_EXO55_FROM_MONTHS = P["EXO55_FROM_MONTHS"]
P_INVOICE_NUMBER_UNIQUENESS = P["INVOICE_NUMBER_UNIQUENESS"]
P_MATERNITY_WINDOW_MONTHS = P["MATERNITY_WINDOW_MONTHS"]
P_PRESCRIPTION_MAX_AGE = P["PRESCRIPTION_MAX_AGE"]
P_TRANSMISSION_DELAY_INSURED_PAID = P["TRANSMISSION_DELAY_INSURED_PAID"]
P_TRANSMISSION_DELAY_TIERS_PAYANT = P["TRANSMISSION_DELAY_TIERS_PAYANT"]


#: first day whose two-digit year could also be read a century earlier (b2-profile.md §2: a birth
#: date is 20AA when AA <= the file's creation year, so a person over 100 reads 100 years young)
Y2K = to_days(dt.date(2000, 1, 1))


@njit(**NJIT_INLINE)
def _find_at(ic, i: int, bene, birth: int) -> int:
    idx = bene.index
    bk = np.int64(birth) * 10 + ic.birth_rank[i]
    row = ht.get(idx.slots, ic.nir_id[i], bk, ic.quality[i], -1)
    if row < 0 and ic.nii_present[i] == 1 and ic.nii_id[i] >= 0:
        row = ht.get(idx.slots, ic.nii_id[i], bk, 1, -1)
    return row


@njit(**NJIT_INLINE)
def find_beneficiary(ic, i: int, bene) -> int:
    """C16: (nir_opener, birth, rank, quality), else (NII, birth, rank, quality 1); -1 if none.
    A birth date read in the 2000s that matches no one is tried a century earlier: the
    directory's full birth date tells a centenarian from a baby (profile choice)."""
    birth = ic.birth_date[i]
    row = _find_at(ic, i, bene, birth)
    if row < 0 and birth != NO_DATE and birth >= Y2K:
        row = _find_at(ic, i, bene, add_months(birth, -1200))
    return row


@njit(**NJIT_INLINE)
def c14_fails(ic, lc, i: int, ra) -> bool:
    """C14: unreadable fields (decoder), and values outside their domain."""
    if ic.c14_line[i] >= 0 or ic.nature_operation[i] != 1 or ic.invoice_number[i] == 0:
        return True
    if not (1 <= ic.quality[i] <= 4) or not (1 <= ic.birth_rank[i] <= 9) or ic.birth_date[i] == NO_DATE:
        return True
    exo = ic.exo_reason[i]
    if exo < 0 or exo >= MAX_CODE or ra.exo[exo, EXO_KNOWN] == 0 or ra.parcours_ok[ic.parcours[i]] < 0:
        return True
    if ic.line_count[i] == 0:
        return True
    for j in range(ic.line_start[i], ic.line_start[i] + ic.line_count[i]):
        if lc.care_date[j] == NO_DATE:
            return True
    return False


@njit(**NJIT_INLINE)
def _all_in(periods, row: int, k: int, lc, first: int, end: int) -> bool:
    for j in range(first, end):
        if not holds(periods, row, k, lc.care_date[j]):
            return False
    return True


@njit(**NJIT_INLINE)
def invoice_controls(ic, lc, i: int, ra, cal, bene, pros, stab, rows) -> tuple[np.int64, np.int64, int]:
    """C15–C33 on an invoice that passed C14: (reject bits, signal bits, beneficiary row).

    `rows` holds each line's letter-key row in force (`letter_row`), computed once by the driver."""
    rej = np.int64(0)
    sig = np.int64(0)
    first, end = ic.line_start[i], ic.line_start[i] + ic.line_count[i]
    liq = ic.liq_date[i]
    ps = ic.ps[i]
    pa, pn = ra.params, ra.param_n
    cmin, cmax = lc.care_date[first], lc.care_date[first]
    for j in range(first, end):
        cmin = min(cmin, lc.care_date[j])
        cmax = max(cmax, lc.care_date[j])

    if not nir_key_ok(ic.nir_id[i], ic.nir_key[i]) or (
            ic.nii_present[i] == 1 and not nir_key_ok(ic.nii_id[i], ic.nii_key[i])):
        rej |= B_C15
    b = find_beneficiary(ic, i, bene)
    if b < 0:
        rej |= B_C16
    else:
        if not _all_in(bene.periods, b, RIGHTS, lc, first, end):
            rej |= B_C17
        if bene.death_date[b] != NO_DATE and cmax > bene.death_date[b]:
            rej |= B_C18
    nat = ic.nature[i]
    if nat < 0 or ra.natures[nat, NAT_ACCEPTED] == 0 or ic.lot_family[i] < 0 \
            or ra.natures[nat, NAT_FAMILY] != ic.lot_family[i]:
        rej |= B_C19
    if nat >= 0 and ra.natures[nat, NAT_IS_AT] == 1:
        ev = ic.event_date[i]
        if ev == NO_DATE or ev > cmin:
            rej |= B_C20
    if nat >= 0 and ra.natures[nat, NAT_IS_MA] == 1:
        start = ic.pregnancy_start_date[i]
        bad = start == NO_DATE
        if not bad:
            limit = add_months(start, param(pa, pn, P_MATERNITY_WINDOW_MONTHS, liq))
            bad = cmin < start or cmax > limit
        if ic.nii_present[i] == 1:
            bad = bad or ic.nii_sex[i] != 2
        elif ic.quality[i] == 1:
            bad = bad or ic.nir_sex[i] != 2
        elif b >= 0:
            bad = bad or bene.sex[b] != 2
        if bad:
            rej |= B_C21
    if nat >= 0 and ra.natures[nat, NAT_IS_SG] == 1:
        if b >= 0 and not _all_in(bene.periods, b, SIG, lc, first, end):
            rej |= B_C22
        sig |= B_C22S
    exo = ic.exo_reason[i]
    check = ra.exo[exo, EXO_CHECK]
    if exo != 0 and check != CHECK_NONE:
        ok = True
        if check == CHECK_ALD or check == CHECK_SIG:
            if b >= 0:
                ok = _all_in(bene.periods, b, ALD if check == CHECK_ALD else SIG, lc, first, end)
        elif check == CHECK_MATERNITY:
            start = ic.pregnancy_start_date[i]
            ok = start != NO_DATE and \
                add_months(start, param(pa, pn, P_EXO55_FROM_MONTHS, liq)) <= cmin and \
                cmax <= add_months(start, param(pa, pn, P_MATERNITY_WINDOW_MONTHS, liq))
        if not ok:
            rej |= B_C23
    incoherent = (ic.exo_justification[i] == 1) != (exo != 0)
    for j in range(first, end):
        if lc.line_exo_flag[j] == 1 and ra.exo[exo, EXO_EXONERATING] == EXONERATING_NO:
            incoherent = True
    if incoherent:
        sig |= B_C24S
    pidx = pros.index
    own = ht.get(pidx.slots, PS_OWN, ps, 0, -1)
    if own < 0:
        rej |= B_C25
    else:
        bad = ic.lot_speciality[i] != pros.speciality[own] or ic.lot_convention[i] != pros.convention[own]
        for j in range(first, end):
            if lc.rec_type[j] != 4:
                continue
            row = own if lc.executor_rpps[j] == 0 else ht.get(pidx.slots, PS_BY_PAIR, ps, lc.executor_rpps[j], -1)
            if row < 0 or lc.executor_speciality[j] != pros.speciality[row]:
                bad = True
        if bad:
            rej |= B_C25
    convention = pros.convention[own] if own >= 0 else ic.lot_convention[i]
    if convention == 0:
        rej |= B_C26
    payee = ic.payee_code[i]
    if payee < 0 or payee >= MAX_CODE or ra.payee[payee, 0] == 0:
        rej |= B_C27
    elif payee == 36 and b >= 0 and ic.amc_number[i] == 0 and not _all_in(bene.periods, b, C2S, lc, first, end):
        rej |= B_C27
    if b >= 0:
        seen = ht.get(stab, st.key_a(st.INVOICE, b), ps, ic.invoice_number[i], NO_DATE)
        if seen != NO_DATE and liq < add_months(seen, 12 * param(pa, pn, P_INVOICE_NUMBER_UNIQUENESS, liq)):
            rej |= B_C28
    entry, exit_ = ic.stay_entry_date[i], ic.stay_exit_date[i]
    # the directory's birth date: a centenarian's, not the 20AA reading of its two digits
    birth = bene.birth_date[b] if b >= 0 and bene.birth_date[b] != NO_DATE else ic.birth_date[i]
    if cmax > liq or birth > cmin or (entry != NO_DATE and exit_ != NO_DATE and exit_ < entry) \
            or (ic.prescription_date[i] != NO_DATE and ic.prescription_date[i] > liq):
        rej |= B_C29
    limit_wd = param(pa, pn, P_TRANSMISSION_DELAY_INSURED_PAID if payee == 10 else P_TRANSMISSION_DELAY_TIERS_PAYANT, liq)
    if working_days_after(cal, cmax, liq) > limit_wd:
        sig |= B_C31S
    needs = False
    for j in range(first, end):
        r = rows[j]
        if r >= 0 and ra.lk_rows[r, LK_PRESC] == 1:
            needs = True
    if needs:
        if ic.prescriber_rpps[i] == 0:
            rej |= B_C32A
        elif ht.get(pidx.slots, PS_BY_RPPS, ic.prescriber_rpps[i], 0, -1) < 0:
            rej |= B_C32B
    presc = ic.prescription_date[i]
    if presc != NO_DATE and (presc > cmin or presc < cmax - param(pa, pn, P_PRESCRIPTION_MAX_AGE, liq)):
        rej |= B_C33
    return rej, sig, b


@njit(**NJIT_INLINE)
def working_days_after(cal, start: int, end: int) -> int:
    """Working days d with start < d <= end (clipped to the calendar's years)."""
    if end <= start:
        return 0
    n = cal.work_cum.shape[0]
    s = min(max(start - cal.base, 0), n - 1)
    e = min(max(end - cal.base, 0), n - 1)
    return cal.work_cum[e] - cal.work_cum[s]


@njit(**NJIT_INLINE)
def line_family(lc, j: int, ra, billed_by: int) -> int:
    """Billing family id of a line (liquidation.md terms), -1 when the speciality may not bill it (C35)."""
    if lc.rec_type[j] == 3:
        return ESTABLISHMENT if billed_by & ESTABLISHMENT_BIT else -1
    spe = lc.executor_speciality[j]
    if spe < 0 or spe >= MAX_CODE:
        return -1
    for k in range(2):
        f = ra.spe_families[spe, k]
        if f >= 0 and (billed_by >> f) & 1:
            return f
    return -1


@njit(**NJIT_INLINE)
def practitioner(lc, j: int, ps: int) -> int:
    return lc.executor_rpps[j] if lc.executor_rpps[j] != 0 else -ps


@njit(**NJIT_INLINE)
def line_control(ic, lc, i: int, j: int, row: int, fam: int, b: int, ra, stab) -> int:
    """C34–C42 in controls.md §4.5 order on a line of an invoice that is not rejected; -1 = passes."""
    if row < 0:
        return R_C34
    if fam < 0:
        return R_C35
    qty, coef = lc.quantity[j], lc.coefficient[j]
    flags = ra.act_flags[lc.act[j]]
    if qty < 1 or coef <= 0 or lc.count[j] < 1 or (ra.lk_rows[row, LK_UNIT] == 1 and coef != 100) \
            or ((flags >> ACT_SINGLE_QTY) & 1 and not (flags >> ACT_KM) & 1 and qty != 1):
        return R_C36
    d = lc.care_date[j]
    if (flags >> ACT_ONCE_DAY) & 1 and \
            ht.get(stab, st.key_a(st.ONCE, b), practitioner(lc, j, ic.ps[i]), d, -1) != -1:
        return R_C37
    if (flags >> ACT_PREANALYTIC) & 1 and coef == PREANALYTIC_COEF and \
            ht.get(stab, st.key_a(st.B17, b), 0, d, -1) != -1:
        return R_C37
    if lc.detail_bad[j] == 1:
        return R_C38
    if lc.rec_type[j] == 3:
        entry, exit_ = ic.stay_entry_date[i], ic.stay_exit_date[i]
        outside = ic.stay_number[i] != 0 and (d < entry or (exit_ != NO_DATE and d > exit_))
        if outside or (lc.care_end_date[j] != NO_DATE and lc.care_end_date[j] < d):
            return R_C39
    if lc.billed_amount[j] == 0:
        return R_C42
    return -1


__all__ = ["invoice_controls", "line_control", "c14_fails", "find_beneficiary", "working_days_after",
           "line_family", "practitioner", "INVOICE_REJECT_MASK", "R_C30"]
