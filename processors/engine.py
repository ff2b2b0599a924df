"""Controls + liquidation over a batch of invoices, in liquidation order (L01).

Three layers, as in stumpy: `_run` is the compiled driver (one sequential pass: the duplicate
checks and the caps of an invoice depend on every invoice before it); `run_kernel` is the
public, checked wrapper that grows the state table before the batch and allocates the outcome.
Twin: `twin.Twin.run`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from fseflow.config import NJIT_INLINE, NJIT_LEAF
from fseflow.days import NO_DATE
from fseflow.processors import _hashtable as ht
from fseflow.processors import rules
from fseflow.processors import state as st
from fseflow.processors._civil import forclusion_limit
from fseflow.processors._lookup import letter_row, param
from fseflow.processors.calendar import Calendar, load_calendar
from fseflow.processors.claims import KERNEL_DTYPES, M_BUDGET, InvoiceCols, LineCols, Outcome, new_outcome
from fseflow.processors.controls import (INVOICE_REJECT_MASK, R_C30, B_C14, c14_fails, invoice_controls, line_control, line_family, practitioner,
)
from fseflow.processors.directory import Beneficiaries, Professionals
from fseflow.processors.liquidation import line_budget, line_signals, liquidate_invoice
from fseflow.processors.reference import ACT_ONCE_DAY, ACT_PREANALYTIC, LK_BILLED_BY, P, RefArrays, compile_reference

MAX_STAY_DAYS = rules.MAX_STAY_DAYS
PREANALYTIC_COEF = rules.PREANALYTIC_COEF_HUNDREDTHS

# kernel ids of the parameters read here (numba takes ints, not the dict)
P_FORCLUSION_YEARS = P["FORCLUSION_YEARS"]


@njit(**NJIT_LEAF)
def _run(ic, lc, ra, cal, bene, pros, stab, sused, out_inv, out_line, money, scratch, start: int) -> int:
    """Invoices from `start` on; returns where it stopped (n when done, earlier when the state
    table is too full to take the next invoice's keys: the wrapper grows it and resumes)."""
    inv_status, inv_rejects, inv_signals, inv_bene = out_inv
    line_status, line_reject, line_signals_ = out_line
    paid, under, rows, fams, group = scratch
    room = np.int64(stab.shape[0] * ht.MAX_LOAD)
    for i in range(start, ic.ps.shape[0]):
        first, end = ic.line_start[i], ic.line_start[i] + ic.line_count[i]
        need = (end - first) * st.MAX_NEW_KEYS_PER_LINE + 1 + (MAX_STAY_DAYS if ic.stay_number[i] != 0 else 0)
        if sused[0] + need > room:
            return i
        liq = ic.liq_date[i]
        b = -1
        if c14_fails(ic, lc, i, ra):
            rej, sig = B_C14, np.int64(0)
        else:
            for j in range(first, end):
                rows[j] = letter_row(ra.lk_rows, ra.lk_span, lc.act[j], ic.zone[i], lc.care_date[j])
            rej, sig, b = invoice_controls(ic, lc, i, ra, cal, bene, pros, stab, rows)
            years = param(ra.params, ra.param_n, P_FORCLUSION_YEARS, liq)
            for j in range(first, end):
                if liq >= forclusion_limit(lc.care_date[j], years):
                    line_reject[j] = R_C30
        inv_rejects[i] = rej
        inv_signals[i] = sig
        inv_bene[i] = b
        if rej & INVOICE_REJECT_MASK:
            for j in range(first, end):
                money[j, M_BUDGET] = line_budget(ra, ic.nature[i], lc.line_exo_flag[j] == 1, ic.exo_reason[i])
            continue
        any_paid = False
        for j in range(first, end):
            row = rows[j]
            fam = line_family(lc, j, ra, ra.lk_rows[row, LK_BILLED_BY]) if row >= 0 else -1
            fams[j] = fam
            fail = line_reject[j] if line_reject[j] >= 0 else line_control(ic, lc, i, j, row, fam, b, ra, stab)
            if fail >= 0:
                line_reject[j] = fail
                money[j, M_BUDGET] = line_budget(ra, ic.nature[i], lc.line_exo_flag[j] == 1, ic.exo_reason[i])
                continue
            paid[j] = True
            line_status[j] = 1
            any_paid = True
            # a paid line enters the once-per-day indexes at once (C37 within the same invoice)
            flags = ra.act_flags[lc.act[j]]
            if (flags >> ACT_ONCE_DAY) & 1:
                ht.add(stab, sused, st.key_a(st.ONCE, b), practitioner(lc, j, ic.ps[i]), lc.care_date[j], 1)
            if (flags >> ACT_PREANALYTIC) & 1 and lc.coefficient[j] == PREANALYTIC_COEF:
                ht.add(stab, sused, st.key_a(st.B17, b), 0, lc.care_date[j], 1)
        liquidate_invoice(ic, lc, i, b, ra, bene, paid, rows, fams, group, under, stab, sused, money)
        for j in range(first, end):
            if paid[j]:
                line_signals_[j] = line_signals(ic, lc, i, j, b, rows[j], fams[j], ra, cal, bene, stab, sused, money)
        if any_paid:
            inv_status[i] = 1
            ht.put(stab, sused, st.key_a(st.INVOICE, b), ic.ps[i], ic.invoice_number[i], liq)
            _record_stay(ic, lc, i, b, paid, stab, sused)
    return ic.ps.shape[0]


@njit(**NJIT_INLINE)
def _record_stay(ic, lc, i, b, paid, stab, sused) -> None:
    """C46: the days of a paid hospital stay, one entry a day (clipped to MAX_STAY_DAYS)."""
    first, end = ic.line_start[i], ic.line_start[i] + ic.line_count[i]
    entry = ic.stay_entry_date[i]
    last = NO_DATE
    for j in range(first, end):
        if lc.rec_type[j] == 3 and paid[j]:
            last = max(last, lc.care_date[j])
    if last == NO_DATE or ic.stay_number[i] == 0 or entry == NO_DATE:
        return
    if ic.stay_exit_date[i] != NO_DATE:
        last = ic.stay_exit_date[i]
    for d in range(entry, min(last, entry + MAX_STAY_DAYS - 1) + 1):
        ht.put(stab, sused, st.key_a(st.STAY, b), 0, d, 1)


def _check(cols: tuple, kind: str) -> None:
    for name, arr in zip(cols._fields, cols):
        want = KERNEL_DTYPES[name]
        if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(want):
            got = getattr(arr, "dtype", type(arr).__name__)
            raise TypeError(f"{kind}.{name}: expected a numpy array of {want}, got {got}; use .astype('{want}')")


def run_kernel(ic: InvoiceCols, lc: LineCols, bene: Beneficiaries, pros: Professionals,
               state: ht.Table, ref: RefArrays | None = None, cal: Calendar | None = None) -> tuple[Outcome, ht.Table]:
    """Controls and liquidation of a batch, in order; returns the outcome and the new state table."""
    _check(ic, "invoices")
    _check(lc, "lines")
    ref = ref if ref is not None else compile_reference().arrays
    cal = cal if cal is not None else load_calendar()
    n_inv, n_lines = ic.ps.shape[0], lc.rec_type.shape[0]
    out = new_outcome(n_inv, n_lines)
    # per-line scratch of the driver, allocated here so the compiled driver never allocates
    scratch = (np.zeros(n_lines, np.bool_), np.zeros(n_lines, np.bool_), np.full(n_lines, -1, np.int64),
               np.full(n_lines, -1, np.int64), np.full(n_lines, -1, np.int64))
    done = 0
    while True:
        done = _run(ic, lc, ref, cal, bene, pros, state.slots, state.used,
                    (out.inv_status, out.inv_rejects, out.inv_signals, out.inv_bene),
                    (out.line_status, out.line_reject, out.line_signals), out.money, scratch, done)
        if done == n_inv:
            return out, state
        # the next invoice may add this many keys at most: grow (at least double) and resume
        longest = int(lc.rec_type.shape[0] if n_inv == 0 else ic.line_count[done:].max())
        state = ht.grow(state, longest * st.MAX_NEW_KEYS_PER_LINE + 1 + MAX_STAY_DAYS)
