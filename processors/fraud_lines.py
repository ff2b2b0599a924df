"""The line features fraud scoring reads (fraud.md §3), taken from a liquidation batch.

One row per invoice line, columnar: who billed and who performed it, for whom, which act on
which day, the amount at stake, and the rule hits liquidation already found (C45: same act
same day by two PS → F03; C18 care after death and C46 care during a stay → F04), and the drug
(CIP13) of a pharmacy line (F09). The liquidate agent sends these rows to the fraud side stream.
Pure numpy.
"""
from __future__ import annotations

import numpy as np

from fseflow.processors.claims import MONEY, InvoiceCols, LineCols, Outcome
from fseflow.processors.rules import REASONS

_BIT = {r.name: k for k, r in enumerate(REASONS)}
_AMO, _C2S = MONEY.index("amo_cents"), MONEY.index("c2s_cents")
#: act codes that are majorations billed on their own line (fraud.md F05)
MAJORATION_ACTS = (b"MM", b"MU", b"MD")
#: columns of a line-features batch and their dtypes
COLUMNS = {"ps": "i8", "practitioner": "i8", "speciality": "i2", "bene": "i8", "act": "S5", "quantity": "i4",
           "coefficient": "i4", "care_date": "i4", "liq_date": "i4", "amo_cents": "i8", "at_stake_cents": "i8",
           "billed_cents": "i8", "base_cents": "i8", "first": "i1", "paid": "i1", "majoration": "i1",
           "f03": "i1", "f04": "i1", "tp": "i1", "prescriber": "i8", "cip13": "i8"}


def line_invoice(ic: InvoiceCols, n_lines: int) -> np.ndarray:
    """The invoice index of each line (lines are stored invoice by invoice)."""
    inv = np.repeat(np.arange(ic.line_start.shape[0], dtype=np.int64), ic.line_count.astype(np.int64))
    if inv.shape[0] != n_lines:
        raise ValueError(f"line counts sum to {inv.shape[0]}, the batch has {n_lines} lines")
    return inv


def features(ic: InvoiceCols, lc: LineCols, act_code: np.ndarray, cip13: np.ndarray, out: Outcome,
             payee_ps: np.ndarray, per_invoice: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The COLUMNS of every line of a liquidated batch (`act_code` = the raw B2 act codes,
    `cip13` the drug of each pharmacy line or 0, `payee_ps` the reference's int8 "paid to the
    PS" flag per payee code), plus each `per_invoice` column repeated on the invoice's lines."""
    n = lc.care_date.shape[0]
    inv = line_invoice(ic, n)
    ps = ic.ps[inv].astype(np.int64)
    rpps = lc.executor_rpps.astype(np.int64)
    spec = lc.executor_speciality.astype(np.int16)
    acts = np.char.strip(act_code.astype("S5"))
    signals = out.line_signals.astype(np.int64)
    c18 = (out.inv_rejects[inv].astype(np.int64) >> _BIT["C18"]) & 1
    c46 = (signals >> _BIT["C46S"]) & 1
    # AMO + C2S paid, and what would have been paid on a rejected line (the declared AMO)
    paid_amo = out.money[:, _AMO] + out.money[:, _C2S] if n else np.zeros(0, np.int64)
    return {
        **{k: v[inv] for k, v in (per_invoice or {}).items()},
        "ps": ps,
        "practitioner": np.where(rpps > 0, rpps, ps),
        "speciality": np.where(spec > 0, spec, ic.lot_speciality[inv]).astype(np.int16),
        "bene": out.inv_bene[inv].astype(np.int64),
        "act": acts,
        "quantity": lc.quantity.astype(np.int32),
        "coefficient": lc.coefficient.astype(np.int32),
        "care_date": lc.care_date.astype(np.int32),
        "liq_date": ic.liq_date[inv].astype(np.int32),
        "amo_cents": paid_amo.astype(np.int64),
        "at_stake_cents": np.maximum(paid_amo, lc.amo_amount).astype(np.int64),
        "billed_cents": lc.billed_amount.astype(np.int64),
        "base_cents": lc.base.astype(np.int64),
        # the invoice's first line, so a sum of it counts invoices
        "first": np.concatenate([np.ones(min(n, 1), bool), inv[1:] != inv[:-1]]).astype(np.int8),
        "paid": out.line_status.astype(np.int8),
        "majoration": (((lc.complement_code >= 1) & (lc.complement_code <= 3)) | np.isin(acts, MAJORATION_ACTS)
                       ).astype(np.int8),
        "f03": ((signals >> _BIT["C45S"]) & 1).astype(np.int8),
        "f04": (c18 | c46).astype(np.int8),
        "tp": payee_ps[np.clip(ic.payee_code[inv].astype(np.int64), 0, payee_ps.shape[0] - 1)].astype(np.int8),
        "prescriber": ic.prescriber_rpps[inv].astype(np.int64),
        "cip13": cip13.astype(np.int64),
    }


def select(cols: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in cols.items()}
