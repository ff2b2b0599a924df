"""B2 profile v1 codec: fast columnar `decode` with the structural controls, `parse`/`encode`.

`decode` reads one file in one numba pass over its records: grammar, numbering, counts and
totals (controls C01-C13, the ARL), field formats (C14) and detail coherence (C38); block by
block it fills the columns of `columns.py`, of which it returns the invoices of the accepted
lots. Positions come from the
layout tables of `b2_layouts.py` compiled into arrays at import; this module knows field
names and roles only. `parse` and `encode` are the plain-Python object-model twins (model.py)
used by tests, tools and the generator.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from numba import njit

from fseflow.config import NJIT_OPTIONS
from fseflow.days import NO_DATE
from fseflow.processors.tables import read_table

from . import columns as _columns
from ._layout import (
    A_AV0,
    A_AV1,
    A_FLAGS,
    A_HI,
    A_LO,
    A_KIND,
    A_LEN,
    A_START,
    FL_BLANK_OK,
    FL_CHECK,
    FL_LUHN,
    FL_SIMPLE,
    K_A,
    K_D,
    K_FILLER,
    NJIT_INLINE,
    RECORD_WIDTH,
    ST_BLANK,
    ST_DIGITS,
    ST_NO_DATE,
    ST_KEY,
    ST_OK,
    ST_RANGE,
    ST_VALUE,
    STATUS_TEXT,
    compile_layouts,
    default_value,
    read_date,
    read_digits,
    read_field,
    scan_record,
)
from .b2_layouts import (
    CCAM_CODES,
    DEFAULT_CODES,
    DETAIL_RULES,
    LAYOUTS,
    PHARMACY_RATE_CLASS,
    RECORD_TYPES,
)
from .exceptions import FieldEncodeError, NotB2Error, StructureError
from .model import B2File, Detail, Invoice, Line, Lot
from .nir import ean13_ok_at, nir_id_at

__all__ = ["ArlReason", "Decoded", "FileInfo", "LotInfo", "decode", "encode", "normalize", "parse"]

# --- result types -------------------------------------------------------------------------


@dataclass(frozen=True)
class ArlReason:
    """One reason of the ARL (returns.md §1, AR2). Never carries a personal value.

    `lot` is the rank of the lot in the file (= its expected lot number), 0 for the file;
    `record_seq` the rank of the record in its lot (0 for file level); `record_ordinal` its
    rank in the file from 1 (0 if none); `position`/`length`/`field` locate the field.
    """

    code: str
    lot: int
    record_seq: int
    record_ordinal: int
    record_type: str
    position: int
    length: int
    field: str
    message: str


@dataclass(frozen=True)
class FileInfo:
    """The file and its `000` header (numbers -1 and dates NO_DATE where unreadable)."""

    name: str
    sha256: str
    size: int
    framing: str
    record_count: int
    lot_number: int
    record_seq: int
    emitter_ps_number: int
    software_name: str
    software_version: str
    norm_version: str
    creation_date: int
    creation_time: int
    dest_regime: int
    dest_caisse: int
    dest_centre: int
    test_flag: str
    file_sequence: int


@dataclass
class LotInfo:
    """One lot as read: header values (-1 / NO_DATE where unreadable or absent), what was found.

    `invoice_count`, `billed` and `amo_claimed` are what the lot holds (type 2 records, Σ type 5
    billed fees + hosp, Σ type 5 AMO fees + hosp), not what its end record declares.
    """

    lot_number: int
    status: str
    ps_number: int
    ps_speciality: int
    convention_code: int
    tariff_zone: int
    family: str
    creation_date: int
    invoice_count_expected: int
    ps_rpps: int
    structure_finess: str
    invoice_count: int
    billed: int
    amo_claimed: int
    record_ordinal: int
    record_count: int
    reasons: list[ArlReason] = field(default_factory=list)


@dataclass
class Decoded:
    """One decoded file: ARL status and reasons, lots, and the columns of the accepted lots."""

    file: FileInfo
    status: str
    reasons: list[ArlReason]
    lots: list[LotInfo]
    invoices: dict[str, np.ndarray]
    lines: dict[str, np.ndarray]
    c14_field: list[str | None]
    reception_date: int | None = None


# --- compiled tables ----------------------------------------------------------------------

(T_000, T_1, T_2, T_2S, T_3, T_3H, T_3F, T_4, T_4M, T_4B, T_4P, T_5, T_9, T_999) = range(14)
_TYPE_INDEX: Final = {code: i for i, code in enumerate(RECORD_TYPES)}
assert _TYPE_INDEX["999"] == T_999 and _TYPE_INDEX["4P"] == T_4P
_LAYOUT_LIST: Final = tuple(LAYOUTS[c] for c in RECORD_TYPES)


def _resolve(table: str, column: str) -> tuple[str, ...]:
    return tuple(row[column] for row in read_table(table))


_CL: Final = compile_layouts(_LAYOUT_LIST, _resolve)
_CODES3: Final = np.array([list(lay.code) for lay in _LAYOUT_LIST], dtype=np.uint8)
_MAXF: Final = _CL.spec.shape[1]

# Roles: the fields the kernel reads by meaning. trole[type, role] = field index or -1.
(R_LOT, R_SEQ, R_NIR, R_KEY, R_RANG, R_INVNO, R_QTY, R_UNIT, R_BASE, R_AMO, R_BILLED, R_AMC,
 R_CARE, R_ACT, R_CODE, R_CLASS, R_PS, R_INVCOUNT, R_RECCOUNT, R_TOTAL_AMO, R_NII,
 R_NII_KEY) = range(22)
R_BIO: Final = 22  # 15 roles: block i (0-4) date, quantity, nabm code at R_BIO + 3 * i + j
R_T5: Final = R_BIO + 15  # 11 roles: type 5 totals in layout order
N_ROLES: Final = R_T5 + 11
_T5_FIELDS: Final = (
    "total_base_hosp", "total_amo_hosp", "total_billed_fees", "total_amo_fees", "total_insured_share",
    "total_amc_hosp", "total_amc_fees", "total_base_fees", "line_count", "record_count", "total_billed_hosp",
)
_INVOICE_RECORDS: Final = ("2S", "3", "3H", "3F", "4", "4M", "4B", "4P", "5")


def _role_fields() -> dict[int, dict[str, str]]:
    every = {c: None for c in RECORD_TYPES}
    roles: dict[int, dict[str, str]] = {
        R_LOT: {c: "lot_number" for c in every},
        R_SEQ: {c: "record_seq" for c in every},
        R_NIR: {c: "nir_opener" for c in ("2", *_INVOICE_RECORDS)},
        R_KEY: {c: "nir_key" for c in ("2", *_INVOICE_RECORDS)},
        R_RANG: {c: "rang_beneficiaire" for c in ("2", *_INVOICE_RECORDS)},
        R_INVNO: {c: "invoice_number" for c in ("2", *_INVOICE_RECORDS)},
        R_QTY: {"3": "quantity", "4": "quantity", "3H": "quantity", "3F": "quantity", "4P": "boxes"},
        R_UNIT: {"3": "unit_price", "4": "unit_price", "4P": "box_unit_price"},
        R_BASE: {"3": "base", "4": "base"},
        R_AMO: {"3": "amo_amount", "4": "amo_amount"},
        R_BILLED: {"3": "billed_amount", "4": "billed_amount", "3H": "total_billed", "3F": "total_billed",
                   "4P": "total_billed", "9": "total_billed"},
        R_AMC: {"3": "amc_amount", "4": "amc_amount"},
        R_CARE: {"3": "care_date", "4": "care_date", "4P": "dispensing_date"},
        R_ACT: {"3": "act_code", "4": "act_code"},
        R_CODE: {"3F": "lpp_code", "4M": "ccam_code", "4P": "cip13"},
        R_CLASS: {"4P": "rate_class"},
        R_PS: {"1": "ps_number", "9": "ps_number"},
        R_INVCOUNT: {"1": "invoice_count_expected", "9": "invoice_count"},
        R_RECCOUNT: {"9": "record_count"},
        R_TOTAL_AMO: {"9": "total_amo_claimed"},
        R_NII: {"2S": "nii"},
        R_NII_KEY: {"2S": "nii_key"},
    }
    for i in range(5):
        for j, what in enumerate(("date", "quantity", "nabm_code")):
            roles[R_BIO + 3 * i + j] = {"4B": f"bio{i + 1}_{what}"}
    for q, name in enumerate(_T5_FIELDS):
        roles[R_T5 + q] = {"5": name}
    return roles


def _build_roles() -> np.ndarray:
    trole = np.full((len(RECORD_TYPES), N_ROLES), -1, dtype=np.int64)
    for role, by_type in _role_fields().items():
        for code, name in by_type.items():
            trole[_TYPE_INDEX[code], role] = LAYOUTS[code].index[name]
    return trole


_TROLE: Final = _build_roles()

# Column sources (names only; positions are in b2_layouts). column -> {record type: field}.
_INVOICE_SOURCES: Final[dict[str, dict[str, str]]] = {
    "record_seq": {"2": "record_seq"}, "nir_opener": {"2": "nir_opener"}, "nir_key": {"2": "nir_key"},
    "rang": {"2": "rang_beneficiaire"}, "nature_code": {"2": "nature_assurance"},
    "quality": {"2": "qualite_beneficiaire"},
    **{c: {"2": c} for c in (
        "invoice_number", "nature_operation", "stay_number", "grand_regime", "caisse", "centre",
        "exo_reason", "prescriber_rpps", "prescription_date", "exo_justification",
        "pregnancy_start_date", "event_date", "event_ref", "birth_date", "birth_rank",
        "stay_entry_date", "stay_exit_date", "payee_code", "amc_contract_type", "amc_number")},
    "nii": {"2S": "nii"}, "locum_rpps": {"2S": "locum_rpps"},
    "prescribing_finess": {"2S": "prescribing_finess"}, "parcours": {"2S": "parcours_qualifier"},
    **{c: {"5": c} for c in _T5_FIELDS if c.startswith("total_")},
}
_INVOICE_DERIVED: Final = ("lot_idx", "record_ordinal", "line_start", "line_count", "c14_line",
                           "nir_id", "nii_id", "nii_key")
(D_LOT, D_ORD, D_LSTART, D_LCOUNT, D_C14, D_NIR_ID, D_NII_ID, D_NII_KEY) = range(8)
_LINE_SOURCES: Final[dict[str, dict[str, str]]] = {
    "treatment_mode": {"3": "treatment_mode", "4": "treatment_mode"},
    "discipline": {"3": "dmt", "4": "discipline"},
    "complement_code": {"4": "complement_code"},
    "line_exo_flag": {"3": "line_exo_flag", "4": "line_exo_flag"},
    "executor_rpps": {"4": "executor_rpps"},
    "executor_speciality": {"4": "executor_speciality"},
    "care_end_date": {"3": "care_end_date"},
    "act_suffix": {"3": "act_code_suffix", "4": "act_code_suffix"},
    "coefficient_mco": {"3": "coefficient_mco"},
    "count": {"4": "count"},
    **{c: {"3": c, "4": c} for c in (
        "care_date", "act_code", "quantity", "coefficient", "unit_price", "base", "rate_pct",
        "amo_amount", "billed_amount", "amc_amount")},
}
#: values of line columns on the record type that does not carry them (columns.py).
_LINE_DEFAULTS: Final = {
    "3": {"complement_code": 0, "executor_rpps": 0, "executor_speciality": -1, "count": 1},
    "4": {"care_end_date": NO_DATE, "coefficient_mco": 10000},
}
_LINE_DERIVED: Final = ("invoice_idx", "record_ordinal", "rec_type", "detail_bad", "nabm_uncheckable", "cip13")
(DL_INV, DL_ORD, DL_RTYPE, DL_BAD, DL_NABM, DL_CIP) = range(6)
#: value of a column whose field cannot be read, when it is not 0 (dates: NO_DATE).
_BAD_VALUES: Final = {"nir_key": -1}
_GROUP_OF_DTYPE: Final = {"i8": 0, "i4": 1, "i2": 2, "i1": 3}


@dataclass(frozen=True)
class _Table:
    """Where each column of one contract table lives in the kernel's outputs."""

    names: tuple[str, ...]
    where: dict[str, tuple[int, int]]  # column -> (group 0-3 numeric | 4 text, row or text index)
    counts: np.ndarray  # rows per numeric group, then the number of text columns
    tcum: np.ndarray  # cumulative text widths
    dtypes: dict[str, str]


def _build_table(spec: tuple[tuple[str, str, str], ...], sources: dict[str, dict[str, str]],
                 derived: tuple[str, ...], dest: np.ndarray, table_id: int) -> _Table:
    names = tuple(name for name, _, _ in spec)
    missing = set(names) - set(sources) - set(derived)
    if missing:
        raise AssertionError(f"columns without a source: {sorted(missing)}")
    counts = [0, 0, 0, 0, 0]
    where: dict[str, tuple[int, int]] = {}
    widths: list[int] = []
    dtypes = {name: dt for name, dt, _ in spec}
    for name, dt, _ in spec:
        if dt.startswith("S") or dt == "u1":
            where[name] = (4, counts[4])
            counts[4] += 1
            widths.append(1 if dt == "u1" else int(dt[1:]))
        else:
            g = _GROUP_OF_DTYPE[dt]
            where[name] = (g, counts[g])
            counts[g] += 1
        for code, fname in sources.get(name, {}).items():
            t, k = _TYPE_INDEX[code], LAYOUTS[code].index[fname]
            f = LAYOUTS[code].fields[k]
            g, row = where[name]
            if g == 4 and f.length != widths[row]:
                raise AssertionError(f"column {name} is {dt}, field {code}.{fname} has {f.length} bytes")
            bad = NO_DATE if f.kind == "D" else _BAD_VALUES.get(name, 0)
            dest[t, k] = (table_id, g, row, bad)
    return _Table(names, where, np.array(counts, np.int64),
                  np.concatenate([[0], np.cumsum(widths)]).astype(np.int64), dtypes)


_DEST: Final = np.zeros((len(RECORD_TYPES), _MAXF, 4), dtype=np.int64)
_INV: Final = _build_table(_columns.INVOICE_COLUMNS, _INVOICE_SOURCES, _INVOICE_DERIVED, _DEST, 1)
_LINE: Final = _build_table(_columns.LINE_COLUMNS, _LINE_SOURCES, _LINE_DERIVED, _DEST, 2)


def _build_plans() -> tuple[np.ndarray, ...]:
    """Split the stored and checked fields of invoice records between the kernel's two ways.

    The record pass handles (`hard[t, :nhard[t]]`) the fields that need more than "all
    digits" (dates, ranges, blank-able blocks) and keeps their values, with the derived
    columns, in a row-major scratch (`sc_of[t, k]` = scratch column and bad value;
    `*_map[c]` = its (group, row); `*_der[d]` = scratch column of derived column d). The
    other stored fields are decoded a column at a time (`icols`, `lcols` rows: source,
    start, length, group, row, bad value, record type or -1; source = 0 type 2, 1 type 2S,
    2 type 5).
    """
    hard = np.full((len(RECORD_TYPES), _MAXF), -1, dtype=np.int64)
    nhard = np.zeros(len(RECORD_TYPES), dtype=np.int64)
    sc_of = np.full((len(RECORD_TYPES), _MAXF, 2), -1, dtype=np.int64)
    icols, lcols = [], []
    maps: dict[int, list[tuple[int, int]]] = {1: [], 2: []}

    def scratch(table: int, where: tuple[int, int]) -> int:
        if where not in maps[table]:
            maps[table].append(where)
        return maps[table].index(where)

    source = {T_2: 0, T_2S: 1, T_5: 2}
    for t in (T_2, T_2S, T_3, T_3H, T_3F, T_4, T_4M, T_4B, T_4P, T_5):
        for k, f in enumerate(_LAYOUT_LIST[t].fields):
            if f.kind == "F":
                continue
            table, g, row, bad = _DEST[t, k].tolist()
            simple = bool(_CL.spec[t, k, A_FLAGS] & FL_SIMPLE)
            if not simple and (f.check or table):
                hard[t, nhard[t]] = k
                nhard[t] += 1
                if table:
                    sc_of[t, k] = (scratch(table, (g, row)), bad)
            elif table == 1:
                icols.append((source[t], f.start - 1, f.length, g, row, bad, -1))
            elif table == 2:
                lcols.append((0, f.start - 1, f.length, g, row, bad, t))
    inv_der = [scratch(1, _INV.where[name]) for name in _INVOICE_DERIVED]
    line_der = [scratch(2, _LINE.where[name]) for name in _LINE_DERIVED]
    return (hard, nhard, sc_of, np.array(icols, dtype=np.int64), np.array(lcols, dtype=np.int64),
            np.array(maps[1], dtype=np.int64), np.array(maps[2], dtype=np.int64),
            np.array(inv_der, dtype=np.int64), np.array(line_der, dtype=np.int64))


_HARD, _NHARD, _SC_OF, _ICOLS, _LCOLS, _INV_MAP, _LINE_MAP, _INV_DER, _LINE_DER = _build_plans()
_LDEF: Final = np.array(
    [(_TYPE_INDEX[code], *_LINE.where[col], v) for code, d in _LINE_DEFAULTS.items() for col, v in d.items()],
    dtype=np.int64,
)


# detail counters of a line in the kernel (nd0..nd4), by detail type
_DETAIL_SLOT: Final = {"3H": 0, "3F": 1, "4M": 2, "4B": 3, "4P": 4}


def _build_letter_keys() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sorted act codes (4 bytes as an int) -> detail rule id and pharmacy rate class."""
    rule_ids = {name: i + 1 for i, name in enumerate(DETAIL_RULES)}
    codes: dict[str, tuple[int, int]] = {}
    for row in read_table("letter_keys"):
        code = row["code"]
        rule = "ccam" if code in CCAM_CODES else row["category"]
        codes[code] = (rule_ids.get(rule, 0), PHARMACY_RATE_CLASS.get(code, -1))
    keys = sorted((int.from_bytes(c.ljust(4).encode("ascii"), "big"), r, p) for c, (r, p) in codes.items())
    drule = np.zeros((len(DETAIL_RULES) + 1, 3), dtype=np.int64)
    for name, (kind, lo, hi) in DETAIL_RULES.items():
        drule[rule_ids[name]] = (_DETAIL_SLOT[kind], lo, -1 if hi is None else hi)
    return (np.array([k for k, _, _ in keys], np.int64), np.array([r for _, r, _ in keys], np.int64),
            np.array([p for _, _, p in keys], np.int64), drule)


_LK_KEYS, _LK_RULE, _LK_RATE, _DRULE = _build_letter_keys()
_RULE_NAMES: Final = ("none", *DETAIL_RULES)

# --- the kernel ---------------------------------------------------------------------------

# Performance notes (see benchmarks/decode.py). The record pass keeps its state in local
# variables and calls only small helpers that LLVM inlines: profiling showed that calls
# passing arrays to bigger helpers spent most of the time in atomic reference counting.
# Columns of simple fields are filled a block at a time (_BLOCK records) while the records
# are still in cache: one column at a time over a whole large file reads it from memory
# once per column.

# fault kinds found by the kernel, and their reject codes (FK_FIELD: the field's own code)
(FK_FRAMING, FK_CHARSET, FK_FILE_STRUCT, FK_UNKNOWN, FK_ORDER, FK_NUMBERING, FK_IDENT, FK_COUNT,
 FK_LOT_TOTALS, FK_INV_TOTALS, FK_FIELD) = range(11)
_FK_CODES: Final = ("8001-001", "8002-001", "8003-001", "8003-002", "8011-001", "8011-002", "8011-003",
                    "8010-001", "8010-002", "8012-001", "")
# fault columns
FC_KIND, FC_LOT, FC_REC, FC_FIELD, FC_POS, FC_A, FC_B, FC_TYPE = range(8)
LOT_VALS: Final = 9  # first column of the type 1 field values in the per-lot array
_BLOCK: Final = 2048  # records (256 KB) between column fills: they are still in the L2 cache
# grammar states inside a lot (b2-profile.md §2)
G_HDR, G_INV, G_2S, G_L3, G_L4, G_END5, G_END9 = range(7)


@njit(**NJIT_OPTIONS)
def _classify(buf, o, ln, codes3):  # type: ignore[no-untyped-def]
    b0 = buf[o] if ln > 0 else 32
    b1 = buf[o + 1] if ln > 1 else 32
    b2 = buf[o + 2] if ln > 2 else 32
    for t in range(codes3.shape[0]):
        if codes3[t, 0] == b0 and codes3[t, 1] == b1 and codes3[t, 2] == b2:
            return t
    return -1


@njit(**NJIT_OPTIONS)
def _first_bad_byte(buf, o):  # type: ignore[no-untyped-def]
    for j in range(128):
        b = buf[o + j]
        if b < 32 or b > 126:
            return j
    return -1


@njit(**NJIT_OPTIONS)
def _field_at(spec, t, j):  # type: ignore[no-untyped-def]
    for k in range(spec.shape[1]):
        if spec[t, k, A_LEN] == 0:
            break
        if spec[t, k, A_START] <= j < spec[t, k, A_START] + spec[t, k, A_LEN]:
            return k
    return -1


# An explicit signature: the kernel passes many literal constants, and numba would otherwise
# compile one specialisation per combination of literal arguments (22 of them).
@njit("int64(int64[:, ::1], int64, int64[::1], int64, int64, int64, int64, int64, int64, int64)", **NJIT_OPTIONS)
def _fault(F, nf, masks, kind, lot, rec, k, pos, a, b):  # type: ignore[no-untyped-def]
    """Record a fault once per (lot, kind), field faults (FK_FIELD) every time; new count."""
    bit = 1 << kind
    m = masks[lot + 1]
    masks[lot + 1] = m | bit
    if (kind != FK_FIELD and m & bit) or nf >= F.shape[0]:
        return nf
    F[nf, FC_KIND] = kind
    F[nf, FC_LOT] = lot
    F[nf, FC_REC] = rec
    F[nf, FC_FIELD] = k
    F[nf, FC_POS] = pos
    F[nf, FC_A] = a
    F[nf, FC_B] = b
    return nf + 1


@njit(**NJIT_OPTIONS)
def _next_state(g, t):  # type: ignore[no-untyped-def]
    """Grammar of a lot (b2-profile.md §2): the state after record t, or -1 if t is not allowed."""
    in_line = g == G_2S or g == G_L3 or g == G_L4
    if t == T_2:
        return G_INV if (g == G_HDR or g == G_END5) else -1
    if t == T_2S:
        return G_2S if g == G_INV else -1
    if t == T_3:
        return G_L3 if in_line else -1
    if t == T_4:
        return G_L4 if in_line else -1
    if t == T_3H:
        return G_L3 if g == G_L3 else -1
    if t == T_3F:
        return g if (g == G_L3 or g == G_L4) else -1
    if t == T_4M or t == T_4B or t == T_4P:
        return G_L4 if g == G_L4 else -1
    if t == T_5:
        return G_END5 if (g == G_L3 or g == G_L4) else -1
    if t == T_9:
        return G_END9 if g == G_END5 else -1
    return -1


@njit(**NJIT_OPTIONS)
def _code_format(buf, q, n, letters, digits):  # type: ignore[no-untyped-def]
    """`letters` capitals, then `digits` digits, then spaces up to n bytes."""
    ok = True
    for j in range(n):
        b = buf[q + j]
        if j < letters:
            ok &= 65 <= b <= 90
        elif j < letters + digits:
            ok &= 48 <= b <= 57
        else:
            ok &= b == 32
    return ok


@njit(**NJIT_OPTIONS)
def _lookup(keys, key):  # type: ignore[no-untyped-def]
    lo, hi = 0, keys.size
    while lo < hi:
        mid = (lo + hi) // 2
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < keys.size and keys[lo] == key else -1


@njit(**NJIT_OPTIONS)
def _first_bad_simple(buf, o, t, spec):  # type: ignore[no-untyped-def]
    """First checked simple numeric field that is not all digits (records scan_record flagged)."""
    for k in range(spec.shape[1]):
        if spec[t, k, A_LEN] == 0:
            break
        f = spec[t, k, A_FLAGS]
        if f & FL_CHECK and f & FL_SIMPLE and spec[t, k, A_KIND] != K_A \
                and read_digits(buf, o + spec[t, k, A_START], spec[t, k, A_LEN]) < 0:
            return k
    return -1


@njit(**NJIT_OPTIONS)
def _flush(buf, roff, rtype, cols, sc, scmap, ldef, m8, m4, m2, m1, txt, tcum, cap, i0, i1):  # type: ignore[no-untyped-def]
    """Fill rows i0..i1 of one table: simple fields from the records, one column at a time,
    then the values the record pass left in the scratch `sc`, then per-type defaults.

    roff[i, source] = offset of the record of row i that holds a column (-1: none); a column
    with a record type (lines) fills only the rows of that type.
    """
    for c in range(cols.shape[0]):
        src = cols[c, 0]
        start = cols[c, 1]
        n = cols[c, 2]
        g = cols[c, 3]
        row = cols[c, 4]
        bad = cols[c, 5]
        ty = cols[c, 6]
        if g == 4:
            base = cap * tcum[row]
            for i in range(i0, i1):
                o = roff[i, src]
                if o >= 0 and (ty < 0 or rtype[i] == ty):
                    for j in range(n):
                        txt[base + i * n + j] = buf[o + start + j]
            continue
        # one loop per dtype group, so that the loop body has no branch on it
        if g == 0:
            for i in range(i0, i1):
                o = roff[i, src]
                if o >= 0 and (ty < 0 or rtype[i] == ty):
                    v = read_digits(buf, o + start, n)
                    m8[row, i] = v if v >= 0 else bad
        elif g == 1:
            for i in range(i0, i1):
                o = roff[i, src]
                if o >= 0 and (ty < 0 or rtype[i] == ty):
                    v = read_digits(buf, o + start, n)
                    m4[row, i] = v if v >= 0 else bad
        elif g == 2:
            for i in range(i0, i1):
                o = roff[i, src]
                if o >= 0 and (ty < 0 or rtype[i] == ty):
                    v = read_digits(buf, o + start, n)
                    m2[row, i] = v if v >= 0 else bad
        else:
            for i in range(i0, i1):
                o = roff[i, src]
                if o >= 0 and (ty < 0 or rtype[i] == ty):
                    v = read_digits(buf, o + start, n)
                    m1[row, i] = v if v >= 0 else bad
    for c in range(scmap.shape[0]):
        g = scmap[c, 0]
        row = scmap[c, 1]
        for i in range(i0, i1):
            if g == 0:
                m8[row, i] = sc[i, c]
            elif g == 1:
                m4[row, i] = sc[i, c]
            elif g == 2:
                m2[row, i] = sc[i, c]
            else:
                m1[row, i] = sc[i, c]
    for e in range(ldef.shape[0]):
        ty, g, row, v = ldef[e, 0], ldef[e, 1], ldef[e, 2], ldef[e, 3]
        for i in range(i0, i1):
            if rtype[i] == ty:
                if g == 0:
                    m8[row, i] = v
                elif g == 1:
                    m4[row, i] = v
                elif g == 2:
                    m2[row, i] = v
                else:
                    m1[row, i] = v


@njit(**NJIT_OPTIONS)
def _file_record(buf, o, t, r, n, fb, lens, spec, av, pivot, line_mode, hdr, F, nf, masks):  # type: ignore[no-untyped-def]
    """A 000 or 999 record: its fields into hdr, and its file-level faults. (nf, LF inside)."""
    lf = 0
    if fb:
        nf = _fault(F, nf, masks, FK_FRAMING, -1, r, -1, 0, lens[r], fb)
    else:
        h = 0 if t == T_000 else 2
        for k in range(spec.shape[1]):
            if spec[t, k, A_LEN] == 0:
                break
            if spec[t, k, A_KIND] != K_FILLER:
                hdr[h, k], hdr[h + 1, k] = read_field(buf, o, spec, t, k, av, pivot)
        j = _first_bad_byte(buf, o)
        if j >= 0:
            nf = _fault(F, nf, masks, FK_CHARSET, -1, r, _field_at(spec, t, j), j + 1, buf[o + j], 0)
            lf = 1 if line_mode and buf[o + j] == 10 else 0
    if t == T_000 and r != 0:
        nf = _fault(F, nf, masks, FK_FILE_STRUCT, -1, r, -1, 0, 1, 0)
    if t == T_999 and r != n - 1:
        nf = _fault(F, nf, masks, FK_FILE_STRUCT, -1, r, -1, 0, 2, 0)
    return nf, lf


@njit(**NJIT_OPTIONS)
def _lot_header(buf, o, r, lot, spec, av, pivot, lots, F, nf, masks):  # type: ignore[no-untyped-def]
    """A lot header's field values into lots[lot, LOT_VALS:], and its field faults (C08, C13)."""
    t = np.int64(T_1)
    for k in range(spec.shape[1]):
        if spec[t, k, A_LEN] == 0:
            break
        kind = spec[t, k, A_KIND]
        if kind == K_FILLER or (kind == K_A and not spec[t, k, A_FLAGS] & FL_CHECK):
            continue
        v, st = read_field(buf, o, spec, t, k, av, pivot)
        if kind != K_A:
            lots[lot, LOT_VALS + k] = v if not (ST_DIGITS <= st <= ST_NO_DATE) else (NO_DATE if kind == K_D else -1)
        if st >= ST_DIGITS and spec[t, k, A_FLAGS] & FL_CHECK:
            nf = _fault(F, nf, masks, FK_FIELD, lot, r, k, 0, st, 0)
    return nf


@njit(**NJIT_OPTIONS)
def _lot_end(buf, o, r, lot, seq, ok5, offs, spec, av, trole, pivot, lots, F, nf, masks):  # type: ignore[no-untyped-def]
    """A lot end against its lot (C10, C11 PS repeat); its totals are already in lots[lot, 7:9]."""
    t = np.int64(T_9)
    for k in range(spec.shape[1]):
        if spec[t, k, A_LEN] == 0:
            break
        if spec[t, k, A_FLAGS] & FL_CHECK:
            st = read_field(buf, o, spec, t, k, av, pivot)[1]
            if st >= ST_DIGITS:
                nf = _fault(F, nf, masks, FK_FIELD, lot, r, k, 0, st, 0)
    kp = trole[t, R_PS]
    p = o + spec[t, kp, A_START]
    q = offs[lots[lot, 2]] + spec[T_1, trole[T_1, R_PS], A_START]
    same = True
    for j in range(spec[t, kp, A_LEN]):
        same &= buf[p + j] == buf[q + j]
    if read_digits(buf, p, spec[t, kp, A_LEN]) >= 0 and not same:
        nf = _fault(F, nf, masks, FK_IDENT, lot, r, kp, 0, 0, 0)
    kn = trole[t, R_INVCOUNT]
    v = read_digits(buf, o + spec[t, kn, A_START], spec[t, kn, A_LEN])
    if v >= 0 and v != lots[lot, 3]:
        nf = _fault(F, nf, masks, FK_COUNT, lot, r, kn, 0, v, lots[lot, 3])
    kr = trole[t, R_RECCOUNT]
    v = read_digits(buf, o + spec[t, kr, A_START], spec[t, kr, A_LEN])
    if v >= 0 and v != seq:
        nf = _fault(F, nf, masks, FK_COUNT, lot, r, kr, 0, v, seq)
    vb = lots[lot, 7]
    va = lots[lot, 8]
    if ok5:
        if vb >= 0 and vb != lots[lot, 4]:
            nf = _fault(F, nf, masks, FK_LOT_TOTALS, lot, r, trole[t, R_BILLED], 0, vb, lots[lot, 4])
        elif va >= 0 and va != lots[lot, 5]:
            nf = _fault(F, nf, masks, FK_LOT_TOTALS, lot, r, trole[t, R_TOTAL_AMO], 0, va, lots[lot, 5])
    return nf


@njit(**NJIT_OPTIONS)
def _close_lot(lots, lot, conf, ended, ok5, trole, F, nf, masks):  # type: ignore[no-untyped-def]
    """End of a lot: its lot end record present (C11), header count = invoices found (C10)."""
    if not conf:
        if not ended:
            nf = _fault(F, nf, masks, FK_ORDER, lot, lots[lot, 0] + lots[lot, 1] - 1, -1, 0, 1, 0)
        kx = trole[T_1, R_INVCOUNT]
        declared = lots[lot, LOT_VALS + kx]
        if declared >= 0 and declared != lots[lot, 3]:
            nf = _fault(F, nf, masks, FK_COUNT, lot, lots[lot, 2], kx, 0, declared, lots[lot, 3])
    if not ok5:
        lots[lot, 4] = -1
        lots[lot, 5] = -1
    return nf


@njit(**NJIT_INLINE)
def _invoice_totals(buf, o, spec, trole, s3b, s3a, s3bi, s3c, s4b, s4a, s4bi, s4c, nlines, nrec):  # type: ignore[no-untyped-def]
    """C12: the first type 5 total or count that is not the sum over the lines: (field, declared, sum)."""
    expect = (s3b, s3a, s4bi, s4a, (s3bi + s4bi) - (s3a + s4a), s3c, s4c, s4b, nlines, nrec, s3bi)
    for q in range(11):
        k = trole[T_5, R_T5 + q]
        v = read_digits(buf, o + spec[T_5, k, A_START], spec[T_5, k, A_LEN])
        if v != expect[q]:
            return k, v, expect[q]
    return -1, 0, 0


@njit(**NJIT_INLINE)
def _check_detail(buf, o, t, spec, trole, pivot, lqty, lunit, lbilled, lcare, lrate):  # type: ignore[no-untyped-def]
    """C38 of one detail record against its parent line: (bad, its total billed, has NABM blocks)."""
    bad = False
    billed = 0
    nabm = 0
    if t == T_3H or t == T_3F:
        billed = max(read_digits(buf, o + spec[t, trole[t, R_BILLED], A_START], spec[t, trole[t, R_BILLED], A_LEN]), 0)
        bad = read_digits(buf, o + spec[t, trole[t, R_QTY], A_START], spec[t, trole[t, R_QTY], A_LEN]) < 1
        if t == T_3F:
            kc = trole[t, R_CODE]
            bad = bad or not _code_format(buf, o + spec[t, kc, A_START], spec[t, kc, A_LEN], 0, 7)
    elif t == T_4M:
        kc = trole[t, R_CODE]
        bad = not _code_format(buf, o + spec[t, kc, A_START], spec[t, kc, A_LEN], 4, 3)
    elif t == T_4B:
        blocks = 0
        for b in range(5):
            nblank = 0
            for part in range(3):
                k = trole[t, R_BIO + 3 * b + part]
                p = o + spec[t, k, A_START]
                blank = True
                for j in range(spec[t, k, A_LEN]):
                    blank &= buf[p + j] == 32
                nblank += blank
            if nblank == 3:
                continue
            blocks += 1
            kd = trole[t, R_BIO + 3 * b]
            kq = trole[t, R_BIO + 3 * b + 1]
            vd = read_date(buf, o + spec[t, kd, A_START], 0, pivot)[0]
            vq = read_digits(buf, o + spec[t, kq, A_START], spec[t, kq, A_LEN])
            if nblank > 0 or vd != lcare or vq < 1:
                bad = True
        if blocks == 0:
            bad = True
        else:
            nabm = 1
    else:  # T_4P
        boxes = read_digits(buf, o + spec[t, trole[t, R_QTY], A_START], spec[t, trole[t, R_QTY], A_LEN])
        price = read_digits(buf, o + spec[t, trole[t, R_UNIT], A_START], spec[t, trole[t, R_UNIT], A_LEN])
        total = read_digits(buf, o + spec[t, trole[t, R_BILLED], A_START], spec[t, trole[t, R_BILLED], A_LEN])
        rate = read_digits(buf, o + spec[t, trole[t, R_CLASS], A_START], spec[t, trole[t, R_CLASS], A_LEN])
        care = read_date(buf, o + spec[t, trole[t, R_CARE], A_START], 0, pivot)[0]
        bad = (not ean13_ok_at(buf, o + spec[t, trole[t, R_CODE], A_START]) or boxes != lqty or price != lunit
               or rate != lrate or total != boxes * price or total != lbilled or care != lcare)
    return bad, billed, nabm


@njit(**NJIT_OPTIONS)
def _kernel(buf, offs, lens, fbad, line_mode, pivot, spec, dmask, av, trole, hard, nhard, sc_of,  # type: ignore[no-untyped-def]
            icols, lcols, inv_map, line_map, inv_der, line_der, ldef, codes3, inv_counts, inv_tcum,
            line_counts, line_tcum, lk_keys, lk_rule, lk_rate, drule):
    """Decode the records of one file. `lens`/`fbad` may be empty: every record is whole.

    Pass 1 types the records. Pass 2 walks them in order: framing, characters, grammar,
    numbering, counts and totals (the ARL), C14 and C38, and the fields that need more than
    "all digits" (dates, ranges); every _BLOCK records it fills the columns of the finished
    rows. Returns the invoice and line column matrices by dtype group (the last i8 invoice
    row holds the C14 field as type * 256 + field, -1 for none), per-lot values, the faults,
    the 000/999 field values and statuses, and [invoices, lines, LF inside a record, lots,
    type of the last record].
    """
    n = offs.size
    whole = lens.size == 0
    rt = np.empty(n, np.int64)
    n2 = 0
    n34 = 0
    n1 = 0
    for r in range(n):
        t = _classify(buf, offs[r], 128 if whole else lens[r], codes3)
        rt[r] = t
        if t == T_2:
            n2 += 1
        elif t == T_3 or t == T_4:
            n34 += 1
        elif t == T_1:
            n1 += 1
    i8 = np.zeros((inv_counts[0] + 1, n2), np.int64)
    i4 = np.zeros((inv_counts[1], n2), np.int32)
    i2 = np.zeros((inv_counts[2], n2), np.int16)
    i1 = np.zeros((inv_counts[3], n2), np.int8)
    itxt = np.full(n2 * inv_tcum[-1], 32, np.uint8)
    l8 = np.zeros((line_counts[0], n34), np.int64)
    l4 = np.zeros((line_counts[1], n34), np.int32)
    l2 = np.zeros((line_counts[2], n34), np.int16)
    l1 = np.zeros((line_counts[3], n34), np.int8)
    ltxt = np.full(n34 * line_tcum[-1], 32, np.uint8)
    isc = np.zeros((n2, inv_map.shape[0]), np.int64)  # record-pass values, row-major
    lsc = np.zeros((n34, line_map.shape[0]), np.int64)
    inv_c14 = np.full(n2, -1, np.int64)
    inv_off = np.full((n2, 3), -1, np.int64)  # offsets of the 2, 2S and 5 records of each invoice
    line_off = np.full((n34, 1), -1, np.int64)
    line_type = np.zeros(n34, np.int64)
    no_type = np.full(n2, -1, np.int64)
    no_defaults = ldef[:0]
    ncap = max(n1, 1)
    nf1 = spec.shape[1]
    # per lot: first record, records, header record, invoices found, Σ5 billed, Σ5 amo,
    # 9 record, 9 total_billed, 9 total_amo (-1 unreadable), then the type 1 field values
    lots = np.full((ncap, LOT_VALS + nf1), -1, np.int64)
    F = np.zeros((ncap * (16 + 2 * nf1) + 16, 8), np.int64)
    hdr = np.full((4, nf1), -1, np.int64)  # 000 values, 000 statuses, 999 values, 999 statuses
    masks = np.zeros(ncap + 1, np.int64)
    # State in local variables (see the performance notes), typed int64/bool from the start:
    # a literal initial value would make numba compile the callees once more for it.
    zero = np.int64(0)
    yes = np.bool_(True)
    nf = zero
    lf_inside = zero
    # lot state
    lot = np.int64(-1)
    seq = zero
    g = np.int64(G_HDR)
    conf = yes
    ok5 = yes
    # invoice state
    n_inv = zero
    n_line = zero
    ci = np.int64(-1)
    rec2 = zero
    nrec = zero
    nlines = zero
    s3b = s3a = s3bi = s3c = s4b = s4a = s4bi = s4c = zero
    sumok = yes
    # line state
    cl = np.int64(-1)
    lt = zero
    lqty = lunit = lbilled = lcare = lrule = lrate = lrec = zero
    nd0 = nd1 = nd2 = nd3 = nd4 = zero
    sum3h = sum3f = zero
    lbad = zero
    lnabm = zero
    lcip = zero
    done_inv = zero
    done_line = zero

    for r in range(n + 1):
        if r % _BLOCK == 0 and r > 0:
            # fill the columns of the finished rows, whose records are still in cache; the open
            # invoice and line still get values (C14, line count, detail_bad) from later records
            ready = n_inv - (1 if ci >= 0 else 0)
            _flush(buf, inv_off, no_type, icols, isc, inv_map, no_defaults, i8, i4, i2, i1, itxt, inv_tcum, n2,
                   done_inv, ready)
            done_inv = ready
            ready = n_line - (1 if cl >= 0 else 0)
            _flush(buf, line_off, line_type, lcols, lsc, line_map, ldef, l8, l4, l2, l1, ltxt, line_tcum, n34,
                   done_line, ready)
            done_line = ready
        t = rt[r] if r < n else T_999
        is_detail = t == T_3H or t == T_3F or t == T_4M or t == T_4B or t == T_4P
        if cl >= 0 and not conf and t >= 0 and not is_detail:
            # end of a 3/4 line: required detail records (C11), detail totals (C38)
            if lt == T_4:
                total = nd0 + nd1 + nd2 + nd3 + nd4
                if lrule == 0:
                    ok = total == 0
                else:
                    slot = drule[lrule, 0]
                    cnt = nd0 if slot == 0 else nd1 if slot == 1 else nd2 if slot == 2 else nd3 if slot == 3 else nd4
                    ok = cnt >= drule[lrule, 1] and (drule[lrule, 2] < 0 or cnt <= drule[lrule, 2]) and cnt == total
                if not ok:
                    nf = _fault(F, nf, masks, FK_ORDER, lot, lrec, -1, 0, 3, lrule)
            if (nd0 > 0 and sum3h != lbilled) or (nd1 > 0 and sum3f != lbilled):
                lbad = 1
            lsc[cl, line_der[DL_BAD]] = lbad
            lsc[cl, line_der[DL_NABM]] = lnabm
            lsc[cl, line_der[DL_CIP]] = lcip
            cl = -1
        if r == n or t == T_1:
            if lot >= 0:
                nf = _close_lot(lots, lot, conf, g == G_END9, ok5, trole, F, nf, masks)
            if r == n:
                break
        o = offs[r]
        fb = 0 if whole else fbad[r]
        if t == T_000 or t == T_999:
            nf, lf = _file_record(buf, o, t, r, n, fb, lens, spec, av, pivot, line_mode, hdr, F, nf, masks)
            lf_inside |= lf
            continue
        if lot < 0 and t != T_1:  # the file grammar has no record between 000 and the first lot
            nf = _fault(F, nf, masks, FK_FILE_STRUCT, -1, r, -1, 0, 4, 0)
            continue
        if t == T_1:
            lot += 1
            lots[lot, 0] = r
            lots[lot, 1] = 0
            lots[lot, 3] = 0
            lots[lot, 4] = 0
            lots[lot, 5] = 0
            seq = 0
            g = G_HDR
            conf = False
            ok5 = True
            ci = -1
            cl = -1
            lots[lot, 2] = r
        seq += 1
        lots[lot, 1] += 1
        if fb:
            nf = _fault(F, nf, masks, FK_FRAMING, lot, r, -1, 0, lens[r], fb)
            conf = True
            continue
        if t >= 0:
            bad_char, bad_digit = scan_record(buf, o, dmask, t)
        else:
            bad_char, bad_digit = True, True
        if bad_char:
            j = _first_bad_byte(buf, o)
            if j >= 0:
                nf = _fault(F, nf, masks, FK_CHARSET, lot, r, _field_at(spec, t, j) if t >= 0 else -1, j + 1,
                            buf[o + j], 0)
                if line_mode and buf[o + j] == 10:
                    lf_inside = 1
        if t < 0:
            nf = _fault(F, nf, masks, FK_UNKNOWN, lot, r, -1, 0, 0, 0)
            continue
        if t == T_2:
            lots[lot, 3] += 1
        elif t == T_5:  # what the lot holds (LotInfo), whatever its state
            vb = read_digits(buf, o + spec[t, trole[t, R_T5 + 2], A_START], spec[t, trole[t, R_T5 + 2], A_LEN])
            vh = read_digits(buf, o + spec[t, trole[t, R_T5 + 10], A_START], spec[t, trole[t, R_T5 + 10], A_LEN])
            va = read_digits(buf, o + spec[t, trole[t, R_T5 + 3], A_START], spec[t, trole[t, R_T5 + 3], A_LEN])
            vah = read_digits(buf, o + spec[t, trole[t, R_T5 + 1], A_START], spec[t, trole[t, R_T5 + 1], A_LEN])
            if vb < 0 or vh < 0 or va < 0 or vah < 0:
                ok5 = False
            else:
                lots[lot, 4] += vb + vh
                lots[lot, 5] += va + vah
        elif t == T_9:  # what the lot end declares (C07 sums it), whatever the lot's state
            lots[lot, 6] = r
            kb = trole[t, R_BILLED]
            ka = trole[t, R_TOTAL_AMO]
            lots[lot, 7] = read_digits(buf, o + spec[t, kb, A_START], spec[t, kb, A_LEN])
            lots[lot, 8] = read_digits(buf, o + spec[t, ka, A_START], spec[t, ka, A_LEN])
        if conf:
            continue
        # numbering (C11): lot number = rank of the lot, record_seq = rank in the lot
        kl = trole[t, R_LOT]
        v = read_digits(buf, o + spec[t, kl, A_START], spec[t, kl, A_LEN])
        if v != lot + 1:
            nf = _fault(F, nf, masks, FK_NUMBERING, lot, r, kl, 0, v, lot + 1)
        ks = trole[t, R_SEQ]
        v = read_digits(buf, o + spec[t, ks, A_START], spec[t, ks, A_LEN])
        if v != seq:
            nf = _fault(F, nf, masks, FK_NUMBERING, lot, r, ks, 0, v, seq)
        if t == T_1:
            nf = _lot_header(buf, o, r, lot, spec, av, pivot, lots, F, nf, masks)
            continue
        gn = _next_state(g, t)
        if gn < 0:
            nf = _fault(F, nf, masks, FK_ORDER, lot, r, -1, 0, 0, g)
            conf = True
            cl = -1
            continue
        g = gn
        if t == T_9:
            nf = _lot_end(buf, o, r, lot, seq, ok5, offs, spec, av, trole, pivot, lots, F, nf, masks)
            continue
        # an invoice record: identification repeat (C11), then its row
        if t == T_2:
            ci = n_inv
            n_inv += 1
            rec2 = o
            nrec = 1
            nlines = 0
            s3b = s3a = s3bi = s3c = s4b = s4a = s4bi = s4c = 0
            sumok = True
            inv_off[ci, 0] = o
            isc[ci, inv_der[D_LOT]] = lot
            isc[ci, inv_der[D_ORD]] = r + 1
            isc[ci, inv_der[D_LSTART]] = n_line
            isc[ci, inv_der[D_C14]] = -1
            isc[ci, inv_der[D_NIR_ID]] = nir_id_at(buf, o + spec[t, trole[t, R_NIR], A_START])
        else:
            nrec += 1
            diff = 0
            for role in range(R_NIR, R_INVNO + 1):  # branch-free: they are nearly always equal
                k = trole[t, role]
                p = o + spec[t, k, A_START]
                q = rec2 + spec[T_2, trole[T_2, role], A_START]
                for j in range(spec[t, k, A_LEN]):
                    diff |= buf[p + j] ^ buf[q + j]
            if diff != 0:
                for role in range(R_NIR, R_INVNO + 1):
                    k = trole[t, role]
                    p = o + spec[t, k, A_START]
                    q = rec2 + spec[T_2, trole[T_2, role], A_START]
                    same = True
                    for j in range(spec[t, k, A_LEN]):
                        same &= buf[p + j] == buf[q + j]
                    if not same:
                        nf = _fault(F, nf, masks, FK_IDENT, lot, r, k, 0, 0, 0)
                        break
        if t == T_3 or t == T_4:
            cl = n_line
            n_line += 1
            nlines += 1
            lt = t
            lrec = r
            nd0 = nd1 = nd2 = nd3 = nd4 = 0
            sum3h = sum3f = 0
            lbad = 0
            lnabm = 0
            lcip = 0
            line_off[cl, 0] = o
            line_type[cl] = t
            lsc[cl, line_der[DL_INV]] = ci
            lsc[cl, line_der[DL_ORD]] = r + 1
            lsc[cl, line_der[DL_RTYPE]] = 3 if t == T_3 else 4
        elif t == T_2S:
            inv_off[ci, 1] = o
            kn = trole[t, R_NII]
            p = o + spec[t, kn, A_START]
            blank = True
            for j in range(spec[t, kn, A_LEN]):
                blank &= buf[p + j] == 32
            nii = -1 if blank else nir_id_at(buf, p)
            isc[ci, inv_der[D_NII_ID]] = nii
            kk = trole[t, R_NII_KEY]
            key = read_digits(buf, o + spec[t, kk, A_START], spec[t, kk, A_LEN])
            isc[ci, inv_der[D_NII_KEY]] = key if nii >= 0 else -1
        elif t == T_5:
            inv_off[ci, 2] = o
            isc[ci, inv_der[D_LCOUNT]] = nlines
        # C14: first unreadable field (the hard fields always; the simple ones when the scan saw
        # a non-digit), and the hard fields' values
        bad = -1 if not bad_digit else _first_bad_simple(buf, o, t, spec)
        is_line = t == T_3 or t == T_4
        for h in range(nhard[t]):
            k = hard[t, h]
            p = o + spec[t, k, A_START]
            ln = spec[t, k, A_LEN]
            kind = spec[t, k, A_KIND]
            flags = spec[t, k, A_FLAGS]
            blank = False
            if flags & FL_BLANK_OK:
                blank = True
                for j in range(ln):
                    blank &= buf[p + j] == 32
            if blank:
                v, st = (NO_DATE if kind == K_D else 0), ST_BLANK
            elif kind == K_D:
                v, st = read_date(buf, p, flags, pivot)
            elif kind == K_A or flags & FL_LUHN or spec[t, k, A_AV1] > spec[t, k, A_AV0]:
                v, st = read_field(buf, o, spec, t, k, av, pivot)
            else:
                v = read_digits(buf, p, ln)
                st = ST_DIGITS if v < 0 else ST_RANGE if (v < spec[t, k, A_LO] or v > spec[t, k, A_HI]) else ST_OK
            if st >= ST_DIGITS and flags & FL_CHECK and (bad < 0 or k < bad):
                bad = k
            c = sc_of[t, k, 0]
            if c >= 0:
                if ST_DIGITS <= st <= ST_NO_DATE:
                    v = sc_of[t, k, 1]
                if is_line:
                    lsc[cl, c] = v
                else:
                    isc[ci, c] = v
        if bad >= 0 and inv_c14[ci] < 0:
            inv_c14[ci] = t * 256 + bad
            isc[ci, inv_der[D_C14]] = nlines if (is_line or is_detail) else 0
        if is_line:
            lqty = read_digits(buf, o + spec[t, trole[t, R_QTY], A_START], spec[t, trole[t, R_QTY], A_LEN])
            lunit = read_digits(buf, o + spec[t, trole[t, R_UNIT], A_START], spec[t, trole[t, R_UNIT], A_LEN])
            lcare = read_date(buf, o + spec[t, trole[t, R_CARE], A_START], 0, pivot)[0]
            base = read_digits(buf, o + spec[t, trole[t, R_BASE], A_START], spec[t, trole[t, R_BASE], A_LEN])
            amo = read_digits(buf, o + spec[t, trole[t, R_AMO], A_START], spec[t, trole[t, R_AMO], A_LEN])
            lbilled = read_digits(buf, o + spec[t, trole[t, R_BILLED], A_START], spec[t, trole[t, R_BILLED], A_LEN])
            amc = read_digits(buf, o + spec[t, trole[t, R_AMC], A_START], spec[t, trole[t, R_AMC], A_LEN])
            if base < 0 or amo < 0 or lbilled < 0 or amc < 0:
                sumok = False
            if t == T_3:
                s3b += base
                s3a += amo
                s3bi += lbilled
                s3c += amc
            else:
                s4b += base
                s4a += amo
                s4bi += lbilled
                s4c += amc
            pa = o + spec[t, trole[t, R_ACT], A_START]
            key = (np.int64(buf[pa]) << 24) | (np.int64(buf[pa + 1]) << 16) | (np.int64(buf[pa + 2]) << 8) \
                | np.int64(buf[pa + 3])
            hit = _lookup(lk_keys, key)
            lrule = lk_rule[hit] if hit >= 0 and t == T_4 else 0
            lrate = lk_rate[hit] if hit >= 0 else -1
        elif is_detail:  # C38: the detail against its parent line
            if t == T_3H:
                nd0 += 1
            elif t == T_3F:
                nd1 += 1
            elif t == T_4M:
                nd2 += 1
            elif t == T_4B:
                nd3 += 1
            else:
                nd4 += 1
                if nd4 == 1:  # the drug of the line (fraud F09); a second 4P is a C11 fault
                    kc = trole[t, R_CODE]
                    lcip = max(read_digits(buf, o + spec[t, kc, A_START], spec[t, kc, A_LEN]), 0)
            dbad, billed, nabm = _check_detail(buf, o, t, spec, trole, pivot, lqty, lunit, lbilled, lcare, lrate)
            lbad |= dbad
            lnabm |= nabm
            if t == T_3H:
                sum3h += billed
            elif t == T_3F:
                sum3f += billed
        elif t == T_5 and bad < 0 and sumok:  # C12: invoice end totals = sums over the lines
            k, v, e = _invoice_totals(buf, o, spec, trole, s3b, s3a, s3bi, s3c, s4b, s4a, s4bi, s4c, nlines, nrec)
            if k >= 0:
                nf = _fault(F, nf, masks, FK_INV_TOTALS, lot, r, k, 0, v, e)
        if t == T_5:
            ci = -1

    if n > 0 and rt[n - 1] != T_999:
        nf = _fault(F, nf, masks, FK_FILE_STRUCT, -1, n - 1, -1, 0, 3, 0)
    _flush(buf, inv_off, no_type, icols, isc, inv_map, no_defaults, i8, i4, i2, i1, itxt, inv_tcum, n2,
           done_inv, n_inv)
    _flush(buf, line_off, line_type, lcols, lsc, line_map, ldef, l8, l4, l2, l1, ltxt, line_tcum, n34,
           done_line, n_line)
    i8[inv_counts[0], :] = inv_c14
    for q in range(nf):
        F[q, FC_TYPE] = rt[F[q, FC_REC]]
    info = np.array([n_inv, n_line, lf_inside, lot + 1, rt[n - 1] if n > 0 else -1], np.int64)
    return i8, i4, i2, i1, itxt, l8, l4, l2, l1, ltxt, lots, F[:nf], hdr, info


# --- framing ------------------------------------------------------------------------------

_TERMINATORS: Final = {"fixed": b"", "LF": b"\n", "CRLF": b"\r\n"}


@njit(**NJIT_OPTIONS)
def _aligned_offsets(buf, step, crlf):  # type: ignore[no-untyped-def]
    """Record offsets when every terminator is where it should be (the last may be missing), else []."""
    full, rem = divmod(buf.size, step)
    if rem != 0 and rem != 128:
        return np.empty(0, np.int64)
    for r in range(full):
        p = r * step + 128
        if buf[p + crlf] != 10 or (crlf and buf[p] != 13):
            return np.empty(0, np.int64)
    n = full + (rem == 128)
    return np.arange(n) * step


_EMPTY: Final = np.zeros(0, np.int64)


def _split(buf: np.ndarray, exact: bool) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """Framing and records: (framing, offsets, content lengths, framing fault per record).

    Framing faults: 1 = line not 128 characters, 2 = terminator not the file's (LF/CRLF mix).
    Fixed mode reads the whole 128-byte records; a short tail is the caller's file fault.
    Empty lengths and faults mean every record is whole (the common case, no allocation).
    """
    size = buf.size
    if size <= RECORD_WIDTH or buf[RECORD_WIDTH] not in (10, 13):
        return "fixed", np.arange(size // RECORD_WIDTH, dtype=np.int64) * RECORD_WIDTH, _EMPTY, _EMPTY
    crlf = int(buf[RECORD_WIDTH] == 13)
    framing = "CRLF" if crlf else "LF"
    if not exact:
        offs = _aligned_offsets(buf, RECORD_WIDTH + 1 + crlf, crlf)
        if offs.size:
            return framing, offs, _EMPTY, _EMPTY
    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl + 1)).astype(np.int64)
    ends = np.concatenate((nl, [size])).astype(np.int64)
    if starts[-1] == size:  # nothing after the last terminator
        starts, ends = starts[:-1], ends[:-1]
    lens = ends - starts
    fbad = np.zeros(lens.size, np.int64)
    before = np.where(lens > 0, buf[np.maximum(ends - 1, 0)], 0)
    has_cr = (lens > 0) & (before == 13)
    terminated = ends < size
    if crlf:
        lens = lens - has_cr
        fbad[terminated & ~has_cr] = 2
    else:
        fbad[terminated & has_cr] = 2
    fbad[(fbad == 0) & (lens != RECORD_WIDTH)] = 1
    return framing, starts, lens, fbad


# --- decode -------------------------------------------------------------------------------

_LABELS: Final = {row["code"]: row["label"] for row in read_table("reject_codes")}
_G_NAMES: Final = ("lot header", "type 2", "type 2S", "type 3 line", "type 4 line", "type 5", "lot end")
_HEADER_NAMES: Final = tuple(n for n in LAYOUTS["000"].names if n != "record_type")
_READABLE: Final = frozenset((ST_OK, ST_BLANK, ST_RANGE, ST_VALUE, ST_KEY))  # read, though not valid
assert _HEADER_NAMES == tuple(FileInfo.__dataclass_fields__)[5:], "FileInfo must list the 000 fields"


def _rtype(data: bytes, o: int, ln: int) -> str:
    raw = data[o:o + min(3, max(ln, 0))]
    return "".join(chr(c) if 32 <= c <= 126 else "?" for c in raw).rstrip(" ")


def _where(t: int, k: int) -> tuple[int, int, str]:
    if t < 0 or k < 0:
        return 0, 0, ""
    f = _LAYOUT_LIST[t].fields[k]
    return f.start, f.length, f.name


def _rule_text(rule: int) -> str:
    if rule == 0:
        return "a fee line of this letter key takes no detail record"
    kind, lo, hi = DETAIL_RULES[_RULE_NAMES[rule]]
    many = f"exactly {lo}" if hi == lo else f"{lo} or more"
    return f"a {_RULE_NAMES[rule]} fee line needs {many} {kind} and no other detail record"


def _fault_text(kind: int, name: str, a: int, b: int, rtype: str) -> str:
    if kind == FK_FRAMING:
        return f"line of {a} characters, not 128" if b == 1 else "line terminator differs from the file's (LF and CRLF mixed)"
    if kind == FK_CHARSET:
        return f"byte 0x{a:02X} in {name or 'the record'}"
    if kind == FK_FILE_STRUCT:
        return {1: "a second file header (000)", 2: "file end (999) before the last record",
                3: "the last record is not a file end (999)", 4: "record before the first lot header (1)"}[a]
    if kind == FK_UNKNOWN:
        return f"record type '{rtype}' is not in profile v1"
    if kind == FK_ORDER:
        if a == 0:
            return f"record type '{rtype}' not allowed after the {_G_NAMES[b]}"
        return "lot ends without its lot end record (9)" if a == 1 else _rule_text(b)
    if kind == FK_NUMBERING:
        return f"{name} {'unreadable' if a < 0 else a}, expected {b}"
    if kind == FK_IDENT:
        return f"{name} differs from the {'lot header' if rtype == '9' else 'type 2 of the invoice'}"
    if kind == FK_COUNT:
        return f"{name} declared {a}, found {b}"
    if kind == FK_LOT_TOTALS:
        return f"{name} declared {a}, sum of the invoice ends {b}"
    if kind == FK_INV_TOTALS:
        return f"{name} declared {a}, lines give {b}"
    return f"{name}: {STATUS_TEXT.get(a, 'invalid')}"


def _make_reason(code: str, lot: int, seq: int, ordinal: int, rtype: str, pos: int, length: int,
                 name: str, detail: str) -> ArlReason:
    return ArlReason(code, lot, seq, ordinal, rtype, pos, length, name, f"{_LABELS.get(code, code)}: {detail}")


def _pivot(data: bytes) -> int:
    """Two-digit creation year of the file (birth-date century rule); 99 when unreadable."""
    yy = data[_CREATION_YY]
    return int(yy) if len(yy) == 2 and yy.isdigit() else 99


_CREATION_YY: Final = slice(LAYOUTS["000"]["creation_date"].start - 1, LAYOUTS["000"]["creation_date"].start + 1)
# (field, index) of the header fields FileInfo carries, and of the checked file end fields
_HEADER_PLAN: Final = tuple((LAYOUTS["000"][n], LAYOUTS["000"].index[n]) for n in _HEADER_NAMES)
_END_PLAN: Final = tuple((f, k) for k, f in enumerate(LAYOUTS["999"].fields) if f.kind != "F" and f.check)


def _field_reason(code: str, ordinal: int, rtype: str, f: Any, detail: str) -> ArlReason:
    return _make_reason(code, 0, 0, ordinal, rtype, f.start, f.length, f.name, detail)


def _check_header(data: bytes, hdr: np.ndarray, reception_date: int | None,
                  production: bool) -> tuple[dict[str, Any], list[ArlReason]]:
    """000 field values for FileInfo, and the file-level reasons of C04, C05, C06, C08."""
    values: dict[str, Any] = {}
    reasons: list[ArlReason] = []
    vals, sts = hdr[0].tolist(), hdr[1].tolist()
    default = DEFAULT_CODES["000"]
    for f, k in _HEADER_PLAN:
        st = sts[k]
        if f.kind == "A":
            values[f.name] = data[f.start - 1:f.end].decode("ascii", "replace").rstrip(" ")
        else:
            values[f.name] = vals[k] if st in _READABLE else (NO_DATE if f.kind == "D" else -1)
        if st >= ST_DIGITS and f.check:
            reasons.append(_field_reason(f.code or default, 1, "000", f, f"{f.name}: {STATUS_TEXT[st]}"))
    lay = LAYOUTS["000"]
    t = values["creation_time"]
    if t >= 0 and (t // 100 % 100 > 59 or t % 100 > 59):
        reasons.append(_field_reason(default, 1, "000", lay["creation_time"], "creation_time: not a valid time"))
    d = values["creation_date"]
    if reception_date is not None and d != NO_DATE and d > reception_date:
        reasons.append(_field_reason(default, 1, "000", lay["creation_date"], "creation_date after the reception date"))
    flag = values["test_flag"]
    if flag in ("P", "T") and (flag == "T") == production:
        reasons.append(_field_reason("8006-001", 1, "000", lay["test_flag"],
                                     "test file sent to production" if production else "production file sent to a test instance"))
    return values, reasons


def _check_end(data: bytes, o: int, hdr: np.ndarray, n_records: int, lots: np.ndarray) -> list[ArlReason]:
    """File end (999) against the file (C07): formats, emitter, lot and record counts, totals."""
    lay = LAYOUTS["999"]
    out: list[ArlReason] = []
    vals, sts = hdr[2].tolist(), hdr[3].tolist()
    default = DEFAULT_CODES["999"]
    for f, k in _END_PLAN:
        if sts[k] >= ST_DIGITS:
            out.append(_field_reason(f.code or default, n_records, "999", f, f"{f.name}: {STATUS_TEXT[sts[k]]}"))
    f = lay["emitter_ps_number"]
    h = LAYOUTS["000"]["emitter_ps_number"]
    if data[o + f.start - 1:o + f.end] != data[h.start - 1:h.end]:
        out.append(_field_reason(default, n_records, "999", f, "emitter_ps_number differs from the file header"))
    found = {"lot_count": len(lots), "record_count": n_records}
    ends = lots[lots[:, 6] >= 0]
    if (ends[:, 7:9] >= 0).all():  # lot ends whose totals cannot be read are C10's
        found["total_billed"] = int(ends[:, 7].sum())
        found["total_amo_claimed"] = int(ends[:, 8].sum())
    for name, expected in found.items():
        k = lay.index[name]
        if sts[k] < ST_DIGITS and vals[k] != expected:
            out.append(_field_reason(default, n_records, "999", lay[name],
                                     f"{name} declared {vals[k]}, file gives {expected}"))
    return out


def _run(buf: np.ndarray, offs: np.ndarray, lens: np.ndarray, fbad: np.ndarray, line_mode: bool, pivot: int) -> tuple:
    return _kernel(buf, offs, lens, fbad, line_mode, pivot, _CL.spec, _CL.dmask, _CL.av, _TROLE, _HARD, _NHARD,
                   _SC_OF, _ICOLS, _LCOLS, _INV_MAP, _LINE_MAP, _INV_DER, _LINE_DER, _LDEF, _CODES3, _INV.counts,
                   _INV.tcum, _LINE.counts, _LINE.tcum, _LK_KEYS, _LK_RULE, _LK_RATE, _DRULE)


def _plan(tab: _Table) -> tuple[tuple[str, int, int, int, int, str], ...]:
    """(name, group, row, text start, text end, dtype) of every column, in contract order."""
    out = []
    for name in tab.names:
        g, row = tab.where[name]
        lo, hi = (int(tab.tcum[row]), int(tab.tcum[row + 1])) if g == 4 else (0, 0)
        dt = "u1" if tab.dtypes[name] == "u1" else f"S{hi - lo}" if g == 4 else ""
        out.append((name, g, row, lo, hi, dt))
    return tuple(out)


_INV_PLAN: Final = _plan(_INV)
_LINE_PLAN: Final = _plan(_LINE)


def _table_columns(plan: tuple, mats: tuple[np.ndarray, ...], txt: np.ndarray, cap: int, n: int) -> dict[str, np.ndarray]:
    rows = [list(m[:, :n]) for m in mats]
    out: dict[str, np.ndarray] = {}
    for name, g, row, lo, hi, dt in plan:
        if g == 4:
            out[name] = txt[cap * lo:cap * lo + n * (hi - lo)].view(dt)
        else:
            out[name] = rows[g][row]
    return out


def _keep(inv: dict[str, np.ndarray], lines: dict[str, np.ndarray], accepted: np.ndarray,
          c14: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """The rows of the accepted lots only, with invoice_idx and line_start renumbered."""
    keep_inv = accepted[inv["lot_idx"]]
    keep_line = keep_inv[lines["invoice_idx"]]
    new_idx = np.cumsum(keep_inv) - 1
    dropped_before = np.concatenate(([0], np.cumsum(~keep_line)))
    inv2 = {k: v[keep_inv] for k, v in inv.items()}
    inv2["line_start"] = (inv["line_start"] - dropped_before[inv["line_start"]])[keep_inv].astype(np.int32)
    lines2 = {k: v[keep_line] for k, v in lines.items()}
    lines2["invoice_idx"] = new_idx[lines["invoice_idx"]][keep_line].astype(np.int32)
    return inv2, lines2, c14[keep_inv]


def _fault_reasons(data: bytes, offs: np.ndarray, lens: np.ndarray, faults: np.ndarray, lots_a: np.ndarray,
                   file_reasons: list[ArlReason], lot_reasons: list[list[ArlReason]]) -> None:
    """ArlReasons of the kernel's faults, appended to the file's or their lot's list."""
    for kind, lot, r, k, pos, a, b, t in faults.tolist():
        o = int(offs[r])
        ln = RECORD_WIDTH if lens.size == 0 else int(lens[r])
        rtype = _rtype(data, o, ln)
        start, length, fname = _where(t, k)
        if kind == FK_UNKNOWN:
            start, length, fname = 1, 3, "record_type"
        if kind == FK_CHARSET:
            start, length = pos, 1
        code = _FK_CODES[kind] or (_LAYOUT_LIST[t].fields[k].code or DEFAULT_CODES[RECORD_TYPES[t]])
        detail = _fault_text(kind, fname, a, b, rtype)
        if lot < 0:
            file_reasons.append(_make_reason(code, 0, 0, r + 1, rtype, start, length, fname, detail))
        else:
            seq = r - int(lots_a[lot, 0]) + 1
            lot_reasons[lot].append(_make_reason(code, lot + 1, seq, r + 1, rtype, start, length, fname, detail))


def decode(data: bytes, name: str, *, reception_date: int | None = None, production: bool = True) -> Decoded:
    """Decode one B2 file: ARL status and reasons, lots, and the columns of its accepted lots.

    `reception_date` (a day number) enables C04's "creation date not after reception";
    `production` is the instance's mode for C06. Raises NotB2Error only when the data cannot
    be a B2 file at all (empty, or not starting with `000`); every other fault is an ARL reason.
    """
    if not data:
        raise NotB2Error(f"file={name}: not a B2 file (empty)")
    if data[:3] != b"000":
        raise NotB2Error(f"file={name} record=1: not a B2 file (the first record is not a '000' file header)")
    buf = np.frombuffer(data, dtype=np.uint8)
    buf.flags.writeable = False  # bytes and bytearray alike: one compiled kernel
    pivot = _pivot(data)
    framing, offs, lens, fbad = _split(buf, exact=False)
    out = _run(buf, offs, lens, fbad, framing != "fixed", pivot)
    if out[-1][2]:  # a line terminator inside a 128-byte record: the lines are not where assumed
        framing, offs, lens, fbad = _split(buf, exact=True)
        out = _run(buf, offs, lens, fbad, True, pivot)
    i8, i4, i2, i1, itxt, l8, l4, l2, l1, ltxt, lots_a, faults, hdr, info = out
    n_inv, n_line, _, n_lots, last_type = info.tolist()
    n = offs.size
    whole = fbad.size == 0

    file_reasons: list[ArlReason] = []
    if framing == "fixed" and buf.size % RECORD_WIDTH:
        file_reasons.append(_make_reason("8001-001", 0, 0, n + 1, "", 0, 0, "",
                                         f"file length {buf.size} is not a multiple of 128"))
    header_ok = n > 0 and (whole or not fbad[0])
    if header_ok:
        hvals, hreasons = _check_header(data, hdr, reception_date, production)
        file_reasons += hreasons
    else:
        hvals = {f.name: (NO_DATE if f.kind == "D" else "" if f.kind == "A" else -1) for f, _ in _HEADER_PLAN}
    lot_reasons: list[list[ArlReason]] = [[] for _ in range(n_lots)]
    lots_a = lots_a[:n_lots]
    if faults.size:
        _fault_reasons(data, offs, lens, faults, lots_a, file_reasons, lot_reasons)
    if last_type == T_999 and (whole or not fbad[n - 1]) and header_ok:
        file_reasons += _check_end(data, int(offs[n - 1]), hdr, n, lots_a)
    if n_lots == 0 and not file_reasons:  # file := 000 lot{1..999} 999
        file_reasons.append(_make_reason("8003-001", 0, 0, n, _rtype(data, int(offs[-1]), RECORD_WIDTH), 0, 0, "",
                                         "the file holds no lot"))

    status = "N" if file_reasons else ("L" if any(lot_reasons) else "P")
    lots = _lot_infos(data, offs, lots_a, lot_reasons, file_level=status == "N")
    info_ = FileInfo(name, hashlib.sha256(data).hexdigest(), len(data), framing, n, **hvals)
    if file_reasons:
        file_reasons.sort(key=lambda x: x.record_ordinal)
    if status == "N":
        return Decoded(info_, status, file_reasons, lots, _columns.empty_columns(_columns.INVOICE_COLUMNS, 0),
                       _columns.empty_columns(_columns.LINE_COLUMNS, 0), [], reception_date)
    c14 = i8[-1, :n_inv]
    inv = _table_columns(_INV_PLAN, (i8, i4, i2, i1), itxt, i8.shape[1], n_inv)
    lines = _table_columns(_LINE_PLAN, (l8, l4, l2, l1), ltxt, l8.shape[1], n_line)
    reasons = file_reasons
    if status == "L":
        reasons = file_reasons + [x for rs in lot_reasons for x in sorted(rs, key=lambda x: x.record_ordinal)]
        accepted = np.array([lot.status == "A" for lot in lots], dtype=bool)
        inv, lines, c14 = _keep(inv, lines, accepted, c14)
    c14_field: list[str | None] = [None] * len(c14)
    for i in np.flatnonzero(c14 >= 0).tolist():
        t, k = divmod(int(c14[i]), 256)
        c14_field[i] = _LAYOUT_LIST[t].fields[k].name
    return Decoded(info_, status, reasons, lots, inv, lines, c14_field, reception_date)


_LOT_COLS: Final = tuple(LOT_VALS + LAYOUTS["1"].index[f] for f in (
    "lot_number", "ps_number", "ps_speciality", "convention_code", "tariff_zone", "lot_creation_date",
    "invoice_count_expected", "ps_rpps"))
_LOT_TEXT: Final = (LAYOUTS["1"]["lot_nature_family"], LAYOUTS["1"]["structure_finess"])


def _lot_infos(data: bytes, offs: np.ndarray, lots_a: np.ndarray, lot_reasons: list[list[ArlReason]],
               file_level: bool) -> list[LotInfo]:
    out = []
    for lot, row in enumerate(lots_a.tolist()):
        first, count, hdr, n_inv, billed, amo = row[:6]
        num, ps, spe, conv, zone, created, expected, rpps = (row[c] for c in _LOT_COLS)
        o = int(offs[hdr])
        fam, finess = (data[o + f.start - 1:o + f.end].decode("ascii", "replace").rstrip(" ") for f in _LOT_TEXT)
        out.append(LotInfo(
            lot_number=num, status="R" if file_level or lot_reasons[lot] else "A", ps_number=ps,
            ps_speciality=spe, convention_code=conv, tariff_zone=zone, family=fam,
            creation_date=NO_DATE if created == -1 else created, invoice_count_expected=expected,
            ps_rpps=rpps, structure_finess=finess, invoice_count=n_inv, billed=billed, amo_claimed=amo,
            record_ordinal=first + 1, record_count=count, reasons=[] if file_level else lot_reasons[lot],
        ))
    return out


# --- object model: parse, normalize, encode -----------------------------------------------

_IDENT_FIELDS: Final = ("nir_opener", "nir_key", "rang_beneficiaire", "invoice_number")
_LINE_DETAILS: Final = {"3": ("3H", "3F"), "4": ("4M", "4B", "4P", "3F")}


def _records(data: bytes, name: str) -> list[tuple[int, str, bytes]]:
    """(ordinal, stripped type code, record) of every record; StructureError on bad framing."""
    buf = np.frombuffer(data, dtype=np.uint8)
    framing, offs, lens, fbad = _split(buf, exact=True)
    if framing == "fixed" and len(data) % RECORD_WIDTH:
        raise StructureError(f"file={name}: length {len(data)} is not a multiple of {RECORD_WIDTH}")
    if lens.size == 0:
        lens = np.full(offs.size, RECORD_WIDTH, np.int64)
        fbad = np.zeros(offs.size, np.int64)
    out = []
    for r, (o, ln, bad) in enumerate(zip(offs.tolist(), lens.tolist(), fbad.tolist())):
        if bad:
            raise StructureError(f"file={name} record={r + 1}: line of {ln} characters, not {RECORD_WIDTH}")
        rec = data[o:o + RECORD_WIDTH]
        out.append((r + 1, rec[:3].decode("ascii", "replace").rstrip(" "), rec))
    return out


def parse(data: bytes, name: str) -> B2File:
    """The object model of a file (model.py), every non-filler field of every record.

    Plain Python, for tests and tools. It reads values and grammar only: counts and totals
    are not checked (decode does that). Raises NotB2Error, StructureError or FieldDecodeError
    with a path such as `file=X.b2 lot=002 record=17 -> type 4 -> care_date: not a valid date`.
    """
    if not data or data[:3] != b"000":
        raise NotB2Error(f"file={name} record=1: not a B2 file (no '000' file header first)")
    recs = _records(data, name)
    pivot = _pivot(data)
    pos = 0
    lot_no = 0

    def peek() -> str:
        return recs[pos][1] if pos < len(recs) else ""

    def take(*codes: str) -> dict[str, Any]:
        nonlocal pos
        where = f"file={name} lot={lot_no:03d}"
        if pos >= len(recs):
            raise StructureError(f"{where}: file ends where a record {'/'.join(codes)} is expected")
        ordinal, code, rec = recs[pos]
        if code not in codes:
            raise StructureError(f"{where} record={ordinal}: record type '{code}' where {'/'.join(codes)} is expected")
        pos += 1
        return LAYOUTS[code].decode(rec, pivot_yy=pivot, path=f"{where} record={ordinal}")

    f = B2File(header=take("000"))
    while peek() == "1":
        lot_no += 1
        lot = Lot(header=take("1"))
        while peek() == "2":
            inv = Invoice(head=take("2"), complement=take("2S"))
            while peek() in ("3", "4"):
                kind = peek()
                line = Line(kind, take(kind))
                while peek() in _LINE_DETAILS[kind]:
                    dk = peek()
                    line.details.append(Detail(dk, take(dk)))
                inv.lines.append(line)
            inv.end = take("5")
            lot.invoices.append(inv)
        lot.end = take("9")
        f.lots.append(lot)
    lot_no = 0
    f.end = take("999")
    if pos != len(recs):
        raise StructureError(f"file={name} record={recs[pos][0]}: record after the file end")
    return f


def _complete(code: str, given: dict[str, Any], derived: dict[str, Any], path: str) -> dict[str, Any]:
    """Every non-filler field: the given value, else the derived one, else 0 / '' / None."""
    lay = LAYOUTS[code]
    unknown = set(given) - set(lay.names)
    if unknown:
        raise FieldEncodeError(f"{path} -> type {code}", f"unknown fields {sorted(unknown)}")
    out: dict[str, Any] = {}
    for f in lay.fields:
        if f.kind == "F":
            continue
        if f.name in given:
            out[f.name] = given[f.name]
        elif f.name in derived:
            out[f.name] = derived[f.name]
        else:
            out[f.name] = default_value(f)
    return out


def _head(code: str, lot_number: int, seq: int) -> dict[str, Any]:
    return {"record_type": code, "lot_number": lot_number, "record_seq": seq}


def _value(fields: dict[str, Any], name: str) -> int:
    v = fields.get(name)
    return v if isinstance(v, int) else 0


def normalize(f: B2File) -> B2File:
    """The complete model `encode` writes: every field set, derived ones filled in.

    Derived (unless the given mapping sets them): record_type, lot_number, record_seq, the
    repeated identification of invoice records, the lot header's invoice_count_expected, type
    5 totals and counts, the whole lot end and file end. So `parse(encode(x)) == normalize(x)` for any model whose values fit.
    """
    header = _complete("000", f.header, _head("000", 0, 0), "file header")
    lots: list[Lot] = []
    file_records = 2
    f_billed = f_amo = 0
    for rank, lot in enumerate(f.lots, 1):
        path = f"lot={rank:03d}"
        lh = _complete("1", lot.header, {**_head("1", rank, 1), "invoice_count_expected": len(lot.invoices)}, path)
        ln = lh["lot_number"]
        seq = 1
        invoices = []
        l_billed = l_amo = 0
        for inv in lot.invoices:
            seq += 1
            head = _complete("2", inv.head, _head("2", ln, seq), path)
            ident = {k: head[k] for k in _IDENT_FIELDS}
            seq += 1
            comp = _complete("2S", inv.complement, {**_head("2S", ln, seq), **ident}, path)
            lines = []
            sums = {k: 0 for k in ("3b", "3a", "3bi", "3c", "4b", "4a", "4bi", "4c")}
            n_rec = 3  # 2, 2S and 5
            for line in inv.lines:
                seq += 1
                lf = _complete(line.kind, line.fields, {**_head(line.kind, ln, seq), **ident}, path)
                details = []
                for d in line.details:
                    seq += 1
                    details.append(Detail(d.kind, _complete(d.kind, d.fields, {**_head(d.kind, ln, seq), **ident}, path)))
                lines.append(Line(line.kind, lf, details))
                n_rec += 1 + len(details)
                p = "3" if line.kind == "3" else "4"
                sums[p + "b"] += _value(lf, "base")
                sums[p + "a"] += _value(lf, "amo_amount")
                sums[p + "bi"] += _value(lf, "billed_amount")
                sums[p + "c"] += _value(lf, "amc_amount")
            seq += 1
            totals = {
                "total_base_hosp": sums["3b"], "total_amo_hosp": sums["3a"], "total_billed_fees": sums["4bi"],
                "total_amo_fees": sums["4a"],
                "total_insured_share": sums["3bi"] + sums["4bi"] - sums["3a"] - sums["4a"],
                "total_amc_hosp": sums["3c"], "total_amc_fees": sums["4c"], "total_base_fees": sums["4b"],
                "line_count": len(lines), "record_count": n_rec, "total_billed_hosp": sums["3bi"],
            }
            end = _complete("5", inv.end, {**_head("5", ln, seq), **ident, **totals}, path)
            l_billed += _value(end, "total_billed_fees") + _value(end, "total_billed_hosp")
            l_amo += _value(end, "total_amo_fees") + _value(end, "total_amo_hosp")
            invoices.append(Invoice(head, comp, lines, end))
        seq += 1
        lend = _complete("9", lot.end, {
            **_head("9", ln, seq), "ps_number": lh["ps_number"], "invoice_count": len(invoices),
            "record_count": seq, "total_billed": l_billed, "total_amo_claimed": l_amo}, path)
        file_records += seq
        f_billed += _value(lend, "total_billed")
        f_amo += _value(lend, "total_amo_claimed")
        lots.append(Lot(lh, invoices, lend))
    end = _complete("999", f.end, {
        **_head("999", 0, 0), "emitter_ps_number": header["emitter_ps_number"], "lot_count": len(lots),
        "record_count": file_records, "total_billed": f_billed, "total_amo_claimed": f_amo}, "file end")
    return B2File(header, lots, end)


def iter_records(f: B2File) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(type code, fields, path) of every record of a model, in file order."""
    yield "000", f.header, "file header"
    for rank, lot in enumerate(f.lots, 1):
        path = f"lot={rank:03d}"
        yield "1", lot.header, path
        for inv in lot.invoices:
            yield "2", inv.head, path
            yield "2S", inv.complement, path
            for line in inv.lines:
                yield line.kind, line.fields, path
                for d in line.details:
                    yield d.kind, d.fields, path
            yield "5", inv.end, path
        yield "9", lot.end, path
    yield "999", f.end, "file end"


def encode(f: B2File, *, framing: str = "fixed") -> bytes:
    """The bytes of a model: 'fixed' records end to end, or 'LF' / 'CRLF' lines.

    Fields not set take their derived value (see `normalize`) or 0 / '' / None; an explicit
    value always wins, so tests can write wrong counts and totals.
    """
    if framing not in _TERMINATORS:
        raise ValueError(f"framing must be one of {sorted(_TERMINATORS)}, not {framing!r}")
    full = normalize(f)
    d = full.header.get("creation_date")
    pivot = d.year % 100 if isinstance(d, _dt.date) else 99
    term = _TERMINATORS[framing]
    parts = []
    for ordinal, (code, fields, path) in enumerate(iter_records(full), 1):
        if code not in LAYOUTS:
            raise FieldEncodeError(f"{path} record={ordinal}", f"unknown record type {code!r}")
        parts.append(LAYOUTS[code].encode(fields, pivot_yy=pivot, path=f"{path} record={ordinal}"))
        parts.append(term)
    return b"".join(parts)
