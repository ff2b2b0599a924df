"""The columnar contract between the B2 decoder and the kernels.

`b2.decode` returns, for the accepted lots of one file, one numpy array per column below:
`invoices[name]` has one row per invoice (record order), `lines[name]` one row per `3`/`4`
line (record order; the lines of invoice i are rows `line_start[i] : line_start[i] + line_count[i]`).
Kernels index these arrays only; nothing downstream re-reads bytes.

Conventions:
- dates are int32 day numbers (`fseflow.days`), `NO_DATE` for `000000`, and `NO_DATE` with
  the invoice's `c14_field` set when a date is unreadable;
- a numeric field that is not all digits decodes as 0 (or -1 where the column says so) and
  sets `c14_field`/`c14_line` of its invoice (control C14) — the lot is not refused for it;
- amounts are int64 cents; coefficients int32 in their smallest unit;
- text columns are fixed-width bytes (`S<n>`), with their padding kept.
"""
from __future__ import annotations

from typing import Final

import numpy as np

# (name, dtype, source) — source is `record.field` of b2-profile.md §3, or how it is derived.
INVOICE_COLUMNS: Final[tuple[tuple[str, str, str], ...]] = (
    ("lot_idx", "i4", "index of the lot in Decoded.lots"),
    ("record_ordinal", "i4", "rank of the type 2 record in the file, from 1"),
    ("record_seq", "i4", "2.record_seq"),
    ("nir_opener", "S13", "2.nir_opener, raw"),
    ("nir_id", "i8", "unique int of nir_opener: digits (2A/2B -> 19/18) + 10**13 * (1 for 2A, 2 for 2B); -1 if malformed"),
    ("nir_key", "i2", "2.nir_key; -1 if not digits"),
    ("rang", "i2", "2.rang_beneficiaire"),
    ("invoice_number", "i8", "2.invoice_number"),
    ("nature_operation", "i1", "2.nature_operation"),
    ("stay_number", "i8", "2.stay_number"),
    ("grand_regime", "i2", "2.grand_regime"),
    ("caisse", "i2", "2.caisse"),
    ("centre", "i2", "2.centre"),
    ("exo_reason", "i2", "2.exo_reason"),
    ("prescriber_rpps", "i8", "2.prescriber_rpps"),
    ("prescription_date", "i4", "2.prescription_date"),
    ("nature_code", "S2", "2.nature_assurance, raw"),
    ("exo_justification", "i1", "2.exo_justification"),
    ("pregnancy_start_date", "i4", "2.pregnancy_start_date"),
    ("event_date", "i4", "2.event_date"),
    ("event_ref", "i2", "2.event_ref"),
    ("quality", "i1", "2.qualite_beneficiaire"),
    ("birth_date", "i4", "2.birth_date (century rule of b2-profile.md §1)"),
    ("birth_rank", "i1", "2.birth_rank"),
    ("stay_entry_date", "i4", "2.stay_entry_date"),
    ("stay_exit_date", "i4", "2.stay_exit_date"),
    ("payee_code", "i2", "2.payee_code"),
    ("amc_contract_type", "S2", "2.amc_contract_type, raw"),
    ("amc_number", "i8", "2.amc_number"),
    ("nii", "S13", "2S.nii, raw (spaces when absent)"),
    ("nii_id", "i8", "as nir_id for 2S.nii; -1 when absent or malformed"),
    ("nii_key", "i2", "2S.nii_key; -1 when absent or not digits"),
    ("locum_rpps", "i8", "2S.locum_rpps"),
    ("prescribing_finess", "S9", "2S.prescribing_finess, raw"),
    ("parcours", "u1", "2S.parcours_qualifier as an ASCII code (32 = blank)"),
    ("total_base_hosp", "i8", "5.total_base_hosp"),
    ("total_amo_hosp", "i8", "5.total_amo_hosp"),
    ("total_billed_fees", "i8", "5.total_billed_fees"),
    ("total_amo_fees", "i8", "5.total_amo_fees"),
    ("total_insured_share", "i8", "5.total_insured_share"),
    ("total_amc_hosp", "i8", "5.total_amc_hosp"),
    ("total_amc_fees", "i8", "5.total_amc_fees"),
    ("total_base_fees", "i8", "5.total_base_fees"),
    ("total_billed_hosp", "i8", "5.total_billed_hosp"),
    ("line_start", "i4", "first row of the invoice in the line columns"),
    ("line_count", "i4", "number of 3/4 lines of the invoice"),
    ("c14_line", "i2", "C14: 0 when the first unreadable field is in type 2/2S/5, else its 1-based line number; -1 when none"),
)

LINE_COLUMNS: Final[tuple[tuple[str, str, str], ...]] = (
    ("invoice_idx", "i4", "row of the invoice in the invoice columns"),
    ("record_ordinal", "i4", "rank of the 3/4 record in the file, from 1"),
    ("rec_type", "i1", "3 or 4"),
    ("treatment_mode", "i2", "3/4.treatment_mode"),
    ("discipline", "i2", "3.dmt or 4.discipline"),
    ("complement_code", "i1", "4.complement_code; 0 on a 3 line"),
    ("line_exo_flag", "i1", "3/4.line_exo_flag"),
    ("executor_rpps", "i8", "4.executor_rpps; 0 on a 3 line"),
    ("executor_speciality", "i2", "4.executor_speciality; -1 on a 3 line"),
    ("care_date", "i4", "3/4.care_date"),
    ("care_end_date", "i4", "3.care_end_date; NO_DATE on a 4 line"),
    ("act_code", "S4", "3/4.act_code, raw (left-aligned, space-padded)"),
    ("act_suffix", "S1", "3/4.act_code_suffix"),
    ("quantity", "i4", "3/4.quantity"),
    ("coefficient", "i4", "3/4.coefficient, hundredths"),
    ("coefficient_mco", "i4", "3.coefficient_mco, ten-thousandths; 10000 on a 4 line"),
    ("count", "i2", "4.count; 1 on a 3 line"),
    ("unit_price", "i8", "3/4.unit_price"),
    ("base", "i8", "3/4.base (declared)"),
    ("rate_pct", "i2", "3/4.rate_pct (declared)"),
    ("amo_amount", "i8", "3/4.amo_amount (declared)"),
    ("billed_amount", "i8", "3/4.billed_amount"),
    ("amc_amount", "i8", "3/4.amc_amount"),
    ("detail_bad", "i1", "C38: 1 when a detail record contradicts the line (b2-profile.md §3.6-3.11, controls.md C38)"),
    ("nabm_uncheckable", "i1", "C38: 1 on a line with 4B blocks (no NABM table: signal 8038-002)"),
    ("cip13", "i8", "the CIP13 of the line's pharmacy detail record (4P), 0 when it has none (fraud F09)"),
)


def empty_columns(spec: tuple[tuple[str, str, str], ...], n: int) -> dict[str, np.ndarray]:
    """Zeroed arrays for every column of `spec`, `n` rows each."""
    return {name: np.zeros(n, dtype=dtype) for name, dtype, _ in spec}
