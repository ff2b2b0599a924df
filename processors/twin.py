"""Pure-Python reference twin of the control and liquidation kernels, written for clarity.

It reads controls.md and liquidation.md rule by rule, with plain dicts, `datetime` and the
`Reference` lookups, one invoice at a time. It is slow on purpose: the property tests check
that the numba kernels (`engine.py`) give exactly the same outcome and the same counter state.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Optional

from fseflow.days import NO_DATE, from_days, to_days
from fseflow.processors import rules, state as st
from fseflow.processors.calendar import french_holidays, is_working_day
from fseflow.processors.claims import (
    M_AMO, M_BASE, M_BUDGET, M_C2S, M_DEBT, M_EXCESS, M_FLAT, M_FR, M_NET, M_PAID, M_PATIENT,
    M_PF, M_RATE, M_TARIFF, InvoiceCols, LineCols, Outcome, new_outcome,
)
from fseflow.processors.directory import Beneficiaries, Professionals
from fseflow.processors.reference import BUDGETS, LOT_FAMILIES, LetterKeyRow, Reference, load_reference
from fseflow.processors.rules import R

State = dict[tuple[int, int, int], int]


# -- dates, with datetime ------------------------------------------------------------
def _add_months(day: int, n: int) -> int:
    d = from_days(day)
    assert d is not None
    k = d.month - 1 + n
    y, m = d.year + k // 12, k % 12 + 1
    last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)).day
    return to_days(dt.date(y, m, min(d.day, last)))


def _age(birth: int, day: int) -> int:
    b, d = from_days(birth), from_days(day)
    assert b is not None and d is not None
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


def _year(day: int) -> int:
    d = from_days(day)
    assert d is not None
    return d.year


def _forclusion_limit(care: int, years: int) -> int:
    d = from_days(care)
    assert d is not None
    q_first_month = (d.month - 1) // 3 * 3 + 1
    nxt = _add_months(to_days(dt.date(d.year, q_first_month, 1)), 3)
    return _add_months(nxt, 12 * years)


def _working_days_after(start: int, end: int) -> int:
    """Working days d with start < d <= end."""
    return sum(1 for d in range(start + 1, end + 1) if is_working_day(d))


def _nir_key_ok(nid: int, key: int) -> bool:
    return nid >= 0 and key == 97 - (nid % 10**13) % 97


class _Bene:
    """One beneficiary row, read from the arrays."""

    def __init__(self, b: Beneficiaries, row: int) -> None:
        self.row = row
        self.sex = int(b.sex[row])
        self.birth = int(b.birth_date[row])
        self.death = int(b.death_date[row])
        self.periods = {name: (int(b.periods[row, k, 0]), int(b.periods[row, k, 1]))
                        for k, name in enumerate(("rights", "ald", "c2s", "sig"))}

    def holds(self, period: str, day: int) -> bool:
        start, end = self.periods[period]
        return start <= day <= end


class Twin:
    """The reference implementation; `run` is the twin of `engine.run_kernel`."""

    def __init__(self, acts: tuple[str, ...], natures: tuple[str, ...], bene: Beneficiaries,
                 pros: Professionals, ref: Reference | None = None) -> None:
        self.ref = ref or load_reference()
        self.acts, self.natures = acts, natures
        self.bene_arrays = bene
        self.bene_index = {}
        for row in range(len(bene.nir_id)):
            k = (int(bene.nir_id[row]), int(bene.birth_date[row]), int(bene.birth_rank[row]), int(bene.quality[row]))
            self.bene_index.setdefault(k, row)
        self.ps_rows: dict[int, list[int]] = defaultdict(list)
        self.rpps_known = {int(r) for r in pros.rpps if r != 0}
        for row in range(len(pros.ps_number)):
            self.ps_rows[int(pros.ps_number[row])].append(row)
        self.pros = pros

    # -- directory lookups ----------------------------------------------------------
    def _own_ps_row(self, ps: int) -> Optional[int]:
        rows = self.ps_rows.get(ps, [])
        zero = [r for r in rows if self.pros.rpps[r] == 0]
        return zero[0] if zero else (rows[0] if rows else None)

    def _ps_pair_row(self, ps: int, rpps: int) -> Optional[int]:
        for r in self.ps_rows.get(ps, []):
            if self.pros.rpps[r] == rpps:
                return r
        return None

    def _find_bene(self, ic: InvoiceCols, i: int) -> Optional[_Bene]:
        birth = int(ic.birth_date[i])
        row = self._find_at(ic, i, birth)
        # a 20AA birth date may be a centenarian's 19AA (b2-profile.md §2): the directory tells
        if row is None and birth != NO_DATE and from_days(birth).year >= 2000:
            row = self._find_at(ic, i, _add_months(birth, -1200))
        return None if row is None else _Bene(self.bene_arrays, row)

    def _find_at(self, ic: InvoiceCols, i: int, birth: int) -> Optional[int]:
        rank = int(ic.birth_rank[i])
        row = self.bene_index.get((int(ic.nir_id[i]), birth, rank, int(ic.quality[i])))
        if row is None and ic.nii_present[i] and ic.nii_id[i] >= 0:
            row = self.bene_index.get((int(ic.nii_id[i]), birth, rank, 1))
        return row

    # -- the run ---------------------------------------------------------------------
    def run(self, ic: InvoiceCols, lc: LineCols, state: State) -> Outcome:
        out = new_outcome(len(ic.ps), len(lc.rec_type))
        for i in range(len(ic.ps)):
            self._invoice(ic, lc, i, state, out)
        return out

    def _line_row(self, ic: InvoiceCols, lc: LineCols, i: int, j: int) -> Optional[LetterKeyRow]:
        a = int(lc.act[j])
        if a < 0 or lc.care_date[j] == NO_DATE:
            return None
        return self.ref.letter_key(self.acts[a], int(ic.zone[i]), int(lc.care_date[j]))

    def _budget(self, nature: Optional[str], flagged: bool, exo: int) -> int:
        if nature is not None and self.ref.natures[nature]["accepted_in_v1"] == "yes":
            b = self.ref.natures[nature]["funding_budget"]
            if b != "AMO":
                return BUDGETS.index(b)
        if flagged and exo in self.ref.exonerations and self.ref.exonerations[exo]["funding_budget"] == "SIG":
            return BUDGETS.index("SIG")
        return BUDGETS.index("AMO")

    def _invoice(self, ic: InvoiceCols, lc: LineCols, i: int, state: State, out: Outcome) -> None:
        ref = self.ref
        lines = list(range(int(ic.line_start[i]), int(ic.line_start[i]) + int(ic.line_count[i])))
        care = [int(lc.care_date[j]) for j in lines]
        liq = int(ic.liq_date[i])
        ps = int(ic.ps[i])
        nature = self.natures[ic.nature[i]] if ic.nature[i] >= 0 else None
        exo_code = int(ic.exo_reason[i])
        exo = ref.exonerations.get(exo_code)
        rejects: set[str] = set()
        signals: set[str] = set()
        line_fail: dict[int, str] = {}
        bene: Optional[_Bene] = None

        # C14: unreadable or invalid fields stop the invoice here (controls.md §4.2)
        parcours = chr(int(ic.parcours[i]))
        if (ic.c14_line[i] >= 0 or ic.nature_operation[i] != 1 or ic.invoice_number[i] == 0
                or not 1 <= ic.quality[i] <= 4 or not 1 <= ic.birth_rank[i] <= 9
                or ic.birth_date[i] == NO_DATE or exo is None or parcours not in ref.parcours_in_pathway
                or not lines or NO_DATE in care):
            rejects.add("C14")
        else:
            bene = self._invoice_controls(ic, lc, i, lines, care, nature, exo_code, exo, state, rejects, signals)
            limit_years = ref.param("FORCLUSION_YEARS", liq)
            for j, d in zip(lines, care):
                if liq >= _forclusion_limit(d, limit_years):
                    line_fail[j] = "C30"

        out.inv_bene[i] = -1 if bene is None else bene.row
        if any(REASON_KIND[r] == "reject" for r in rejects):
            for j in lines:
                out.line_reject[j] = R[line_fail[j]] if j in line_fail else -1
                out.money[j, M_BUDGET] = self._budget(nature, lc.line_exo_flag[j] == 1, exo_code)
        else:
            assert bene is not None
            self._lines(ic, lc, i, lines, bene, nature, exo_code, line_fail, state, out)
            if out.line_status[lines].any():
                out.inv_status[i] = 1
                state[(st.key_a(st.INVOICE, bene.row), ps, int(ic.invoice_number[i]))] = liq
                self._record_stay(ic, lc, i, lines, bene, state, out)
        for r in rejects | signals:
            if REASON_KIND[r] == "reject":
                out.inv_rejects[i] |= 1 << R[r]
            else:
                out.inv_signals[i] |= 1 << R[r]

    def _invoice_controls(self, ic, lc, i, lines, care, nature, exo_code, exo, state, rejects, signals) -> Optional[_Bene]:
        ref = self.ref
        liq = int(ic.liq_date[i])
        ps = int(ic.ps[i])
        # C15: NIR key, NII key when present
        if not _nir_key_ok(int(ic.nir_id[i]), int(ic.nir_key[i])) or (
                ic.nii_present[i] and not _nir_key_ok(int(ic.nii_id[i]), int(ic.nii_key[i]))):
            rejects.add("C15")
        # C16: beneficiary known
        bene = self._find_bene(ic, i)
        if bene is None:
            rejects.add("C16")
        else:
            if not all(bene.holds("rights", d) for d in care):
                rejects.add("C17")
            if bene.death != NO_DATE and any(d > bene.death for d in care):
                rejects.add("C18")
        # C19: nature accepted and in the lot's family
        nat = ref.natures.get(nature) if nature else None
        if nat is None or nat["accepted_in_v1"] != "yes" or ic.lot_family[i] < 0 \
                or nat["lot_family"] != LOT_FAMILIES[ic.lot_family[i]]:
            rejects.add("C19")
        # C20: AT event date
        if nature == "AT":
            ev = int(ic.event_date[i])
            if ev == NO_DATE or any(ev > d for d in care):
                rejects.add("C20")
        # C21: maternity window and a female patient
        if nature == "MA":
            start = int(ic.pregnancy_start_date[i])
            window = ref.param("MATERNITY_WINDOW_MONTHS", liq)
            bad = start == NO_DATE or any(d < start or d > _add_months(start, window) for d in care)
            if ic.nii_present[i]:
                bad = bad or ic.nii_sex[i] != 2
            elif ic.quality[i] == 1:
                bad = bad or ic.nir_sex[i] != 2
            elif bene is not None:
                bad = bad or bene.sex != 2
            if bad:
                rejects.add("C21")
        # C22: SIG rights; the link with the pensioned infirmity cannot be checked (signal)
        if nature == "SG":
            if bene is not None and not all(bene.holds("sig", d) for d in care):
                rejects.add("C22")
            signals.add("C22S")
        # C23: the exoneration claimed holds at every care date
        check = exo["rights_check"]
        if exo_code != 0 and check != "none":
            if check in ("ald", "sig"):
                ok = bene is None or all(bene.holds(check, d) for d in care)
            else:  # maternity: from start + EXO55_FROM_MONTHS to start + MATERNITY_WINDOW_MONTHS
                start = int(ic.pregnancy_start_date[i])
                ok = start != NO_DATE and all(
                    _add_months(start, ref.param("EXO55_FROM_MONTHS", liq)) <= d
                    <= _add_months(start, ref.param("MATERNITY_WINDOW_MONTHS", liq)) for d in care)
            if not ok:
                rejects.add("C23")
        # C24: exoneration coherence (signal)
        if (ic.exo_justification[i] == 1) != (exo_code != 0) or any(
                lc.line_exo_flag[j] == 1 and exo["exonerating"] == "no" for j in lines):
            signals.add("C24S")
        # C25: PS known, speciality and convention as in the directory
        own = self._own_ps_row(ps)
        pros = self.pros
        if own is None:
            rejects.add("C25")
        else:
            bad = ic.lot_speciality[i] != pros.speciality[own] or ic.lot_convention[i] != pros.convention[own]
            for j in lines:
                if lc.rec_type[j] != 4:
                    continue
                rpps = int(lc.executor_rpps[j])
                row = own if rpps == 0 else self._ps_pair_row(ps, rpps)
                if row is None or lc.executor_speciality[j] != pros.speciality[row]:
                    bad = True
            if bad:
                rejects.add("C25")
        # C26: not contracted
        convention = int(pros.convention[own]) if own is not None else int(ic.lot_convention[i])
        if convention == 0:
            rejects.add("C26")
        # C27: payee code; 36 needs C2S at every care date or an AMC number
        payee = int(ic.payee_code[i])
        row = ref.payees.get(payee)
        if row is None or row["accepted_in_v1"] != "yes":
            rejects.add("C27")
        elif payee == 36 and bene is not None and ic.amc_number[i] == 0 \
                and not all(bene.holds("c2s", d) for d in care):
            rejects.add("C27")
        # C28: duplicate invoice within INVOICE_NUMBER_UNIQUENESS years
        if bene is not None:
            seen = state.get((st.key_a(st.INVOICE, bene.row), ps, int(ic.invoice_number[i])))
            if seen is not None and liq < _add_months(seen, 12 * ref.param("INVOICE_NUMBER_UNIQUENESS", liq)):
                rejects.add("C28")
        # C29: dates
        entry, exit_ = int(ic.stay_entry_date[i]), int(ic.stay_exit_date[i])
        birth = bene.birth if bene is not None and bene.birth != NO_DATE else int(ic.birth_date[i])
        if (any(d > liq for d in care) or any(birth > d for d in care)
                or (entry != NO_DATE and exit_ != NO_DATE and exit_ < entry)
                or (ic.prescription_date[i] != NO_DATE and ic.prescription_date[i] > liq)):
            rejects.add("C29")
        # C31: transmission delay (signal)
        limit = ref.param("TRANSMISSION_DELAY_INSURED_PAID" if payee == 10 else "TRANSMISSION_DELAY_TIERS_PAYANT", liq)
        if _working_days_after(max(care), liq) > limit:
            signals.add("C31S")
        # C32: prescription required, present, prescriber known
        needs = False
        for j in lines:
            row_lk = self._line_row(ic, lc, i, j)
            needs = needs or (row_lk is not None and row_lk.prescription_required)
        if needs:
            if ic.prescriber_rpps[i] == 0:
                rejects.add("C32A")
            elif int(ic.prescriber_rpps[i]) not in self.rpps_known:
                rejects.add("C32B")
        # C33: prescription date valid for every care date
        presc = int(ic.prescription_date[i])
        if presc != NO_DATE and (presc > min(care) or presc < max(care) - ref.param("PRESCRIPTION_MAX_AGE", liq)):
            rejects.add("C33")
        return bene

    def _practitioner(self, lc: LineCols, j: int, ps: int) -> int:
        return int(lc.executor_rpps[j]) if lc.executor_rpps[j] != 0 else -ps

    def _family(self, lc: LineCols, j: int, row: LetterKeyRow) -> Optional[str]:
        if lc.rec_type[j] == 3:
            return rules.HOSPITAL_LINE_FAMILY if rules.HOSPITAL_LINE_FAMILY in row.billed_by else None
        for fam in self.ref.specialities.get(int(lc.executor_speciality[j]), ()):
            if fam in row.billed_by:
                return fam
        return None

    def _lines(self, ic, lc, i, lines, bene: _Bene, nature, exo_code, line_fail, state: State, out: Outcome) -> None:
        ref = self.ref
        ps = int(ic.ps[i])
        liq = int(ic.liq_date[i])
        b = bene.row
        exo = ref.exonerations[exo_code]
        paid: list[int] = []
        info: dict[int, tuple[LetterKeyRow, str]] = {}
        # line controls: the first failing one in the order C30, C34 … C42 (controls.md §4.5)
        for j in lines:
            d = int(lc.care_date[j])
            row = self._line_row(ic, lc, i, j)
            code = self.acts[lc.act[j]] if lc.act[j] >= 0 else ""
            fail = line_fail.get(j)
            fam = self._family(lc, j, row) if row is not None else None
            prac = self._practitioner(lc, j, ps)
            if fail is None and row is None:
                fail = "C34"
            if fail is None and fam is None:
                fail = "C35"
            if fail is None:
                qty, coef = int(lc.quantity[j]), int(lc.coefficient[j])
                if (qty < 1 or coef <= 0 or lc.count[j] < 1 or (row.priced_by_unit and coef != 100)
                        or (row.category in rules.SINGLE_QUANTITY_CATEGORIES and code not in rules.KILOMETRE_CODES and qty != 1)):
                    fail = "C36"
            if fail is None:
                once = row.category in rules.ONCE_PER_DAY_CATEGORIES and (st.key_a(st.ONCE, b), prac, d) in state
                b17 = (code == rules.PREANALYTIC_CODE and lc.coefficient[j] == rules.PREANALYTIC_COEF_HUNDREDTHS
                       and (st.key_a(st.B17, b), 0, d) in state)
                if once or b17:
                    fail = "C37"
            if fail is None and lc.detail_bad[j]:
                fail = "C38"
            if fail is None and lc.rec_type[j] == 3:
                entry, exit_ = int(ic.stay_entry_date[i]), int(ic.stay_exit_date[i])
                outside = ic.stay_number[i] != 0 and (d < entry or (exit_ != NO_DATE and d > exit_))
                if outside or (lc.care_end_date[j] != NO_DATE and lc.care_end_date[j] < d):
                    fail = "C39"
            if fail is None and lc.billed_amount[j] == 0:
                fail = "C42"
            if fail is not None:
                out.line_reject[j] = R[fail]
                out.money[j, M_BUDGET] = self._budget(nature, lc.line_exo_flag[j] == 1, exo_code)
                continue
            out.line_status[j] = 1
            paid.append(j)
            info[j] = (row, fam)
            # a paid line enters the once-per-day indexes at once: a second one in the same invoice is caught
            if row.category in rules.ONCE_PER_DAY_CATEGORIES:
                state[(st.key_a(st.ONCE, b), prac, d)] = state.get((st.key_a(st.ONCE, b), prac, d), 0) + 1
            if code == rules.PREANALYTIC_CODE and lc.coefficient[j] == rules.PREANALYTIC_COEF_HUNDREDTHS:
                state[(st.key_a(st.B17, b), 0, d)] = state.get((st.key_a(st.B17, b), 0, d), 0) + 1

        # L03–L07: tariff, base, rate, AMO per line
        full_rate = nature is not None and ref.nature_full_rate(nature)
        for j in paid:
            row, fam = info[j]
            d = int(lc.care_date[j])
            code = self.acts[lc.act[j]]
            unit = row.value_cents if row.value_cents is not None else int(lc.unit_price[j])
            qty, coef = int(lc.quantity[j]), int(lc.coefficient[j])
            if lc.rec_type[j] == 4:
                tariff = (unit * coef * qty + 50) // 100
            else:
                tariff = (unit * coef * qty * int(lc.coefficient_mco[j]) + 500_000) // 1_000_000
            billed = int(lc.billed_amount[j])
            base = min(billed, tariff)
            flagged = lc.line_exo_flag[j] == 1
            if full_rate:                                                   # L06a
                rate = 100
            elif code in rules.FORFAIT_JOURNALIER_CODES:                    # L06e
                rate = 100 if flagged and exo_code == rules.FORFAIT_JOURNALIER_EXO else 0
            elif flagged and (exo["exonerating"] == "yes" or (
                    exo["exonerating"] == "transport only" and row.category == "transport")):  # L06b
                rate = 100
            else:                                                           # L06c, L06d
                if row.base_rate_pct is not None:
                    rate = row.base_rate_pct
                else:
                    param = rules.FAMILY_RATE_PARAM.get(fam)
                    rate = ref.param(param, d) if param and any(v is not None for _, v in ref.params[param]) else 0
                if (fam == "physician" and row.category in rules.OUT_OF_PATHWAY_CATEGORIES
                        and _age(bene.birth, d) >= ref.param("PARCOURS_EXEMPT_AGE_BELOW", d)
                        and not ref.parcours_in_pathway[chr(int(ic.parcours[i]))]):
                    rate = ref.param("RATE_OUT_OF_PATHWAY", d)
            m = out.money[j]
            m[M_TARIFF], m[M_BASE], m[M_EXCESS], m[M_RATE] = tariff, base, billed - base, rate
            m[M_AMO] = (base * rate + 50) // 100

        # L08: the 24 EUR flat rule, per care date and practitioner
        under_l08: set[int] = set()
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for j in paid:
            if lc.rec_type[j] == 4 and self.acts[lc.act[j]] in rules.FLAT_RULE_CODES and out.money[j, M_RATE] < 100:
                groups[(int(lc.care_date[j]), self._practitioner(lc, j, ps))].append(j)
        for (d, _), members in groups.items():
            total_base = sum(int(out.money[j, M_BASE]) for j in members)
            total_coef = sum(int(lc.coefficient[j]) * int(lc.quantity[j]) for j in members
                             if not info[j][0].priced_by_unit)
            if total_base < ref.param("FLAT_FEE_THRESHOLD_TARIFF", d) and total_coef < ref.param("FLAT_FEE_THRESHOLD_COEF", d):
                continue
            left = min(ref.param("FLAT_FEE_HEAVY_ACT", d), total_base)
            for j in sorted(members, key=lambda j: (-int(out.money[j, M_BASE]), j)):
                share = min(int(out.money[j, M_BASE]), left)
                left -= share
                out.money[j, M_FLAT] = share
                out.money[j, M_AMO] = out.money[j, M_BASE] - share
                under_l08.add(j)

        # L09–L14, in line order (the counters move line by line)
        payee_ps = ref.payees[int(ic.payee_code[i])]["payee"] == "PS"
        nature_exempt = nature is not None and ref.nature_pf_franchise_exempt(nature)
        liq_year = _year(liq)
        for j in paid:
            row, fam = info[j]
            d = int(lc.care_date[j])
            m = out.money[j]
            flagged = lc.line_exo_flag[j] == 1
            c2s = bene.holds("c2s", d)
            if c2s and m[M_RATE] < 100:                                     # L09
                m[M_C2S] = m[M_BASE] - m[M_AMO]
            amo = int(m[M_AMO])
            pf = 0                                                           # L10
            if (row.subject_to_pf and j not in under_l08 and not c2s and not nature_exempt
                    and _age(bene.birth, d) >= ref.param("PF_EXEMPT_AGE_BELOW", d)
                    and not (flagged and exo["pf_exempt"] == "yes")):
                prac = self._practitioner(lc, j, ps)
                day_key, year_key = (st.key_a(st.PF_DAY, b), prac, d), (st.key_a(st.PF_YEAR, b), _year(d), 0)
                pf = max(0, min(ref.param("PF_AMOUNT", d),
                                ref.param("PF_DAILY_CAP_PER_PRACTITIONER", d) - state.get(day_key, 0),
                                ref.param("PF_ANNUAL_CAP", d) - state.get(year_key, 0), amo))
                if pf > 0:
                    state[day_key] = state.get(day_key, 0) + pf
                    state[year_key] = state.get(year_key, 0) + pf
            fr = 0                                                           # L11
            kind = rules.FRANCHISE_KINDS.get(row.category)
            if (kind is not None and row.subject_to_franchise and not c2s and not nature_exempt
                    and lc.rec_type[j] == 4
                    and _age(bene.birth, to_days(dt.date(liq_year, 1, 1))) >= ref.param("FRANCHISE_EXEMPT_AGE_BELOW", liq)
                    and not (flagged and exo["franchise_exempt"] == "yes")
                    and not (row.category == "transport" and lc.complement_code[j] == rules.EMERGENCY_COMPLEMENT)):
                kind_id, per_unit, cap = kind
                year_key = (st.key_a(st.FR_YEAR, b), liq_year, 0)
                day_key = (st.key_a(st.FR_DAY, b), kind_id, d)
                candidates = [int(lc.quantity[j]) * ref.param(per_unit, d),
                              ref.param("FRANCHISE_ANNUAL_CAP", liq) - state.get(year_key, 0), amo - pf]
                if cap is not None:
                    candidates.append(ref.param(cap, d) - state.get(day_key, 0))
                fr = max(0, min(candidates))
                if fr > 0:
                    state[year_key] = state.get(year_key, 0) + fr
                    if cap is not None:
                        state[day_key] = state.get(day_key, 0) + fr
            m[M_PF], m[M_FR] = pf, fr
            m[M_NET] = amo + m[M_C2S] - pf - fr                              # L12
            m[M_PATIENT] = int(lc.billed_amount[j]) - m[M_NET]               # L13
            m[M_PAID] = amo + m[M_C2S] if payee_ps else m[M_NET]             # L14
            m[M_DEBT] = pf + fr if payee_ps else 0
            m[M_BUDGET] = self._budget(nature, flagged, exo_code)            # L16
            self._line_signals(ic, lc, i, j, row, fam, bene, c2s, state, out)

    def _line_signals(self, ic, lc, i, j, row: LetterKeyRow, fam, bene: _Bene, c2s: bool, state: State, out: Outcome) -> None:
        ref = self.ref
        d = int(lc.care_date[j])
        m = out.money[j]
        sig: list[str] = []
        if lc.nabm_uncheckable[j]:
            sig.append("C38S")
        if row.value_cents is not None and lc.unit_price[j] != row.value_cents:
            sig.append("C40S")
        if lc.base[j] != m[M_BASE] or lc.rate_pct[j] != m[M_RATE] or lc.amo_amount[j] != m[M_AMO] + m[M_C2S]:
            sig.append("C41S")
        if c2s and m[M_EXCESS] > 0:
            sig.append("C43S")
        if (fam == "physician" and row.category in rules.OUT_OF_PATHWAY_CATEGORIES and ic.parcours[i] == ord(" ")
                and _age(bene.birth, d) >= ref.param("PARCOURS_EXEMPT_AGE_BELOW", d)):
            sig.append("C44S")
        act_key = (st.key_a(st.ACT_DAY, bene.row), int(lc.act[j]), d)
        first_ps = state.get(act_key)
        if first_ps is None:
            state[act_key] = int(ic.ps[i])
        elif first_ps != ic.ps[i]:
            sig.append("C45S")
        if lc.rec_type[j] == 4 and (st.key_a(st.STAY, bene.row), 0, d) in state:
            sig.append("C46S")
        comp = int(lc.complement_code[j])
        if comp == rules.SUNDAY_HOLIDAY_COMPLEMENT and (d + 3) % 7 != 6 and d not in french_holidays():
            sig.append("C47S")
        if comp in (1, 3) and row.category not in rules.NIGHT_EMERGENCY_CATEGORIES:
            sig.append("C47S")
        for s in sig:
            out.line_signals[j] |= 1 << R[s]

    def _record_stay(self, ic, lc, i, lines, bene: _Bene, state: State, out: Outcome) -> None:
        hospital = [j for j in lines if lc.rec_type[j] == 3 and out.line_status[j] == 1]
        entry = int(ic.stay_entry_date[i])
        if not hospital or ic.stay_number[i] == 0 or entry == NO_DATE:
            return
        last = int(ic.stay_exit_date[i])
        if last == NO_DATE:
            last = max(int(lc.care_date[j]) for j in hospital)
        for d in range(entry, min(last, entry + rules.MAX_STAY_DAYS - 1) + 1):
            state[(st.key_a(st.STAY, bene.row), 0, d)] = 1


REASON_KIND = {r.name: r.kind for r in rules.REASONS}
