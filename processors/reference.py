"""Reference data: the domain code tables, chosen by date, in two forms.

`Reference` is the plain Python form (dicts of rows, lookups by care date), read by the
pure-Python twin. `compile_reference` turns it into `RefArrays`, a named tuple of numpy arrays
that the numba kernels index; the value in force is the row with the greatest
`effective_from` on or before the date (an empty `effective_from` is in force from the start).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np

from fseflow.days import NO_DATE, parse_iso
from fseflow.processors import rules
from fseflow.processors.tables import read_table

YES = "yes"


@dataclass(frozen=True)
class LetterKeyRow:
    code: str
    zone: int
    effective_from: int          # day number; NO_DATE = from the start of the table
    value_cents: int | None
    base_rate_pct: int | None
    category: str
    subject_to_pf: bool
    subject_to_franchise: bool
    billed_by: tuple[str, ...]
    prescription_required: bool
    priced_by_unit: bool


def _opt_int(s: str) -> int | None:
    return int(s) if s != "" else None


class Reference:
    """The code tables as Python objects, with lookups by date."""

    def __init__(self) -> None:
        self.letter_keys: dict[str, list[LetterKeyRow]] = {}
        for r in read_table("letter_keys"):
            row = LetterKeyRow(
                code=r["code"], zone=int(r["tariff_zone"]), effective_from=parse_iso(r["effective_from"]),
                value_cents=_opt_int(r["value_cents"]), base_rate_pct=_opt_int(r["base_rate_pct"]),
                category=r["category"], subject_to_pf=r["subject_to_pf"] == YES,
                subject_to_franchise=r["subject_to_franchise"] == YES,
                billed_by=tuple(r["billed_by"].split("|")),
                prescription_required=r["prescription_required"] == YES,
                priced_by_unit=r["priced_by"] == "unit",
            )
            self.letter_keys.setdefault(row.code, []).append(row)
        self.params: dict[str, list[tuple[int, int | None]]] = {}
        for r in read_table("parameters"):
            if r["name"] == "ROUNDING_MODE":
                continue  # L15: half-up is the only mode the kernels implement
            self.params.setdefault(r["name"], []).append((parse_iso(r["effective_from"]), _opt_int(r["value"])))
        self.specialities: dict[int, tuple[str, ...]] = {
            int(r["code"]): tuple(r["billing_family"].split("|")) for r in read_table("specialities")
        }
        self.exonerations: dict[int, dict[str, str]] = {int(r["exo_mtf"]): r for r in read_table("exonerations")}
        self.natures: dict[str, dict[str, str]] = {r["b2_code"]: r for r in read_table("natures_assurance")}
        self.parcours_in_pathway: dict[str, bool] = {
            (" " if r["qualifier"] == "(space)" else r["qualifier"]): r["in_pathway"] == YES
            for r in read_table("parcours")
        }
        self.payees: dict[int, dict[str, str]] = {int(r["drg_nat"]): r for r in read_table("payees")}
        self.tariff_zones: frozenset[int] = frozenset(int(r["zone"]) for r in read_table("tariff_zones"))

    # -- lookups by date -------------------------------------------------------------
    def letter_key(self, code: str, zone: int, day: int) -> LetterKeyRow | None:
        """Row in force at `day` for the PS's zone, else zone 00 (L03); None if none (C34)."""
        rows = self.letter_keys.get(code, ())
        for z in (zone, 0):
            best: LetterKeyRow | None = None
            for row in rows:
                if row.zone == z and row.effective_from <= day and (best is None or row.effective_from >= best.effective_from):
                    best = row
            if best is not None:
                return best
        return None

    def param(self, name: str, day: int) -> int:
        """Value of a parameters.csv row in force at `day`."""
        best: tuple[int, int | None] | None = None
        for frm, value in self.params[name]:
            if frm <= day and (best is None or frm >= best[0]):
                best = (frm, value)
        if best is None or best[1] is None:
            raise KeyError(f"parameter {name} has no value at day {day}")
        return best[1]

    def nature_full_rate(self, nature: str) -> bool:
        return self.natures[nature]["default_rate_rule"].startswith(rules.FULL_RATE_RULE_PREFIX)

    def nature_pf_franchise_exempt(self, nature: str) -> bool:
        return self.natures[nature]["pf_franchise"].startswith("exempt")


@cache
def load_reference() -> Reference:
    """The shipped tables, loaded once per process."""
    return Reference()


# -- compiled form -------------------------------------------------------------------------
# Column order of the integer matrices below; kernels use these indices.
LK_FROM, LK_VALUE, LK_RATE, LK_CAT, LK_PF, LK_FR, LK_BILLED_BY, LK_PRESC, LK_UNIT = range(9)
# act flags (bit numbers)
ACT_FLAT, ACT_FJ, ACT_KM, ACT_ONCE_DAY, ACT_PREANALYTIC, ACT_OOP_CAT, ACT_SINGLE_QTY, ACT_NIGHT_OK, ACT_COEF = range(9)
# exoneration columns
EXO_KNOWN, EXO_EXONERATING, EXO_CHECK, EXO_SIG_BUDGET, EXO_PF_EXEMPT, EXO_FR_EXEMPT = range(6)
EXONERATING_NO, EXONERATING_YES, EXONERATING_TRANSPORT = 0, 1, 2
CHECK_NONE, CHECK_ALD, CHECK_SIG, CHECK_MATERNITY = 0, 1, 2, 3
# nature columns
NAT_ACCEPTED, NAT_FAMILY, NAT_BUDGET, NAT_FULL_RATE, NAT_PF_FR_EXEMPT, NAT_IS_AT, NAT_IS_MA, NAT_IS_SG = range(8)
BUDGETS = ("AMO", "APIAS", "SIG")
LOT_FAMILIES = ("AS", "MA", "AT", "SG")
MAX_PARAM_ROWS = 4
#: parameters.csv rows the kernels read, in a fixed order: a parameter's kernel id is its index here
KERNEL_PARAMS = (
    "PF_AMOUNT", "PF_DAILY_CAP_PER_PRACTITIONER", "PF_ANNUAL_CAP", "PF_EXEMPT_AGE_BELOW",
    "FRANCHISE_PER_BOX", "FRANCHISE_PER_AUX_ACT", "FRANCHISE_PER_TRIP", "FRANCHISE_DAILY_CAP_AUX",
    "FRANCHISE_DAILY_CAP_TRANSPORT", "FRANCHISE_ANNUAL_CAP", "FRANCHISE_EXEMPT_AGE_BELOW",
    "FLAT_FEE_HEAVY_ACT", "FLAT_FEE_THRESHOLD_TARIFF", "FLAT_FEE_THRESHOLD_COEF", "RATE_OUT_OF_PATHWAY",
    "PARCOURS_EXEMPT_AGE_BELOW", "RATE_FAMILY_PHYSICIAN", "RATE_FAMILY_MIDWIFE", "RATE_FAMILY_DENTIST",
    "RATE_FAMILY_AUXILIARY", "RATE_FAMILY_LAB", "RATE_FAMILY_SUPPLIER", "RATE_FAMILY_TRANSPORTER",
    "RATE_FAMILY_ESTABLISHMENT", "RATE_FAMILY_PHARMACY", "MATERNITY_WINDOW_MONTHS", "EXO55_FROM_MONTHS",
    "TRANSMISSION_DELAY_INSURED_PAID", "TRANSMISSION_DELAY_TIERS_PAYANT", "FORCLUSION_YEARS",
    "PRESCRIPTION_MAX_AGE", "INVOICE_NUMBER_UNIQUENESS",
)
P = {name: i for i, name in enumerate(KERNEL_PARAMS)}
MAX_CODE = 100  # two-digit codes (specialities, exonerations, payees, zones)


class RefArrays(NamedTuple):
    """Reference tables as arrays; every index is documented beside the constants above."""

    lk_rows: np.ndarray        # (n_rows, 9) int64, sorted by act, zone, effective_from
    lk_span: np.ndarray        # (n_acts, MAX_CODE, 2) int32: first row, end row for (act, zone)
    act_flags: np.ndarray      # (n_acts,) int64 bitmask of ACT_*
    act_franchise: np.ndarray  # (n_acts, 3) int32: kind (0 none), per-unit param id, daily cap param id (-1)
    params: np.ndarray         # (n_params, MAX_PARAM_ROWS, 2) int64: effective_from, value; unused rows NO_DATE/-1
    param_n: np.ndarray        # (n_params,) int32
    spe_families: np.ndarray   # (MAX_CODE, 2) int32: family ids in order, -1 none
    family_rate_param: np.ndarray  # (n_families,) int32: param id, -1 none
    exo: np.ndarray            # (MAX_CODE, 6) int32
    natures: np.ndarray        # (n_natures, 8) int32
    parcours_ok: np.ndarray    # (256,) int8: 1 in pathway, 0 not, -1 unknown qualifier
    payee: np.ndarray          # (MAX_CODE, 2) int8: accepted in v1, paid to the PS
    zone_known: np.ndarray     # (MAX_CODE,) int8


@dataclass(frozen=True)
class CompiledReference:
    """`RefArrays` plus the name → id maps the wrapper needs to encode inputs."""

    arrays: RefArrays
    act_ids: dict[str, int]
    nature_ids: dict[str, int]
    param_ids: dict[str, int]
    natures: tuple[str, ...]
    acts: tuple[str, ...]


def _bits(names: tuple[str, ...] | list[str], universe: tuple[str, ...]) -> int:
    out = 0
    for n in names:
        out |= 1 << universe.index(n)
    return out


@cache
def compile_reference() -> CompiledReference:
    ref = load_reference()
    acts = tuple(sorted(ref.letter_keys))
    act_ids = {a: i for i, a in enumerate(acts)}
    param_names = KERNEL_PARAMS
    param_ids = dict(P)

    params = np.full((len(param_names), MAX_PARAM_ROWS, 2), -1, dtype=np.int64)
    params[:, :, 0] = NO_DATE
    param_n = np.zeros(len(param_names), dtype=np.int32)
    for p in KERNEL_PARAMS:
        rows = sorted(ref.params[p], key=lambda r: r[0])
        assert len(rows) <= MAX_PARAM_ROWS, p
        for k, (frm, val) in enumerate(rows):
            params[param_ids[p], k] = (frm, -1 if val is None else val)
        param_n[param_ids[p]] = len(rows)

    rows_sorted = sorted(
        (r for rs in ref.letter_keys.values() for r in rs), key=lambda r: (act_ids[r.code], r.zone, r.effective_from)
    )
    lk_rows = np.zeros((len(rows_sorted), 9), dtype=np.int64)
    lk_span = np.zeros((len(acts), MAX_CODE, 2), dtype=np.int32)
    for i, r in enumerate(rows_sorted):
        lk_rows[i] = (
            r.effective_from, -1 if r.value_cents is None else r.value_cents,
            -1 if r.base_rate_pct is None else r.base_rate_pct, rules.CATEGORIES.index(r.category),
            r.subject_to_pf, r.subject_to_franchise, _bits(r.billed_by, rules.FAMILIES),
            r.prescription_required, r.priced_by_unit,
        )
        a = act_ids[r.code]
        if lk_span[a, r.zone, 1] == 0:
            lk_span[a, r.zone, 0] = i
        lk_span[a, r.zone, 1] = i + 1

    act_flags = np.zeros(len(acts), dtype=np.int64)
    act_franchise = np.full((len(acts), 3), -1, dtype=np.int32)
    act_franchise[:, 0] = 0
    for code, rows in ref.letter_keys.items():
        a = act_ids[code]
        cat = rows[0].category  # a code keeps its category across its rows
        flags = 0
        flags |= (code in rules.FLAT_RULE_CODES) << ACT_FLAT
        flags |= (code in rules.FORFAIT_JOURNALIER_CODES) << ACT_FJ
        flags |= (code in rules.KILOMETRE_CODES) << ACT_KM
        flags |= (cat in rules.ONCE_PER_DAY_CATEGORIES) << ACT_ONCE_DAY
        flags |= (code == rules.PREANALYTIC_CODE) << ACT_PREANALYTIC
        flags |= (cat in rules.OUT_OF_PATHWAY_CATEGORIES) << ACT_OOP_CAT
        flags |= (cat in rules.SINGLE_QUANTITY_CATEGORIES) << ACT_SINGLE_QTY
        flags |= (cat in rules.NIGHT_EMERGENCY_CATEGORIES) << ACT_NIGHT_OK
        flags |= (not rows[0].priced_by_unit) << ACT_COEF
        act_flags[a] = flags
        if cat in rules.FRANCHISE_KINDS:
            kind, per_unit, cap = rules.FRANCHISE_KINDS[cat]
            act_franchise[a] = (kind, param_ids[per_unit], -1 if cap is None else param_ids[cap])

    spe_families = np.full((MAX_CODE, 2), -1, dtype=np.int32)
    for code, fams in ref.specialities.items():
        for k, f in enumerate(fams[:2]):
            spe_families[code, k] = rules.FAMILIES.index(f)
    family_rate_param = np.full(len(rules.FAMILIES), -1, dtype=np.int32)
    for f, p in rules.FAMILY_RATE_PARAM.items():
        family_rate_param[rules.FAMILIES.index(f)] = param_ids[p]

    exo = np.zeros((MAX_CODE, 6), dtype=np.int32)
    checks = {"none": CHECK_NONE, "ald": CHECK_ALD, "sig": CHECK_SIG, "maternity": CHECK_MATERNITY}
    exonerating = {"no": EXONERATING_NO, "yes": EXONERATING_YES, "transport only": EXONERATING_TRANSPORT}
    for code, r in ref.exonerations.items():
        exo[code] = (1, exonerating[r["exonerating"]], checks[r["rights_check"]],
                     r["funding_budget"] == "SIG", r["pf_exempt"] == YES, r["franchise_exempt"] == YES)

    natures = tuple(ref.natures)
    nat = np.zeros((len(natures), 8), dtype=np.int32)
    for i, n in enumerate(natures):
        r = ref.natures[n]
        accepted = r["accepted_in_v1"] == YES
        nat[i] = (
            accepted, LOT_FAMILIES.index(r["lot_family"]) if accepted else -1,
            BUDGETS.index(r["funding_budget"]) if accepted else 0,
            accepted and ref.nature_full_rate(n), accepted and ref.nature_pf_franchise_exempt(n),
            n == "AT", n == "MA", n == "SG",
        )

    parcours_ok = np.full(256, -1, dtype=np.int8)
    for q, ok in ref.parcours_in_pathway.items():
        parcours_ok[ord(q)] = ok
    payee = np.zeros((MAX_CODE, 2), dtype=np.int8)
    for code, r in ref.payees.items():
        payee[code] = (r["accepted_in_v1"] == YES, r["payee"] == "PS")
    zone_known = np.zeros(MAX_CODE, dtype=np.int8)
    for z in ref.tariff_zones:
        zone_known[z] = 1

    arrays = RefArrays(lk_rows, lk_span, act_flags, act_franchise, params, param_n, spe_families,
                       family_rate_param, exo, nat, parcours_ok, payee, zone_known)
    return CompiledReference(arrays, act_ids, {n: i for i, n in enumerate(natures)}, param_ids, natures, acts)
