"""Claims as the kernels take them, and the outcome they give back.

`prepare` turns one decoded file (codecs/columns.py) into `InvoiceCols`/`LineCols`: the decoded
columns the controls need, with codes mapped to reference ids (act, nature, lot family) and the
lot's attributes repeated on each invoice. `Outcome` holds what the kernels compute; `MONEY`
names its per-line cent columns in the order of liquidation.md §1.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fseflow.processors.reference import LOT_FAMILIES, CompiledReference

#: per-line result columns of Outcome.money (liquidation.md §1), then the budget id
MONEY = ("tariff_cents", "base_cents", "excess_cents", "rate_pct", "flat_share_cents", "amo_cents",
         "c2s_cents", "pf_cents", "franchise_cents", "net_cents", "paid_cents", "debt_cents",
         "patient_share_cents", "budget")
(M_TARIFF, M_BASE, M_EXCESS, M_RATE, M_FLAT, M_AMO, M_C2S, M_PF, M_FR, M_NET, M_PAID, M_DEBT,
 M_PATIENT, M_BUDGET) = range(len(MONEY))


class InvoiceCols(NamedTuple):
    ps: np.ndarray                # i8 lot billing number
    lot_speciality: np.ndarray    # i2
    lot_convention: np.ndarray    # i2
    zone: np.ndarray              # i2 lot tariff zone
    lot_family: np.ndarray        # i2 index in LOT_FAMILIES
    nature: np.ndarray            # i2 nature id, -1 unknown
    liq_date: np.ndarray          # i4 liquidation (= reception) date
    nir_id: np.ndarray            # i8
    nir_key: np.ndarray           # i2
    nir_sex: np.ndarray           # i1 first digit of the opener's NIR
    nii_present: np.ndarray       # i1
    nii_id: np.ndarray            # i8
    nii_key: np.ndarray           # i2
    nii_sex: np.ndarray           # i1
    quality: np.ndarray           # i1
    birth_date: np.ndarray        # i4
    birth_rank: np.ndarray        # i1
    invoice_number: np.ndarray    # i8
    nature_operation: np.ndarray  # i1
    exo_reason: np.ndarray        # i2
    exo_justification: np.ndarray # i1
    prescriber_rpps: np.ndarray   # i8
    prescription_date: np.ndarray # i4
    pregnancy_start_date: np.ndarray  # i4
    event_date: np.ndarray        # i4
    stay_number: np.ndarray       # i8
    stay_entry_date: np.ndarray   # i4
    stay_exit_date: np.ndarray    # i4
    payee_code: np.ndarray        # i2
    amc_number: np.ndarray        # i8
    parcours: np.ndarray          # u1
    c14_line: np.ndarray          # i2
    line_start: np.ndarray        # i4
    line_count: np.ndarray        # i4


class LineCols(NamedTuple):
    rec_type: np.ndarray          # i1
    act: np.ndarray               # i4 act id, -1 unknown code
    complement_code: np.ndarray   # i1
    line_exo_flag: np.ndarray     # i1
    executor_rpps: np.ndarray     # i8
    executor_speciality: np.ndarray  # i2
    care_date: np.ndarray         # i4
    care_end_date: np.ndarray     # i4
    quantity: np.ndarray          # i4
    coefficient: np.ndarray       # i4
    coefficient_mco: np.ndarray   # i4
    count: np.ndarray             # i2
    unit_price: np.ndarray        # i8
    base: np.ndarray              # i8 declared
    rate_pct: np.ndarray          # i2 declared
    amo_amount: np.ndarray        # i8 declared
    billed_amount: np.ndarray     # i8
    detail_bad: np.ndarray        # i1
    nabm_uncheckable: np.ndarray  # i1


#: dtype of every kernel column (the public wrapper checks them)
KERNEL_DTYPES = {
    "ps": "i8", "lot_speciality": "i2", "lot_convention": "i2", "zone": "i2", "lot_family": "i2", "nature": "i2",
    "liq_date": "i4", "nir_id": "i8", "nir_key": "i2", "nir_sex": "i1", "nii_present": "i1", "nii_id": "i8",
    "nii_key": "i2", "nii_sex": "i1", "quality": "i1", "birth_date": "i4", "birth_rank": "i1",
    "invoice_number": "i8", "nature_operation": "i1", "exo_reason": "i2", "exo_justification": "i1",
    "prescriber_rpps": "i8", "prescription_date": "i4", "pregnancy_start_date": "i4", "event_date": "i4",
    "stay_number": "i8", "stay_entry_date": "i4", "stay_exit_date": "i4", "payee_code": "i2", "amc_number": "i8",
    "parcours": "u1", "c14_line": "i2", "line_start": "i4", "line_count": "i4",
    "rec_type": "i1", "act": "i4", "complement_code": "i1", "line_exo_flag": "i1", "executor_rpps": "i8",
    "executor_speciality": "i2", "care_date": "i4", "care_end_date": "i4", "quantity": "i4", "coefficient": "i4",
    "coefficient_mco": "i4", "count": "i2", "unit_price": "i8", "base": "i8", "rate_pct": "i2",
    "amo_amount": "i8", "billed_amount": "i8", "detail_bad": "i1", "nabm_uncheckable": "i1",
}


class Outcome(NamedTuple):
    inv_status: np.ndarray        # i1: 1 paid, 0 rejected
    inv_rejects: np.ndarray       # i8 bitmask of REASONS (invoice rejects)
    inv_signals: np.ndarray       # i8 bitmask of REASONS (invoice signals)
    inv_bene: np.ndarray          # i8 beneficiary row, -1 unknown
    line_status: np.ndarray       # i1: 1 paid, 0 rejected
    line_reject: np.ndarray       # i1 reason id of the line's reject, -1 none (C30 also on rejected invoices)
    line_signals: np.ndarray      # i8 bitmask of REASONS (line signals)
    money: np.ndarray             # (n_lines, len(MONEY)) i8


def new_outcome(n_inv: int, n_lines: int) -> Outcome:
    return Outcome(
        np.zeros(n_inv, np.int8), np.zeros(n_inv, np.int64), np.zeros(n_inv, np.int64),
        np.full(n_inv, -1, np.int64), np.zeros(n_lines, np.int8), np.full(n_lines, -1, np.int8),
        np.zeros(n_lines, np.int64), np.zeros((n_lines, len(MONEY)), np.int64),
    )


def _first_digit(raw: np.ndarray) -> np.ndarray:
    b = raw.view(np.uint8).reshape(raw.shape[0], -1)[:, 0] if raw.shape[0] else np.zeros(0, np.uint8)
    return np.where((b >= 48) & (b <= 57), b.astype(np.int16) - 48, -1).astype(np.int8)


def _map_codes(raw: np.ndarray, ids: dict[str, int]) -> np.ndarray:
    """Map fixed-width byte codes to ids through their unique values (few per file)."""
    uniq, inverse = np.unique(raw, return_inverse=True)
    table = np.array([ids.get(u.decode("ascii", "replace").strip(), -1) for u in uniq] or [-1], dtype=np.int32)
    return table[inverse] if raw.shape[0] else np.zeros(0, np.int32)


def prepare(inv: dict[str, np.ndarray], lines: dict[str, np.ndarray], lots: list[Any],
            liq_date: int, ref: CompiledReference) -> tuple[InvoiceCols, LineCols]:
    """Kernel inputs for the accepted invoices of one decoded file, liquidated on `liq_date`."""
    n = inv["lot_idx"].shape[0]
    lot_idx = inv["lot_idx"]
    ps = np.array([l.ps_number for l in lots] or [0], dtype=np.int64)[lot_idx]
    spe = np.array([l.ps_speciality for l in lots] or [0], dtype=np.int16)[lot_idx]
    conv = np.array([l.convention_code for l in lots] or [0], dtype=np.int16)[lot_idx]
    zone = np.array([l.tariff_zone for l in lots] or [0], dtype=np.int16)[lot_idx]
    fam = np.array([LOT_FAMILIES.index(l.family) if l.family in LOT_FAMILIES else -1 for l in lots] or [-1],
                   dtype=np.int16)[lot_idx]
    nii_present = (np.char.strip(inv["nii"]) != b"").astype(np.int8) if n else np.zeros(0, np.int8)
    ic = InvoiceCols(
        ps, spe, conv, zone, fam, _map_codes(inv["nature_code"], ref.nature_ids).astype(np.int16),
        np.full(n, liq_date, np.int32), inv["nir_id"], inv["nir_key"], _first_digit(inv["nir_opener"]),
        nii_present, inv["nii_id"], inv["nii_key"], _first_digit(inv["nii"]), inv["quality"],
        inv["birth_date"], inv["birth_rank"], inv["invoice_number"], inv["nature_operation"],
        inv["exo_reason"], inv["exo_justification"], inv["prescriber_rpps"], inv["prescription_date"],
        inv["pregnancy_start_date"], inv["event_date"], inv["stay_number"], inv["stay_entry_date"],
        inv["stay_exit_date"], inv["payee_code"], inv["amc_number"], inv["parcours"], inv["c14_line"],
        inv["line_start"], inv["line_count"],
    )
    lc = LineCols(
        lines["rec_type"], _map_codes(lines["act_code"], ref.act_ids), lines["complement_code"],
        lines["line_exo_flag"], lines["executor_rpps"], lines["executor_speciality"], lines["care_date"],
        lines["care_end_date"], lines["quantity"], lines["coefficient"], lines["coefficient_mco"],
        lines["count"], lines["unit_price"], lines["base"], lines["rate_pct"], lines["amo_amount"],
        lines["billed_amount"], lines["detail_bad"], lines["nabm_uncheckable"],
    )
    return ic, lc


def concat(parts: list[tuple[InvoiceCols, LineCols]]) -> tuple[InvoiceCols, LineCols]:
    """One batch from several (files in order): line offsets shifted, columns concatenated."""
    if not parts:
        raise ValueError("concat needs at least one batch")
    shift = 0
    invs = []
    for ic, lc in parts:
        invs.append(ic._replace(line_start=ic.line_start + np.int32(shift)))
        shift += lc.rec_type.shape[0]
    ic = InvoiceCols(*[np.concatenate(cols) for cols in zip(*invs)])
    lc = LineCols(*[np.concatenate(cols) for cols in zip(*(p[1] for p in parts))])
    return ic, lc
