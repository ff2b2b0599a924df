"""Liquidation kernel (liquidation.md L03–L16): the cents of every paid line of one invoice.

Pure function of the invoice, its lines' letter-key rows and families (from the controls), the
beneficiary row, the reference arrays and the counter state before the invoice; it moves the
PF and franchise counters line by line (L10, L11) and writes the outcome's money columns.
Twin: the liquidation loops of `twin.Twin._lines`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fseflow.config import NJIT_INLINE
from fseflow.days import NO_DATE
from fseflow.processors import _hashtable as ht
from fseflow.processors import rules
from fseflow.processors import state as st
from fseflow.processors._civil import age_at, days_from_civil, weekday, year_of
from fseflow.processors._lookup import holds, param
from fseflow.processors.claims import (
    M_AMO, M_BASE, M_BUDGET, M_C2S, M_DEBT, M_EXCESS, M_FLAT, M_FR, M_NET, M_PAID, M_PATIENT,
    M_PF, M_RATE, M_TARIFF,
)
from fseflow.processors.controls import C2S, practitioner
from fseflow.processors.reference import (
    ACT_COEF, ACT_FJ, ACT_FLAT, ACT_NIGHT_OK, ACT_OOP_CAT, BUDGETS, EXO_EXONERATING, EXO_FR_EXEMPT,
    EXO_PF_EXEMPT, EXO_SIG_BUDGET, EXONERATING_TRANSPORT, EXONERATING_YES, LK_CAT, LK_FR, LK_PF,
    LK_RATE, LK_VALUE, NAT_ACCEPTED, NAT_BUDGET, NAT_FULL_RATE, NAT_PF_FR_EXEMPT, P,
)
from fseflow.processors.rules import R

PHYSICIAN = rules.FAMILIES.index("physician")
TRANSPORT = rules.CATEGORIES.index("transport")
SIG_BUDGET = BUDGETS.index("SIG")
AMO_BUDGET = BUDGETS.index("AMO")
FJ_EXO = rules.FORFAIT_JOURNALIER_EXO
EMERGENCY = rules.EMERGENCY_COMPLEMENT
SUNDAY_HOLIDAY = rules.SUNDAY_HOLIDAY_COMPLEMENT
BLANK = ord(" ")
B_C38S, B_C40S, B_C41S, B_C43S, B_C44S, B_C45S, B_C46S, B_C47S = (
    np.int64(1) << np.int64(R[n]) for n in ("C38S", "C40S", "C41S", "C43S", "C44S", "C45S", "C46S", "C47S"))

# kernel ids of the parameters read here (numba takes ints, not the dict)
P_FLAT_FEE_HEAVY_ACT = P["FLAT_FEE_HEAVY_ACT"]
P_FLAT_FEE_THRESHOLD_COEF = P["FLAT_FEE_THRESHOLD_COEF"]
P_FLAT_FEE_THRESHOLD_TARIFF = P["FLAT_FEE_THRESHOLD_TARIFF"]
P_FRANCHISE_ANNUAL_CAP = P["FRANCHISE_ANNUAL_CAP"]
P_FRANCHISE_EXEMPT_AGE_BELOW = P["FRANCHISE_EXEMPT_AGE_BELOW"]
P_PARCOURS_EXEMPT_AGE_BELOW = P["PARCOURS_EXEMPT_AGE_BELOW"]
P_PF_AMOUNT = P["PF_AMOUNT"]
P_PF_ANNUAL_CAP = P["PF_ANNUAL_CAP"]
P_PF_DAILY_CAP_PER_PRACTITIONER = P["PF_DAILY_CAP_PER_PRACTITIONER"]
P_PF_EXEMPT_AGE_BELOW = P["PF_EXEMPT_AGE_BELOW"]
P_RATE_OUT_OF_PATHWAY = P["RATE_OUT_OF_PATHWAY"]


@njit(**NJIT_INLINE)
def line_budget(ra, nat: int, flagged: bool, exo: int) -> int:
    """L16: AT → APIAS, SG → SIG, a line flagged with a SIG exoneration (EXO 21) → SIG, else AMO."""
    if nat >= 0 and ra.natures[nat, NAT_ACCEPTED] == 1 and ra.natures[nat, NAT_BUDGET] != AMO_BUDGET:
        return ra.natures[nat, NAT_BUDGET]
    if flagged and 0 <= exo < ra.exo.shape[0] and ra.exo[exo, EXO_SIG_BUDGET] == 1:
        return SIG_BUDGET
    return AMO_BUDGET


@njit(**NJIT_INLINE)
def _tariff(lc, j: int, unit: int) -> int:
    """L04, one half-up rounding; type 3 split so the product never leaves int64."""
    a = np.int64(unit) * lc.coefficient[j] * lc.quantity[j]
    if lc.rec_type[j] == 4:
        return (a + 50) // 100
    q, r = a // 1_000_000, a % 1_000_000
    mco = np.int64(lc.coefficient_mco[j])
    return q * mco + (r * mco + 500_000) // 1_000_000


@njit(**NJIT_INLINE)
def _rate(ic, lc, i: int, j: int, row: int, fam: int, birth: int, ra) -> int:
    """L06, first match wins."""
    nat, exo = ic.nature[i], ic.exo_reason[i]
    flagged = lc.line_exo_flag[j] == 1
    flags = ra.act_flags[lc.act[j]]
    d = lc.care_date[j]
    if ra.natures[nat, NAT_FULL_RATE] == 1:                                  # a
        return 100
    if (flags >> ACT_FJ) & 1:                                                 # e
        return 100 if flagged and exo == FJ_EXO else 0
    ex = ra.exo[exo, EXO_EXONERATING]
    if flagged and (ex == EXONERATING_YES or (ex == EXONERATING_TRANSPORT and ra.lk_rows[row, LK_CAT] == TRANSPORT)):
        return 100                                                            # b
    rate = ra.lk_rows[row, LK_RATE]                                           # c
    if rate < 0:
        pid = ra.family_rate_param[fam]
        rate = param(ra.params, ra.param_n, pid, d) if pid >= 0 else 0
        rate = max(rate, 0)
    if fam == PHYSICIAN and (flags >> ACT_OOP_CAT) & 1 \
            and age_at(birth, d) >= param(ra.params, ra.param_n, P_PARCOURS_EXEMPT_AGE_BELOW, d) \
            and ra.parcours_ok[ic.parcours[i]] == 0:                           # d
        rate = param(ra.params, ra.param_n, P_RATE_OUT_OF_PATHWAY, d)
    return rate


@njit(**NJIT_INLINE)
def _flat_rule(ic, lc, i: int, ra, money, paid, group, under) -> None:
    """L08: groups per (care date, practitioner) reaching a threshold give up the flat share.

    `group` is scratch (one slot per line, from the driver): the first line of each line's group."""
    first, end = ic.line_start[i], ic.line_start[i] + ic.line_count[i]
    ps = ic.ps[i]
    for j in range(first, end):
        group[j] = -1
    for j in range(first, end):
        eligible = paid[j] and lc.rec_type[j] == 4 and (ra.act_flags[lc.act[j]] >> ACT_FLAT) & 1 \
            and money[j, M_RATE] < 100
        if not eligible or group[j] >= 0:
            continue
        d, prac = lc.care_date[j], practitioner(lc, j, ps)
        total_base = np.int64(0)
        total_coef = np.int64(0)
        for k in range(j, end):
            if paid[k] and lc.rec_type[k] == 4 and (ra.act_flags[lc.act[k]] >> ACT_FLAT) & 1 \
                    and money[k, M_RATE] < 100 and lc.care_date[k] == d and practitioner(lc, k, ps) == prac:
                group[k] = j
                total_base += money[k, M_BASE]
                if (ra.act_flags[lc.act[k]] >> ACT_COEF) & 1:
                    total_coef += np.int64(lc.coefficient[k]) * lc.quantity[k]
        if total_base < param(ra.params, ra.param_n, P_FLAT_FEE_THRESHOLD_TARIFF, d) and \
                total_coef < param(ra.params, ra.param_n, P_FLAT_FEE_THRESHOLD_COEF, d):
            continue
        left = min(param(ra.params, ra.param_n, P_FLAT_FEE_HEAVY_ACT, d), total_base)
        # shares in decreasing base order, ties in record order
        while True:
            best = -1
            for k in range(first, end):
                if group[k] == j and not under[k] and (best < 0 or money[k, M_BASE] > money[best, M_BASE]):
                    best = k
            if best < 0:
                break
            share = min(money[best, M_BASE], left)
            left -= share
            money[best, M_FLAT] = share
            money[best, M_AMO] = money[best, M_BASE] - share
            under[best] = True


@njit(**NJIT_INLINE)
def liquidate_invoice(ic, lc, i: int, b: int, ra, bene, paid, rows, fams, group, under, stab, sused, money) -> None:
    """L03–L16 for the paid lines of invoice i (beneficiary row b); moves the PF/franchise counters."""
    first, end = ic.line_start[i], ic.line_start[i] + ic.line_count[i]
    pa, pn = ra.params, ra.param_n
    nat, exo = ic.nature[i], ic.exo_reason[i]
    birth = ic.birth_date[i]
    birth = bene.birth_date[b] if bene.birth_date[b] != NO_DATE else birth
    for j in range(first, end):
        if not paid[j]:
            continue
        row = rows[j]
        value = ra.lk_rows[row, LK_VALUE]
        unit = value if value >= 0 else lc.unit_price[j]                     # L03
        tariff = _tariff(lc, j, unit)                                        # L04
        billed = lc.billed_amount[j]
        base = min(billed, tariff)                                           # L05
        rate = _rate(ic, lc, i, j, row, fams[j], birth, ra)                  # L06
        money[j, M_TARIFF] = tariff
        money[j, M_BASE] = base
        money[j, M_EXCESS] = billed - base
        money[j, M_RATE] = rate
        money[j, M_AMO] = (base * rate + 50) // 100                          # L07
    _flat_rule(ic, lc, i, ra, money, paid, group, under)                     # L08

    liq = ic.liq_date[i]
    liq_year = year_of(liq)
    payee_ps = ra.payee[ic.payee_code[i], 1] == 1
    nature_exempt = ra.natures[nat, NAT_PF_FR_EXEMPT] == 1
    fr_adult = age_at(birth, days_from_civil(liq_year, 1, 1)) >= param(pa, pn, P_FRANCHISE_EXEMPT_AGE_BELOW, liq)
    for j in range(first, end):
        if not paid[j]:
            continue
        row = rows[j]
        d = lc.care_date[j]
        flagged = lc.line_exo_flag[j] == 1
        c2s = holds(bene.periods, b, C2S, d)
        if c2s and money[j, M_RATE] < 100:                                   # L09
            money[j, M_C2S] = money[j, M_BASE] - money[j, M_AMO]
        amo = money[j, M_AMO]
        pf = np.int64(0)                                                     # L10
        if ra.lk_rows[row, LK_PF] == 1 and not under[j] and not c2s and not nature_exempt \
                and age_at(birth, d) >= param(pa, pn, P_PF_EXEMPT_AGE_BELOW, d) \
                and not (flagged and ra.exo[exo, EXO_PF_EXEMPT] == 1):
            a_day, a_year = st.key_a(st.PF_DAY, b), st.key_a(st.PF_YEAR, b)
            prac = practitioner(lc, j, ic.ps[i])
            y = year_of(d)
            day_left = param(pa, pn, P_PF_DAILY_CAP_PER_PRACTITIONER, d) - ht.get(stab, a_day, prac, d, 0)
            year_left = param(pa, pn, P_PF_ANNUAL_CAP, d) - ht.get(stab, a_year, y, 0, 0)
            pf = max(0, min(param(pa, pn, P_PF_AMOUNT, d), day_left, year_left, amo))
            if pf > 0:
                ht.add(stab, sused, a_day, prac, d, pf)
                ht.add(stab, sused, a_year, y, 0, pf)
        fr = np.int64(0)                                                     # L11
        kind, per_unit, cap = ra.act_franchise[lc.act[j], 0], ra.act_franchise[lc.act[j], 1], ra.act_franchise[lc.act[j], 2]
        if kind > 0 and ra.lk_rows[row, LK_FR] == 1 and not c2s and not nature_exempt and lc.rec_type[j] == 4 \
                and fr_adult and not (flagged and ra.exo[exo, EXO_FR_EXEMPT] == 1) \
                and not (ra.lk_rows[row, LK_CAT] == TRANSPORT and lc.complement_code[j] == EMERGENCY):
            a_year, a_day = st.key_a(st.FR_YEAR, b), st.key_a(st.FR_DAY, b)
            fr = min(np.int64(lc.quantity[j]) * param(pa, pn, per_unit, d),
                     param(pa, pn, P_FRANCHISE_ANNUAL_CAP, liq) - ht.get(stab, a_year, liq_year, 0, 0),
                     amo - pf)
            if cap >= 0:
                fr = min(fr, param(pa, pn, cap, d) - ht.get(stab, a_day, kind, d, 0))
            fr = max(0, fr)
            if fr > 0:
                ht.add(stab, sused, a_year, liq_year, 0, fr)
                if cap >= 0:
                    ht.add(stab, sused, a_day, kind, d, fr)
        money[j, M_PF] = pf
        money[j, M_FR] = fr
        net = amo + money[j, M_C2S] - pf - fr                                # L12
        money[j, M_NET] = net
        money[j, M_PATIENT] = lc.billed_amount[j] - net                      # L13
        money[j, M_PAID] = amo + money[j, M_C2S] if payee_ps else net        # L14
        money[j, M_DEBT] = pf + fr if payee_ps else 0
        money[j, M_BUDGET] = line_budget(ra, nat, flagged, exo)              # L16


@njit(**NJIT_INLINE)
def line_signals(ic, lc, i: int, j: int, b: int, row: int, fam: int, ra, cal, bene, stab, sused, money) -> np.int64:
    """Signals of a paid line: C38 (NABM), C40, C41, C43, C44, C45, C46, C47."""
    sig = np.int64(0)
    d = lc.care_date[j]
    if lc.nabm_uncheckable[j] == 1:
        sig |= B_C38S
    value = ra.lk_rows[row, LK_VALUE]
    if value >= 0 and lc.unit_price[j] != value:
        sig |= B_C40S
    if lc.base[j] != money[j, M_BASE] or lc.rate_pct[j] != money[j, M_RATE] \
            or lc.amo_amount[j] != money[j, M_AMO] + money[j, M_C2S]:
        sig |= B_C41S
    if holds(bene.periods, b, C2S, d) and money[j, M_EXCESS] > 0:
        sig |= B_C43S
    birth = bene.birth_date[b] if bene.birth_date[b] != NO_DATE else ic.birth_date[i]
    flags = ra.act_flags[lc.act[j]]
    if fam == PHYSICIAN and (flags >> ACT_OOP_CAT) & 1 and ic.parcours[i] == BLANK \
            and age_at(birth, d) >= param(ra.params, ra.param_n, P_PARCOURS_EXEMPT_AGE_BELOW, d):
        sig |= B_C44S
    a = st.key_a(st.ACT_DAY, b)
    first_ps = ht.get(stab, a, lc.act[j], d, -1)
    if first_ps == -1:
        ht.put(stab, sused, a, lc.act[j], d, ic.ps[i])
    elif first_ps != ic.ps[i]:
        sig |= B_C45S
    if lc.rec_type[j] == 4 and ht.get(stab, st.key_a(st.STAY, b), 0, d, -1) != -1:
        sig |= B_C46S
    comp = lc.complement_code[j]
    if comp == SUNDAY_HOLIDAY:
        k = d - cal.base
        holiday = 0 <= k < cal.holiday.shape[0] and cal.holiday[k] == 1
        if weekday(d) != 6 and not holiday:
            sig |= B_C47S
    if (comp == 1 or comp == 3) and not (flags >> ACT_NIGHT_OK) & 1:
        sig |= B_C47S
    return sig
