"""B2 profile v1 record layouts (b2-profile.md §3), one declarative table per record type.

Every byte position of the profile lives here and only here, with each field's validation
and, where it is not the record's default, the reject code of a failure. An official value
replaces a profile choice by editing a row of these tables, not the decoder.
"""
from __future__ import annotations

from typing import Final

from ._layout import Field as F
from ._layout import Layout

__all__ = [
    "CCAM_CODES",
    "DEFAULT_CODES",
    "DETAIL_RULES",
    "LAYOUTS",
    "PHARMACY_RATE_CLASS",
    "RECORD_TYPES",
]

#: record type codes in file order of the grammar (b2-profile.md §2), stripped of padding.
RECORD_TYPES: Final = ("000", "1", "2", "2S", "3", "3H", "3F", "4", "4M", "4B", "4P", "5", "9", "999")


def _head() -> list[F]:
    """Bytes 1-11 of every record inside a lot: checked by grammar (C03, C11), not by field."""
    return [
        F("record_type", 1, 3, "A", check=False),
        F("lot_number", 4, 3, "N", check=False),
        F("record_seq", 7, 5, "N", check=False),
    ]


def _ident() -> list[F]:
    """Bytes 12-38 of invoice records after the type 2: a repeat of it, compared byte for byte (C11)."""
    return [
        F("nir_opener", 12, 13, "A", check=False),
        F("nir_key", 25, 2, "N", check=False),
        F("rang_beneficiaire", 27, 3, "N", check=False),
        F("invoice_number", 30, 9, "N", check=False),
    ]


FILE_HEADER = Layout("000", [
    F("record_type", 1, 3, "A", check=False),
    F("lot_number", 4, 3, "N", values=("000",)),
    F("record_seq", 7, 5, "N", values=("00000",)),
    F("emitter_ps_number", 12, 9, "N", key="luhn", code="8008-001"),
    F("software_name", 21, 12, "A", required=True),
    F("software_version", 33, 8, "A", required=True),
    F("norm_version", 41, 4, "A", values=("B2P1",), code="8004-002"),
    F("creation_date", 45, 6, "D"),
    F("creation_time", 51, 6, "N", hi=235959),  # minutes and seconds < 60 are checked by the decoder
    F("dest_regime", 57, 2, "N", values=("08",), code="8005-001"),
    F("dest_caisse", 59, 3, "N", values=("756",), code="8005-001"),
    F("dest_centre", 62, 4, "N", values=("0100",), code="8005-001"),
    F("test_flag", 66, 1, "A", values=("P", "T")),
    F("file_sequence", 67, 5, "N", lo=1),
    F("filler", 72, 57, "F"),
])

LOT_HEADER = Layout("1", [
    *_head(),
    F("ps_number", 12, 9, "N", key="luhn", code="8008-001"),
    F("ps_speciality", 21, 2, "N", table=("specialities", "code")),
    F("convention_code", 23, 1, "N", values=("0", "1", "2", "3", "9")),
    F("tariff_zone", 24, 2, "N", table=("tariff_zones", "zone")),
    F("lot_nature_family", 26, 2, "A", values=("AS", "MA", "AT", "SG")),
    F("lot_creation_date", 28, 6, "D"),
    F("invoice_count_expected", 34, 4, "N", lo=1),
    F("ps_rpps", 38, 11, "N"),
    F("structure_finess", 49, 9, "A"),  # Luhn-type key: a signal of the processors, not a lot fault
    F("filler", 58, 71, "F"),
])

INVOICE_START = Layout("2", [
    *_head(),
    F("nir_opener", 12, 13, "A"),  # format and key: C15
    F("nir_key", 25, 2, "N", check=False),  # -1 when not digits, for C15
    F("rang_beneficiaire", 27, 3, "N"),
    F("invoice_number", 30, 9, "N", lo=1),
    F("nature_operation", 39, 1, "N", lo=1, hi=1),
    F("stay_number", 40, 9, "N"),
    F("grand_regime", 49, 2, "N"),
    F("caisse", 51, 3, "N"),
    F("centre", 54, 4, "N"),
    F("exo_reason", 58, 2, "N"),
    F("prescriber_rpps", 60, 11, "N"),
    F("prescription_date", 71, 6, "D", zero_ok=True),
    F("nature_assurance", 77, 2, "A"),
    F("exo_justification", 79, 1, "N"),
    F("pregnancy_start_date", 80, 6, "D", zero_ok=True),
    F("event_date", 86, 6, "D", zero_ok=True),
    F("event_ref", 92, 3, "N"),
    F("qualite_beneficiaire", 95, 1, "N"),
    F("birth_date", 96, 6, "D", birth=True),
    F("birth_rank", 102, 1, "N"),
    F("stay_entry_date", 103, 6, "D", zero_ok=True),
    F("stay_exit_date", 109, 6, "D", zero_ok=True),
    F("payee_code", 115, 2, "N"),
    F("amc_contract_type", 117, 2, "A"),
    F("amc_number", 119, 10, "N"),
])

INVOICE_COMPLEMENT = Layout("2S", [
    *_head(), *_ident(),
    F("filler", 39, 11, "F"),
    F("nii", 50, 13, "A"),
    F("nii_key", 63, 2, "A"),
    F("locum_rpps", 65, 11, "N"),
    F("prescribing_finess", 76, 9, "A"),
    F("filler", 85, 36, "F"),
    F("parcours_qualifier", 121, 1, "A"),
    F("filler", 122, 7, "F"),
])

HOSPITAL_LINE = Layout("3", [
    *_head(), *_ident(),
    F("treatment_mode", 39, 2, "N"),
    F("dmt", 41, 3, "N"),
    F("care_date", 44, 6, "D"),
    F("care_end_date", 50, 6, "D", zero_ok=True),
    F("act_code", 56, 4, "A"),
    F("act_code_suffix", 60, 1, "A"),
    F("quantity", 61, 3, "N"),
    F("line_exo_flag", 64, 1, "N"),
    F("coefficient", 65, 5, "C", decimals=2),
    F("filler", 70, 1, "F"),
    F("coefficient_mco", 71, 5, "C", decimals=4),
    F("unit_price", 76, 7, "M", decimals=2),
    F("base", 83, 8, "M", decimals=2),
    F("rate_pct", 91, 3, "N"),
    F("amo_amount", 94, 8, "M", decimals=2),
    F("billed_amount", 102, 8, "M", decimals=2),
    F("filler", 110, 12, "F"),
    F("amc_amount", 122, 7, "M", decimals=2),
])

UCD_DETAIL = Layout("3H", [
    *_head(), *_ident(),
    F("filler", 39, 10, "F"),
    F("ucd_code", 49, 7, "N"),
    F("filler", 56, 1, "F"),
    F("fraction_coefficient", 57, 5, "C", decimals=4),
    F("filler", 62, 5, "F"),
    F("unit_purchase_price", 67, 7, "M", decimals=2),
    F("unit_compensable_gap", 74, 7, "M", decimals=2),
    F("total_compensable_gap", 81, 7, "M", decimals=2),
    F("quantity", 88, 3, "N"),
    F("total_billed", 91, 8, "M", decimals=2),
    F("filler", 99, 30, "F"),
])

LPP_DETAIL = Layout("3F", [
    *_head(), *_ident(),
    F("filler", 39, 4, "F"),
    F("lpp_code", 43, 13, "A"),
    F("filler", 56, 14, "F"),
    F("quantity", 70, 2, "N"),
    F("lpp_unit_price", 72, 7, "M", decimals=2),
    F("total_billed", 79, 7, "M", decimals=2),
    F("unit_purchase_price", 86, 7, "M", decimals=2),
    F("unit_gap", 93, 7, "M", decimals=2),
    F("total_gap", 100, 7, "M", decimals=2),
    F("filler", 107, 22, "F"),
])

FEE_LINE = Layout("4", [
    *_head(), *_ident(),
    F("treatment_mode", 39, 2, "N"),
    F("discipline", 41, 3, "N"),
    F("complement_code", 44, 1, "N"),
    F("filler", 45, 9, "F"),
    F("line_exo_flag", 54, 1, "N"),
    F("executor_rpps", 55, 11, "N"),
    F("filler", 66, 2, "F"),
    F("executor_speciality", 68, 2, "N"),
    F("care_date", 70, 6, "D"),
    F("act_code", 76, 4, "A"),
    F("act_code_suffix", 80, 1, "A"),
    F("quantity", 81, 2, "N"),
    F("coefficient", 83, 6, "C", decimals=2),
    F("count", 89, 2, "N"),
    F("unit_price", 91, 7, "M", decimals=2),
    F("base", 98, 7, "M", decimals=2),
    F("rate_pct", 105, 3, "N"),
    F("amo_amount", 108, 7, "M", decimals=2),
    F("billed_amount", 115, 8, "M", decimals=2),
    F("amc_amount", 123, 6, "M", decimals=2),
])

CCAM_DETAIL = Layout("4M", [
    *_head(), *_ident(),
    F("filler", 39, 4, "F"),
    F("ccam_code", 43, 13, "A"),
    F("documentary_extension", 56, 1, "A"),
    F("activity", 57, 1, "N"),
    F("phase", 58, 1, "N"),
    F("modifier_1", 59, 1, "A"),
    F("modifier_2", 60, 1, "A"),
    F("modifier_3", 61, 1, "A"),
    F("modifier_4", 62, 1, "A"),
    F("association_code", 63, 1, "A"),
    F("conditional_reimbursement", 64, 1, "A"),
    F("filler", 65, 6, "F"),
    F("teeth", 71, 32, "A"),
    F("filler", 103, 26, "F"),
])


def _bio_block(i: int, start: int) -> list[F]:
    """NABM block i of a 4B: 16 bytes, all spaces when unused (b2-profile.md §3.10)."""
    return [
        F(f"bio{i}_date", start, 6, "D", blank_ok=True),
        F(f"bio{i}_quantity", start + 6, 2, "N", blank_ok=True),
        F(f"bio{i}_nabm_code", start + 8, 8, "N", blank_ok=True),
    ]


BIOLOGY_DETAIL = Layout("4B", [
    *_head(), *_ident(),
    F("filler", 39, 10, "F"),
    *_bio_block(1, 49), *_bio_block(2, 65), *_bio_block(3, 81), *_bio_block(4, 97), *_bio_block(5, 113),
])

PHARMACY_DETAIL = Layout("4P", [
    *_head(), *_ident(),
    F("dispensing_date", 39, 6, "D"),
    F("cip13", 45, 13, "N"),
    F("boxes", 58, 3, "N"),
    F("box_unit_price", 61, 7, "M", decimals=2),
    F("rate_class", 68, 1, "N"),
    F("total_billed", 69, 8, "M", decimals=2),
    F("generic_flag", 77, 1, "A"),
    F("filler", 78, 51, "F"),
])

INVOICE_END = Layout("5", [
    *_head(), *_ident(),
    F("filler", 39, 3, "F"),
    F("total_base_hosp", 42, 8, "M", decimals=2),
    F("total_amo_hosp", 50, 8, "M", decimals=2),
    F("total_billed_fees", 58, 8, "M", decimals=2),
    F("total_amo_fees", 66, 8, "M", decimals=2),
    F("total_insured_share", 74, 8, "M", decimals=2),
    F("total_amc_hosp", 82, 8, "M", decimals=2),
    F("total_amc_fees", 90, 8, "M", decimals=2),
    F("total_base_fees", 98, 8, "M", decimals=2),
    F("line_count", 106, 3, "N"),
    F("record_count", 109, 3, "N"),
    F("filler", 112, 3, "F"),
    F("total_billed_hosp", 115, 8, "M", decimals=2),
    F("filler", 123, 6, "F"),
])

LOT_END = Layout("9", [
    *_head(),
    F("ps_number", 12, 9, "N", code="8011-003"),
    F("invoice_count", 21, 4, "N"),
    F("record_count", 25, 5, "N"),
    F("total_billed", 30, 10, "M", decimals=2, code="8010-002"),
    F("total_amo_claimed", 40, 10, "M", decimals=2, code="8010-002"),
    F("filler", 50, 79, "F"),
])

FILE_END = Layout("999", [
    F("record_type", 1, 3, "A", check=False),
    F("lot_number", 4, 3, "N", values=("000",)),
    F("record_seq", 7, 5, "N", values=("00000",)),
    F("emitter_ps_number", 12, 9, "N"),
    F("lot_count", 21, 3, "N"),
    F("record_count", 24, 7, "N"),
    F("total_billed", 31, 12, "M", decimals=2),
    F("total_amo_claimed", 43, 12, "M", decimals=2),
    F("filler", 55, 74, "F"),
])

#: every layout by its stripped record type code, in RECORD_TYPES order.
LAYOUTS: Final[dict[str, Layout]] = {
    lay.record_type: lay
    for lay in (
        FILE_HEADER, LOT_HEADER, INVOICE_START, INVOICE_COMPLEMENT, HOSPITAL_LINE, UCD_DETAIL,
        LPP_DETAIL, FEE_LINE, CCAM_DETAIL, BIOLOGY_DETAIL, PHARMACY_DETAIL, INVOICE_END, LOT_END,
        FILE_END,
    )
}
assert tuple(LAYOUTS) == RECORD_TYPES

#: reject code of a field failure, by record type, when the field names no code of its own.
DEFAULT_CODES: Final = {
    "000": "8004-001", "1": "8013-001", "9": "8010-001", "999": "8007-001",
    **{t: "8014-001" for t in ("2", "2S", "3", "3H", "3F", "4", "4M", "4B", "4P", "5")},
}

#: b2-profile.md §2: detail records a `4` line must have, by rule:
#: rule -> (detail record type, minimum, maximum or None); no other detail type is allowed.
DETAIL_RULES: Final = {
    "ccam": ("4M", 1, 1),
    "biology": ("4B", 1, None),
    "pharmacy": ("4P", 1, 1),
    "device": ("3F", 1, None),
}
#: letter keys whose rule is `ccam` (their letter_keys.csv category is `technical`/`dental`,
#: shared with K, SF and ATD, so the codes are listed); the other rules are the category itself.
CCAM_CODES: Final = ("ADC", "ACO", "ADA", "ADE", "ADI", "ATM", "SDE", "END")
#: 4P rate_class expected for each pharmacy letter key (b2-profile.md §3.11).
PHARMACY_RATE_CLASS: Final = {"PH1": 1, "PH7": 7, "PH4": 4, "PH2": 2, "PHN": 0}
