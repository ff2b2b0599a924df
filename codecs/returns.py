"""NOEMIE-style returns to professionals (returns.md §2): encoder, checking decoder, data model.

One return file per PS billing number and liquidation day. The file is a stream of entities:
a 3-character entity code, a 2-character hierarchy level (not in 000 and 999), fixed fields,
then `@`; there are no line breaks. The layouts below are one declarative table (`ENTITIES`)
with the spec's **0-based** offsets, compiled into `_layout.Layout`s (which check that the
fields tile each entity with no gap or overlap) and encoded with the same field codecs as B2.

The model (`ReturnFile` → `BudgetBlock` → `Lot` → `Invoice` → `Line`) follows the entity tree.
It carries no control totals: `encode` computes every 990 and the 999 from the children
(§2.4), and `decode` recomputes them and raises `ReturnsError` naming the entity ordinal and
the total that does not hold. Amounts are int cents; dates are `datetime.date` written AAMMJJ.

Conventions of the model:
- numeric fields are ints (payee_code 35, control 28, Movement.level 1 or 3, type 1..3),
  text fields are str without their padding ('' = spaces); `iban`, `nii`, `nii_key` use None
  for "spaces" (held payment, no patient NIR);
- `Line.coefficient` is N(4+2) as an int in hundredths (1.00 → 100);
- birth dates (AAMMJJ) take their century from the file creation year, as in B2: a two-digit
  year above the creation year is 19xx, so a birth date must fall within the 99 years before
  the file; the other dates are 20xx;
- text is made printable ASCII before it is written (accents transliterated, `@` → space), so
  `decode(encode(x)) == x` holds for models whose text is already clean and has no trailing
  spaces; `created` is written to the second (microseconds dropped, tzinfo ignored).

Errors name the entity (code and ordinal in the file, from 1) and the field, never the value
of a field (a NIR, a name or an IBAN could be in it).
"""
from __future__ import annotations

import datetime as _dt
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from ._layout import Field, Layout, decode_value, encode_value
from .b2_layouts import LAYOUTS as B2_LAYOUTS
from .exceptions import CodecError

__all__ = [
    "transfers",
    "ENTITIES",
    "BudgetBlock",
    "Insured",
    "Invoice",
    "Line",
    "Lot",
    "Movement",
    "Patient",
    "Reject",
    "ReturnFile",
    "ReturnsError",
    "decode",
    "encode",
    "sanitize",
]


class ReturnsError(CodecError, ValueError):
    """A return file or model that cannot be written or read; names entity and field, no value."""


# --- layouts ------------------------------------------------------------------------------

# The fund's own identity (régime + caisse + centre + 00000): the destination a B2 file header
# must name, so it is read from the B2 layout rather than written a second time.
_FUND_ID: Final = "".join(B2_LAYOUTS["000"][f"dest_{n}"].values[0] for n in ("regime", "caisse", "centre")) + "00000"
_BUDGETS: Final = ("AMO  ", "APIAS", "SIG  ")  # raw values: A5, left aligned
_DIGIT: Final = tuple("123456789")

# One row per field: (name, 0-based offset, length, kind, accepted raw values).
# Kinds as in _layout: N digits, M amount in cents, C coefficient N(4+2), D date AAMMJJ,
# A text (space padded, left aligned), F filler (spaces). A field with exactly one accepted
# value is a constant the encoder writes by itself; with several, both directions check them.
_Row = tuple[str, int, int, str, tuple[str, ...]]
_TABLE: Final[dict[str, tuple[_Row, ...]]] = {
    "000": (
        ("entity", 0, 3, "A", ("000",)),
        ("emitter_type", 3, 2, "N", ("01",)),
        ("emitter_id", 5, 14, "N", (_FUND_ID,)),
        ("recipient_ps_number", 19, 9, "N", ()),
        ("creation_date", 28, 6, "D", ()),
        ("creation_time", 34, 6, "N", ()),
        ("return_sequence", 40, 5, "N", ()),
        ("filler", 45, 16, "F", ()),
        ("reference", 61, 3, "A", ("P01",)),
        ("profile_version", 64, 4, "A", ("NP01",)),
    ),
    "040": (
        ("entity", 0, 3, "A", ("040",)),
        ("level", 3, 2, "N", ("01",)),
        ("payee_id", 5, 15, "A", ()),
        ("payee_kind", 20, 1, "A", ("P",)),
        ("budget", 21, 5, "A", _BUDGETS),
        ("creditor_iban", 26, 34, "A", ()),
    ),
    "070": (
        ("entity", 0, 3, "A", ("070",)),
        ("level", 3, 2, "N", ("01",)),
        ("payment_date", 5, 6, "D", ()),
    ),
    "080": (
        ("entity", 0, 3, "A", ("080",)),
        ("level", 3, 2, "N", ("02",)),
        ("b2_file_date", 5, 6, "D", ()),
        ("lot_number", 11, 3, "N", ()),
        ("b2_file_sequence", 14, 5, "N", ()),
        ("lot_family", 19, 2, "A", ("AS", "MA", "AT", "SG")),
    ),
    "100": (
        ("entity", 0, 3, "A", ("100",)),
        ("level", 3, 2, "N", ("03",)),
        ("invoice_number", 5, 9, "N", ()),
        ("status", 14, 1, "A", ("P", "S", "R")),
        ("payee_code", 15, 2, "N", ("10", "35", "36")),
        ("reception_date", 17, 6, "D", ()),
        ("liquidation_date", 23, 6, "D", ()),
        ("working_days_to_payment", 29, 2, "N", ()),
        ("billed", 31, 11, "M", ()),
        ("base", 42, 11, "M", ()),
        ("amo", 53, 11, "M", ()),
        ("pf_franchise", 64, 11, "M", ()),
        ("paid", 75, 11, "M", ()),
        ("debt", 86, 11, "M", ()),
    ),
    "110": (
        ("entity", 0, 3, "A", ("110",)),
        ("level", 3, 2, "N", ("04",)),
        ("nir_and_key", 5, 15, "A", ()),  # A, not N: Corsican NIRs hold 2A / 2B
        ("filler", 20, 1, "F", ()),
        ("last_name", 21, 25, "A", ()),
        ("filler", 46, 26, "F", ()),
        ("first_name", 72, 15, "A", ()),
    ),
    "120": (
        ("entity", 0, 3, "A", ("120",)),
        ("level", 3, 2, "N", ("04",)),
        ("birth_date", 5, 6, "D", ()),  # century rule of birth dates (see _field)
        ("birth_rank", 11, 1, "N", _DIGIT),
        ("last_name", 12, 25, "A", ()),
        ("first_name", 37, 15, "A", ()),
        ("quality", 52, 1, "N", ("1", "2", "3", "4")),
        ("nii", 53, 13, "A", ()),
        ("nii_key", 66, 2, "A", ()),
    ),
    "150": (
        ("entity", 0, 3, "A", ("150",)),
        ("level", 3, 2, "N", ("04",)),
        ("nature_assurance", 5, 2, "A", ()),
        ("exo_reason", 7, 2, "N", ()),
        ("budget", 9, 5, "A", _BUDGETS),
    ),
    "210": (
        ("entity", 0, 3, "A", ("210",)),
        ("level", 3, 2, "N", ("05",)),
        ("line_number", 5, 3, "N", ()),
        ("care_date", 8, 6, "D", ()),
        ("act_code", 14, 5, "A", ()),
        ("quantity", 19, 2, "N", ()),
        ("coefficient", 21, 6, "C", ()),
        ("billed", 27, 11, "M", ()),
        ("base", 38, 11, "M", ()),
        ("rate_pct", 49, 3, "N", ()),
        ("amo", 52, 11, "M", ()),
        ("pf", 63, 11, "M", ()),
        ("franchise", 74, 11, "M", ()),
        ("paid", 85, 11, "M", ()),
        ("status", 96, 1, "A", ("P", "R")),
        ("budget", 97, 5, "A", _BUDGETS),
    ),
    "250": (
        ("entity", 0, 3, "A", ("250",)),
        ("level", 3, 2, "N", ("01", "03")),
        ("movement_type", 5, 2, "N", ("01", "02", "03")),
        ("sign", 7, 1, "A", ("+", "-")),
        ("amount", 8, 11, "M", ()),
        ("end_to_end_id", 19, 35, "A", ()),
        ("value_date", 54, 6, "D", ()),
        ("budget", 60, 5, "A", _BUDGETS),
    ),
    "290": (
        ("entity", 0, 3, "A", ("290",)),
        ("level", 3, 2, "N", ("03", "05")),
        ("code", 5, 8, "A", ()),
        ("kind", 13, 1, "A", ("R", "S")),
        ("line_number", 14, 3, "N", ()),
        ("control", 17, 3, "N", ()),
        ("field", 20, 30, "A", ()),
        ("label", 50, 60, "A", ()),
    ),
    "990": (
        ("entity", 0, 3, "A", ("990",)),
        ("level", 3, 2, "N", ("01", "02", "03")),
        ("closed_entity", 5, 3, "A", ("100", "080", "040")),
        ("billed", 8, 11, "M", ()),
        ("base", 19, 11, "M", ()),
        ("paid", 30, 11, "M", ()),
        ("amo", 41, 11, "M", ()),
        ("pf_franchise", 52, 11, "M", ()),
        ("children", 63, 6, "N", ()),
    ),
    "999": (
        ("entity", 0, 3, "A", ("999",)),
        ("entity_count", 3, 7, "N", ()),
        ("paid", 10, 11, "M", ()),
        ("invoices", 21, 5, "N", ()),
    ),
}


def _field(code: str, row: _Row) -> Field:
    name, offset, length, kind, values = row
    return Field(name, offset + 1, length, kind, decimals=2 if kind == "C" else 0, values=values,
                 birth=(code, name) == ("120", "birth_date"))


def _layouts() -> dict[str, Layout]:
    out = {}
    for code, rows in _TABLE.items():
        last = rows[-1]
        # Layout checks the rows tile bytes 1..width: a typo in an offset fails at import
        out[code] = Layout(code, [_field(code, r) for r in rows], width=last[1] + last[2])
    return out


#: entity code → Layout (1-based `start` = spec offset + 1; width excludes the final '@').
ENTITIES: Final[dict[str, Layout]] = _layouts()
_LEVELLED: Final = frozenset(c for c in ENTITIES if c not in ("000", "999"))
_CONST: Final = {c: {f.name: f.values[0].encode("ascii") for f in lay.fields if len(f.values) == 1}
                 for c, lay in ENTITIES.items()}
_CLOSES: Final = {3: "100", 2: "080", 1: "040"}  # 990 level → the entity it closes
END: Final = b"@"


# --- text ---------------------------------------------------------------------------------

# letters NFKD does not decompose, and typographic marks with an obvious ASCII twin
_TRANSLIT: Final = str.maketrans({
    "œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D",
    "ł": "l", "Ł": "L", "’": "'", "‘": "'", "‚": ",", "“": '"', "”": '"', "–": "-", "—": "-",
    "@": " ",  # '@' ends an entity
})


def sanitize(text: str) -> str:
    """Printable ASCII (0x20–0x7E): accents dropped (é→e, œ→oe), '@' and anything else → space."""
    flat = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return "".join(c if " " <= c <= "~" else ("" if unicodedata.combining(c) else " ") for c in flat)


# --- model --------------------------------------------------------------------------------

def _tuples(obj: Any, *names: str) -> None:
    """Store sequence fields as tuples, so models built from lists compare equal to decoded ones."""
    for n in names:
        object.__setattr__(obj, n, tuple(getattr(obj, n)))


@dataclass(frozen=True)
class Reject:
    """A 290: reject (kind 'R') or signal ('S'); its level (03/05) comes from where it hangs."""

    code: str  # NNNN-NNN of reject_codes.csv
    kind: str
    line_number: int  # 0 for an invoice-level reject
    control: int  # 28 for C28
    field: str  # field name, '' for none
    label: str


@dataclass(frozen=True)
class Movement:
    """A 250: level 1 type 1 = transfer of the day; level 3 type 2 = debt on the insured, type 3 = penalty."""

    level: int
    type: int
    sign: str  # '+' or '-'
    amount: int  # cents, unsigned
    end_to_end_id: str  # SEPA EndToEndId, '' for type 2
    value_date: _dt.date
    budget: str


@dataclass(frozen=True)
class Line:
    """A 210 act line and its line-level rejects (290 level 05)."""

    line_number: int
    care_date: _dt.date
    act_code: str
    quantity: int
    coefficient: int  # hundredths
    billed: int
    base: int
    rate_pct: int
    amo: int
    pf: int
    franchise: int
    paid: int
    status: str  # 'P' or 'R'
    budget: str
    rejects: tuple[Reject, ...] = ()

    def __post_init__(self) -> None:
        _tuples(self, "rejects")


@dataclass(frozen=True)
class Insured:
    """The 110: opener of rights."""

    nir15: str  # NIR (13) + key (2)
    last_name: str = ""
    first_name: str = ""


@dataclass(frozen=True)
class Patient:
    """The 120: the beneficiary of the care."""

    birth_date: _dt.date
    birth_rank: int
    last_name: str
    first_name: str
    quality: int
    nii: str | None = None  # patient NIR (13), None = spaces
    nii_key: str | None = None


@dataclass(frozen=True)
class Invoice:
    """A 100 with its 110/120/150, lines, invoice-level rejects (290 level 03) and movements (250 level 03)."""

    invoice_number: int
    status: str  # 'P' paid, 'S' paid with signals, 'R' rejected
    payee_code: int  # 10, 35, 36
    reception_date: _dt.date
    liquidation_date: _dt.date
    working_days_to_payment: int
    billed: int
    base: int
    amo: int
    pf_franchise: int
    paid: int
    debt: int
    insured: Insured
    patient: Patient
    nature: str  # nature d'assurance, two letters
    exo_reason: int
    budget: str
    lines: tuple[Line, ...] = ()
    rejects: tuple[Reject, ...] = ()
    movements: tuple[Movement, ...] = ()

    def __post_init__(self) -> None:
        _tuples(self, "lines", "rejects", "movements")


@dataclass(frozen=True)
class Lot:
    """An 080: the B2 lot the invoices came in."""

    b2_file_date: _dt.date
    lot_number: int
    b2_file_sequence: int
    family: str  # AS, MA, AT, SG
    invoices: tuple[Invoice, ...] = ()

    def __post_init__(self) -> None:
        _tuples(self, "invoices")


@dataclass(frozen=True)
class BudgetBlock:
    """A 040 + 070 pair and its lots: what one budget (AMO, APIAS, SIG) pays the PS that day."""

    budget: str
    iban: str | None  # None when the payment is held (written as spaces)
    payment_date: _dt.date
    lots: tuple[Lot, ...] = ()
    transfer: Movement | None = None  # the 250 level 01, written only when present

    def __post_init__(self) -> None:
        _tuples(self, "lots")


@dataclass(frozen=True)
class ReturnFile:
    """One return file: a PS, a creation instant, a per-PS sequence number, its budget blocks."""

    ps_number: int
    created: _dt.datetime
    sequence: int
    blocks: tuple[BudgetBlock, ...] = ()

    def __post_init__(self) -> None:
        _tuples(self, "blocks")


# entity field ↔ model attribute, for the entities that map one model object (fields as data)
_ATTRS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "080": (("b2_file_date", "b2_file_date"), ("lot_number", "lot_number"),
            ("b2_file_sequence", "b2_file_sequence"), ("lot_family", "family")),
    "100": tuple((n, n) for n in ENTITIES["100"].names if n not in ("entity", "level")),
    "110": (("nir_and_key", "nir15"), ("last_name", "last_name"), ("first_name", "first_name")),
    "120": tuple((n, n) for n in ENTITIES["120"].names if n not in ("entity", "level")),
    "150": (("nature_assurance", "nature"), ("exo_reason", "exo_reason"), ("budget", "budget")),
    "210": tuple((n, n) for n in ENTITIES["210"].names if n not in ("entity", "level")),
    "250": (("level", "level"), ("movement_type", "type"), ("sign", "sign"), ("amount", "amount"),
            ("end_to_end_id", "end_to_end_id"), ("value_date", "value_date"), ("budget", "budget")),
    "290": tuple((n, n) for n in ENTITIES["290"].names if n not in ("entity", "level")),
}
_NONE_IS_BLANK: Final = frozenset({"creditor_iban", "nii", "nii_key"})  # None ↔ spaces


def _to_fields(code: str, obj: Any) -> dict[str, Any]:
    return {ef: getattr(obj, attr) for ef, attr in _ATTRS[code]}


def _from_fields(code: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {attr: values[ef] for ef, attr in _ATTRS[code]}


# --- totals (§2.4) ------------------------------------------------------------------------

class Totals(NamedTuple):
    """The amounts and count of a 990, in field order."""

    billed: int
    base: int
    paid: int
    amo: int
    pf_franchise: int
    children: int


def _sum(parts: Iterable[Totals], children: int) -> Totals:
    acc = [0] * 5
    for p in parts:
        for i in range(5):
            acc[i] += p[i]
    return Totals(*acc, children)


def _invoice_totals(inv: Invoice) -> Totals:
    # 990(03) closes the invoice: the sum of its 210 lines (PF and franchise together)
    return _sum((Totals(x.billed, x.base, x.paid, x.amo, x.pf + x.franchise, 0) for x in inv.lines), len(inv.lines))


def _lot_totals(lot: Lot) -> Totals:
    # 990(02) closes the lot: the sum of its 100 invoices as reported
    return _sum((Totals(x.billed, x.base, x.paid, x.amo, x.pf_franchise, 0) for x in lot.invoices), len(lot.invoices))


def _block_totals(block: BudgetBlock) -> Totals:
    # 990(01) closes the budget block: the sum of its lots (their 990(02))
    return _sum(map(_lot_totals, block.lots), len(block.lots))


def _check_movement(m: Movement, level: int, where: str) -> None:
    """A 250 as §2.2/§2.4 allow it where it hangs (a transfer is type 1, > 0 and credited)."""
    if m.level != level:
        raise ReturnsError(f"{where}: movement of level {m.level} where level {level} is expected")
    if level == 1 and (m.type != 1 or m.sign != "+" or m.amount <= 0):
        raise ReturnsError(f"{where}: the transfer of the day must be type 1, sign '+', amount > 0")
    if level == 3 and m.type not in (2, 3):
        raise ReturnsError(f"{where}: an invoice movement is type 2 (debt) or 3 (penalty)")
    if m.type == 2 and m.end_to_end_id:
        raise ReturnsError(f"{where}: end_to_end_id must be spaces for a type 2 movement")


# --- encoder ------------------------------------------------------------------------------

class _Writer:
    """Entities in file order; knows the ordinal for error messages and the birth-date pivot."""

    def __init__(self, pivot_yy: int) -> None:
        self.pivot_yy = pivot_yy
        self.parts: list[bytes] = []

    def where(self, code: str) -> str:
        return f"entity #{len(self.parts) + 1} ({code})"

    def put(self, code: str, values: Mapping[str, Any]) -> None:
        out = []
        for name, f, const, allowed in _PLANS[code]:
            if const is not None:
                out.append(const)
                continue
            v = values[name]
            if f.kind in ("N", "M") and type(v) is int and 0 <= v < 10 ** f.length:
                raw = b"%0*d" % (f.length, v)  # the common case, without the generic checks
            else:
                if f.kind == "A":
                    v = "" if v is None and name in _NONE_IS_BLANK else v
                    if isinstance(v, str) and not (v.isascii() and v.isprintable() and "@" not in v):
                        v = sanitize(v)
                try:
                    raw = encode_value(f, v, self.pivot_yy)
                except ValueError as e:  # the reason never quotes the value
                    raise ReturnsError(f"{self.where(code)} -> {name}: {e}") from None
            if allowed and raw not in allowed:
                raise ReturnsError(f"{self.where(code)} -> {name}: not one of "
                                   f"{', '.join(repr(x.decode()) for x in sorted(allowed))}")
            out.append(raw)
        self.parts.append(b"".join(out) + END)


# per entity: (field name, field, constant bytes or None, accepted raw values)
_PLANS: Final = {
    code: tuple((f.name, f, (b" " * f.length if f.kind == "F" else _CONST[code].get(f.name)),
                 frozenset(x.encode("ascii") for x in f.values or ())) for f in lay.fields)
    for code, lay in ENTITIES.items()}


def _put_totals(w: _Writer, level: int, t: Totals) -> None:
    w.put("990", {"level": level, "closed_entity": _CLOSES[level], **t._asdict()})


def _put_invoice(w: _Writer, inv: Invoice) -> None:
    w.put("100", _to_fields("100", inv))
    w.put("110", _to_fields("110", inv.insured))
    w.put("120", _to_fields("120", inv.patient))
    w.put("150", _to_fields("150", inv))
    for line in inv.lines:
        w.put("210", _to_fields("210", line))
        for r in line.rejects:
            w.put("290", {"level": 5, **_to_fields("290", r)})
    for r in inv.rejects:
        w.put("290", {"level": 3, **_to_fields("290", r)})
    for m in inv.movements:
        _check_movement(m, 3, w.where("250"))
        w.put("250", _to_fields("250", m))
    _put_totals(w, 3, _invoice_totals(inv))


def encode(rf: ReturnFile) -> bytes:
    """The return file's bytes (§2.2 order, no line breaks); 990 and 999 computed from the tree."""
    c = rf.created
    w = _Writer(pivot_yy=c.year % 100)
    w.put("000", {"recipient_ps_number": rf.ps_number, "creation_date": c.date(),
                  "creation_time": c.hour * 10000 + c.minute * 100 + c.second, "return_sequence": rf.sequence})
    paid = invoices = 0
    for block in rf.blocks:
        # payee_id: the PS billing number in its 9-digit form, left aligned in 15
        w.put("040", {"payee_id": f"{rf.ps_number:09d}", "budget": block.budget, "creditor_iban": block.iban})
        w.put("070", {"payment_date": block.payment_date})
        for lot in block.lots:
            w.put("080", _to_fields("080", lot))
            for inv in lot.invoices:
                _put_invoice(w, inv)
            _put_totals(w, 2, _lot_totals(lot))
            invoices += len(lot.invoices)
        if block.transfer is not None:
            _check_movement(block.transfer, 1, w.where("250"))
            w.put("250", _to_fields("250", block.transfer))
            paid += block.transfer.amount
        _put_totals(w, 1, _block_totals(block))
    w.put("999", {"entity_count": len(w.parts) + 1, "paid": paid, "invoices": invoices})
    return b"".join(w.parts)


# --- decoder ------------------------------------------------------------------------------

class _Entity(NamedTuple):
    ordinal: int  # from 1
    code: str
    level: int | None
    raw: bytes


def _split(data: bytes) -> list[_Entity]:
    """Entities of the file: '@' ends (or separates) them, CR/LF between them are ignored."""
    chunks = [c.strip(b"\r\n") for c in bytes(data).split(END)]
    out: list[_Entity] = []
    for raw in chunks:
        if not raw:
            continue
        n = len(out) + 1
        code = raw[:3].decode("ascii", "replace")
        if code not in ENTITIES:
            raise ReturnsError(f"entity #{n}: unknown entity code")
        lv = raw[3:5]
        out.append(_Entity(n, code, int(lv) if code in _LEVELLED and lv.isdigit() else None, raw))
    return out


class _Reader:
    """A cursor over the entities, reading them with the §2.2 grammar."""

    def __init__(self, entities: list[_Entity]) -> None:
        self.ents = entities
        self.i = 0
        self.pivot_yy = 99

    def at(self, code: str, level: int | None = None) -> bool:
        if self.i >= len(self.ents):
            return False
        e = self.ents[self.i]
        return e.code == code and (level is None or e.level == level)

    def take(self, code: str, level: int | None = None) -> tuple[int, dict[str, Any]]:
        """(ordinal, field values) of the next entity, which must be `code` at `level`."""
        want = code if level is None else f"{code} level {level:02d}"
        if not self.at(code, level):
            if self.i >= len(self.ents):
                raise ReturnsError(f"end of file: {want} expected")
            e = self.ents[self.i]
            raise ReturnsError(f"entity #{e.ordinal} ({e.code}): {want} expected")
        e = self.ents[self.i]
        self.i += 1
        return e.ordinal, self._fields(e)

    def _fields(self, e: _Entity) -> dict[str, Any]:
        lay = ENTITIES[e.code]
        where = f"entity #{e.ordinal} ({e.code})"
        if len(e.raw) != lay.width:
            raise ReturnsError(f"{where}: {len(e.raw)} bytes, not {lay.width}")
        if any(b < 0x20 or b > 0x7E for b in e.raw):
            raise ReturnsError(f"{where}: not printable ASCII")
        out: dict[str, Any] = {}
        for f, sl in zip(lay.fields, lay.slices):
            raw = e.raw[sl]
            if f.kind == "F":
                if raw.strip(b" "):
                    raise ReturnsError(f"{where}: filler at offset {f.start - 1} is not spaces")
                continue
            if f.values and raw.decode("ascii") not in f.values:
                raise ReturnsError(f"{where} -> {f.name}: not one of {', '.join(map(repr, f.values))}")
            try:
                v = decode_value(f, raw, self.pivot_yy)
            except ValueError as err:
                raise ReturnsError(f"{where} -> {f.name}: {err}") from None
            if f.kind == "D" and v is None:
                raise ReturnsError(f"{where} -> {f.name}: date required")
            out[f.name] = None if v == "" and f.name in _NONE_IS_BLANK else v
        return out


def _check_totals(ordinal: int, values: Mapping[str, Any], level: int, computed: Totals) -> None:
    where = f"entity #{ordinal} (990 level {level:02d})"
    if values["closed_entity"] != _CLOSES[level]:
        raise ReturnsError(f"{where}: closes {values['closed_entity']}, not {_CLOSES[level]}")
    for name, want in computed._asdict().items():
        if values[name] != want:
            raise ReturnsError(f"{where}: total {name} does not hold (read {values[name]}, computed {want})")


def _read_rejects(r: _Reader, level: int) -> list[Reject]:
    out = []
    while r.at("290", level):
        out.append(Reject(**_from_fields("290", r.take("290", level)[1])))
    return out


def _read_invoice(r: _Reader) -> Invoice:
    head = _from_fields("100", r.take("100", 3)[1])
    insured = Insured(**_from_fields("110", r.take("110", 4)[1]))
    patient = Patient(**_from_fields("120", r.take("120", 4)[1]))
    nature = _from_fields("150", r.take("150", 4)[1])
    lines = []
    while r.at("210"):
        values = _from_fields("210", r.take("210", 5)[1])
        lines.append(Line(**values, rejects=_read_rejects(r, 5)))
    rejects = _read_rejects(r, 3)
    movements = []
    while r.at("250", 3):
        o, values = r.take("250", 3)
        m = Movement(**_from_fields("250", values))
        _check_movement(m, 3, f"entity #{o} (250)")
        movements.append(m)
    inv = Invoice(**head, insured=insured, patient=patient, **nature, lines=lines, rejects=rejects, movements=movements)
    o, values = r.take("990", 3)
    _check_totals(o, values, 3, _invoice_totals(inv))
    return inv


def transfers(data: bytes) -> list[tuple[str, str, int]]:
    """(budget, EndToEndId, cents) of every 250 type 01 of a return, read without decoding the
    whole tree: the reconciliation (P7) reads thousands of returns a day. `decode` checks the
    totals; this reads only the transfers, at the offsets of the layout table."""
    lay = ENTITIES["250"]
    cut = {n: lay.slices[lay.names.index(n)] for n in ("level", "movement_type", "amount", "end_to_end_id", "budget")}
    out = []
    for ent in data.replace(b"\r", b"").replace(b"\n", b"").split(END):
        if ent[:3] == b"250" and ent[cut["level"]] == b"01" and ent[cut["movement_type"]] == b"01":
            out.append((ent[cut["budget"]].decode("ascii").strip(), ent[cut["end_to_end_id"]].decode("ascii").strip(),
                        int(ent[cut["amount"]])))
    return out


def decode(data: bytes) -> ReturnFile:
    """The model of a return file; ReturnsError on a bad entity, order or total (990, 999)."""
    r = _Reader(_split(data))
    _, h = r.take("000")
    created = h["creation_date"]
    # birth dates: a two-digit year above the creation year is 19xx (as in B2)
    r.pivot_yy = created.year % 100
    t = h["creation_time"]
    try:
        when = _dt.datetime.combine(created, _dt.time(t // 10000, t // 100 % 100, t % 100))
    except ValueError:
        raise ReturnsError("entity #1 (000) -> creation_time: not a valid time") from None
    ps = h["recipient_ps_number"]
    blocks = []
    paid = invoices = 0
    while r.at("040"):
        o, payee = r.take("040", 1)
        if payee["payee_id"] != f"{ps:09d}":
            raise ReturnsError(f"entity #{o} (040) -> payee_id: not the recipient of the file")
        _, day = r.take("070", 1)
        lots = []
        while r.at("080"):
            head = _from_fields("080", r.take("080", 2)[1])
            invs = []
            while r.at("100"):
                invs.append(_read_invoice(r))
            lot = Lot(**head, invoices=invs)
            o, values = r.take("990", 2)
            _check_totals(o, values, 2, _lot_totals(lot))
            lots.append(lot)
            invoices += len(invs)
        transfer = None
        if r.at("250", 1):
            o, values = r.take("250", 1)
            transfer = Movement(**_from_fields("250", values))
            _check_movement(transfer, 1, f"entity #{o} (250)")
            paid += transfer.amount
        block = BudgetBlock(payee["budget"], payee["creditor_iban"], day["payment_date"], lots, transfer)
        o, values = r.take("990", 1)
        _check_totals(o, values, 1, _block_totals(block))
        blocks.append(block)
    o, end = r.take("999")
    if r.i < len(r.ents):
        raise ReturnsError(f"entity #{r.ents[r.i].ordinal}: entity after the 999")
    for name, want in (("entity_count", len(r.ents)), ("paid", paid), ("invoices", invoices)):
        if end[name] != want:
            raise ReturnsError(f"entity #{o} (999): total {name} does not hold (read {end[name]}, computed {want})")
    return ReturnFile(ps, when, h["return_sequence"], blocks)
