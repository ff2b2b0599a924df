"""Declarative rule tables of the controls and the liquidation that the CSVs do not hold.

Everything here is a name → value table read by `reference.py` (compiled for the kernels)
and by `twin.py` (read directly). A profile choice is changed here, not in a kernel.
"""
from __future__ import annotations

from typing import Final, NamedTuple

#: letter-key categories of letter_keys.csv, in a fixed order (their index is the kernel id)
CATEGORIES: Final = (
    "consultation", "visit", "majoration", "technical", "dental", "auxiliary", "biology",
    "pharmacy", "device", "transport", "hospital", "PF", "franchise",
)
#: billing families of specialities.csv and billed_by of letter_keys.csv (index = bit number)
FAMILIES: Final = (
    "physician", "midwife", "dentist", "nurse", "physio", "speech", "orthoptist", "podiatrist",
    "lab", "supplier", "transporter", "establishment", "pharmacy", "fund", "structure",
)
#: rate parameter of each billing family (liquidation.md L06c table)
FAMILY_RATE_PARAM: Final = {
    "physician": "RATE_FAMILY_PHYSICIAN", "midwife": "RATE_FAMILY_MIDWIFE",
    "dentist": "RATE_FAMILY_DENTIST", "nurse": "RATE_FAMILY_AUXILIARY",
    "physio": "RATE_FAMILY_AUXILIARY", "speech": "RATE_FAMILY_AUXILIARY",
    "orthoptist": "RATE_FAMILY_AUXILIARY", "podiatrist": "RATE_FAMILY_AUXILIARY",
    "lab": "RATE_FAMILY_LAB", "supplier": "RATE_FAMILY_SUPPLIER",
    "transporter": "RATE_FAMILY_TRANSPORTER", "establishment": "RATE_FAMILY_ESTABLISHMENT",
    "pharmacy": "RATE_FAMILY_PHARMACY",
}
#: the family of `3` lines (liquidation.md terms, C35)
HOSPITAL_LINE_FAMILY: Final = "establishment"

#: L08: codes that enter the 24 EUR flat rule (profile choice: dental codes, SF and 3 lines do not)
FLAT_RULE_CODES: Final = ("ADC", "ACO", "ADA", "ADE", "ADI", "ATM", "K")
#: L06e: the forfait journalier, rate 0 unless L06a applies or EXO 21 flags the line
FORFAIT_JOURNALIER_CODES: Final = ("FJ",)
#: L06e: exoneration that lifts the forfait journalier to 100 % when it flags the line
FORFAIT_JOURNALIER_EXO: Final = 21
#: C36: travel allowances whose quantity is kilometres
KILOMETRE_CODES: Final = ("IK", "IKM", "IKS")
#: C36: categories that carry quantity 1 (except KILOMETRE_CODES)
SINGLE_QUANTITY_CATEGORIES: Final = ("consultation", "visit", "majoration")
#: C37: categories counted once per (beneficiary, practitioner, care date)
ONCE_PER_DAY_CATEGORIES: Final = ("consultation", "visit")
#: C37: the B 17 pre-analytic fee, once per (beneficiary, care date)
PREANALYTIC_CODE: Final = "B"
PREANALYTIC_COEF_HUNDREDTHS: Final = 1700
#: L06d: categories hit by the out-of-pathway rate for the physician family
OUT_OF_PATHWAY_CATEGORIES: Final = ("consultation", "visit", "technical", "majoration")
#: L11: franchise kind by letter-key category: (kind id, per-unit parameter, daily-cap parameter or None)
FRANCHISE_KINDS: Final = {
    "pharmacy": (1, "FRANCHISE_PER_BOX", None),
    "auxiliary": (2, "FRANCHISE_PER_AUX_ACT", "FRANCHISE_DAILY_CAP_AUX"),
    "transport": (3, "FRANCHISE_PER_TRIP", "FRANCHISE_DAILY_CAP_TRANSPORT"),
}
#: L11: complement code that marks an emergency transport (exempt of franchise; profile choice)
EMERGENCY_COMPLEMENT: Final = 3
#: C47: categories that may carry complement 1 (night) or 3 (emergency) — profile choice
NIGHT_EMERGENCY_CATEGORIES: Final = (
    "consultation", "visit", "majoration", "technical", "dental", "auxiliary", "transport",
)
#: C47: complement code of Sunday / public holiday care
SUNDAY_HOLIDAY_COMPLEMENT: Final = 2
#: L06a / L10 / L11: nature codes read from natures_assurance.csv; full-rate natures are
#: the rows whose default_rate_rule starts with "100 %"
FULL_RATE_RULE_PREFIX: Final = "100 %"
#: C46: longest hospital stay recorded day by day (days; longer stays are clipped)
MAX_STAY_DAYS: Final = 400
#: the instance's production flag (C06): a `T` file is never paid by production
PRODUCTION_FLAG: Final = "P"


class Reason(NamedTuple):
    """One failing control, as the kernels report it (its index is its bit number)."""

    name: str
    control: str
    code: str          # reject code, from reject_codes.csv
    level: str         # "invoice" or "line"
    kind: str          # "reject" or "signal"
    field: str | None  # the faulty field named in the décompte, when one field is at fault


#: every control outcome the kernels can report; order = bit number (< 64)
REASONS: Final = (
    Reason("C14", "C14", "8014-001", "invoice", "reject", None),
    Reason("C15", "C15", "8015-001", "invoice", "reject", "nir_key"),
    Reason("C16", "C16", "0250-050", "invoice", "reject", "nir_opener"),
    Reason("C17", "C17", "8017-001", "invoice", "reject", "care_date"),
    Reason("C18", "C18", "8018-001", "invoice", "reject", "care_date"),
    Reason("C19", "C19", "0317-051", "invoice", "reject", "nature_assurance"),
    Reason("C20", "C20", "0317-051", "invoice", "reject", "event_date"),
    Reason("C21", "C21", "0317-051", "invoice", "reject", "pregnancy_start_date"),
    Reason("C22", "C22", "0317-051", "invoice", "reject", "nature_assurance"),
    Reason("C22S", "C22", "8022-001", "invoice", "signal", None),
    Reason("C23", "C23", "0450-072", "invoice", "reject", "exo_reason"),
    Reason("C24S", "C24", "8024-001", "invoice", "signal", "exo_justification"),
    Reason("C25", "C25", "8025-001", "invoice", "reject", "ps_number"),
    Reason("C26", "C26", "8026-001", "invoice", "reject", "convention_code"),
    Reason("C27", "C27", "8027-001", "invoice", "reject", "payee_code"),
    Reason("C28", "C28", "2900-005", "invoice", "reject", "invoice_number"),
    Reason("C29", "C29", "8029-001", "invoice", "reject", "care_date"),
    Reason("C31S", "C31", "8031-001", "invoice", "signal", None),
    Reason("C32A", "C32", "8032-001", "invoice", "reject", "prescriber_rpps"),
    Reason("C32B", "C32", "8032-002", "invoice", "reject", "prescriber_rpps"),
    Reason("C33", "C33", "0470-049", "invoice", "reject", "prescription_date"),
    Reason("C30", "C30", "8030-001", "line", "reject", "care_date"),
    Reason("C34", "C34", "8034-001", "line", "reject", "act_code"),
    Reason("C35", "C35", "8035-001", "line", "reject", "executor_speciality"),
    Reason("C36", "C36", "8036-001", "line", "reject", "quantity"),
    Reason("C37", "C37", "8037-001", "line", "reject", "act_code"),
    Reason("C38", "C38", "8038-001", "line", "reject", None),
    Reason("C39", "C39", "8039-001", "line", "reject", "care_date"),
    Reason("C42", "C42", "8042-001", "line", "reject", "billed_amount"),
    Reason("C38S", "C38", "8038-002", "line", "signal", None),
    Reason("C40S", "C40", "8040-001", "line", "signal", "unit_price"),
    Reason("C41S", "C41", "8041-001", "line", "signal", None),
    Reason("C43S", "C43", "8043-001", "line", "signal", None),
    Reason("C44S", "C44", "8044-001", "line", "signal", "parcours_qualifier"),
    Reason("C45S", "C45", "8045-001", "line", "signal", None),
    Reason("C46S", "C46", "8046-001", "line", "signal", None),
    Reason("C47S", "C47", "8047-001", "line", "signal", "complement_code"),
)
#: bit number of each reason, by name (R["C16"] == 2)
R: Final = {r.name: i for i, r in enumerate(REASONS)}
