"""Declarative fixed-width record layouts: `Field`, `Layout`, and their compiled array form.

A `Layout` checks itself when it is built (fields cover bytes 1..width with no gap or
overlap) and precomputes its slices, so decoding does no per-record setup. `compile_layouts`
turns a set of layouts into one int64 table (`spec[type, field, attribute]`) that numba
kernels read with `read_field`; `check_value` is the plain-Python twin of `read_field` (same
statuses, same values) used for single records and as the reference in tests.

Field kinds (b2-profile.md §1): `N` digits, `A` text, `D` date AAMMJJ, `M` amount in cents,
`C` coefficient N(i+d) as an int in its smallest unit, `F` filler.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numba import njit

from fseflow.config import NJIT_OPTIONS
from fseflow.days import NO_DATE, to_days

from .exceptions import FieldDecodeError, FieldEncodeError
from .nir import luhn_ok, luhn_ok_at

#: NJIT_OPTIONS plus numba-level inlining, for the small helpers the decoder calls per record
#: or per field. LLVM leaves them as calls, and a call that passes arrays costs an atomic
#: incref/decref of each: inlining read_digits and read_date made the decode kernel ~15 %
#: faster, for about 10 s more of first compilation. Keep it to small helpers.
NJIT_INLINE: Final = {**NJIT_OPTIONS, "inline": "always"}

RECORD_WIDTH: Final = 128

KINDS: Final = {"F": 0, "N": 1, "A": 2, "D": 3, "M": 4, "C": 5}
K_FILLER, K_N, K_A, K_D, K_M, K_C = range(6)

# flag bits of a compiled field
FL_ZERO_OK: Final = 1  # D: 000000 accepted (no date)
FL_BLANK_OK: Final = 2  # all spaces accepted
FL_BIRTH: Final = 4  # D: century rule of birth dates
FL_CHECK: Final = 8  # validated by the record's control
FL_LUHN: Final = 16  # last digit is the Luhn key of the others
FL_REQUIRED: Final = 32  # A: not all spaces
FL_SIMPLE: Final = 64  # N/M/C: no check beyond "all digits"; A: no check at all

# attributes of spec[type, field, :]
A_START, A_LEN, A_KIND, A_FLAGS, A_LO, A_HI, A_AV0, A_AV1, A_CODE = range(9)
N_ATTR: Final = 9

# statuses of read_field / check_value (0 and 1 are readable)
ST_OK, ST_BLANK, ST_DIGITS, ST_DATE, ST_NO_DATE, ST_RANGE, ST_VALUE, ST_KEY, ST_REQUIRED = range(9)
STATUS_TEXT: Final = {
    ST_DIGITS: "not all digits",
    ST_DATE: "not a valid date",
    ST_NO_DATE: "date required",
    ST_RANGE: "out of range",
    ST_VALUE: "value not accepted",
    ST_KEY: "check key invalid",
    ST_REQUIRED: "required, found blank",
}


@dataclass(frozen=True)
class Field:
    """One field of a record: 1-based `start`, `length` bytes, `kind`, and its validation.

    `values` lists the accepted raw contents; `table` = (table name, column) names a reference
    table whose column gives them. `check=False` marks the framing fields (record type, lot
    number, sequence) that grammar controls check instead of field controls. `code` is the
    reject code of a failure of this field when it is not the record's default.
    """

    name: str
    start: int
    length: int
    kind: str
    decimals: int = 0
    zero_ok: bool = False
    blank_ok: bool = False
    required: bool = False
    lo: int | None = None
    hi: int | None = None
    values: tuple[str, ...] = ()
    table: tuple[str, str] | None = None
    key: str | None = None
    birth: bool = False
    check: bool = True
    code: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name}: unknown kind {self.kind!r}")
        if self.start < 1 or self.length < 1:
            raise ValueError(f"field {self.name}: bad position {self.start}/{self.length}")
        if self.kind == "D" and self.length != 6:
            raise ValueError(f"field {self.name}: a date is 6 bytes")
        if self.kind in "NDMC" and self.length > 18:
            raise ValueError(f"field {self.name}: numeric field longer than 18 digits")
        for v in self.values:
            if len(v) != self.length:
                raise ValueError(f"field {self.name}: accepted value {v!r} is not {self.length} bytes")
        if self.key not in (None, "luhn"):
            raise ValueError(f"field {self.name}: unknown key {self.key!r}")

    @property
    def end(self) -> int:
        """Last byte, 1-based inclusive."""
        return self.start + self.length - 1

    @property
    def numeric(self) -> bool:
        return self.kind in "NDMC"

    @property
    def max_value(self) -> int:
        return (10**self.length - 1) if self.hi is None else self.hi


class Layout:
    """The fields of one record type, checked to cover bytes 1..width exactly once."""

    __slots__ = ("record_type", "code", "width", "fields", "slices", "index", "names")

    def __init__(self, record_type: str, fields: Sequence[Field], width: int = RECORD_WIDTH) -> None:
        self.record_type = record_type
        self.code = record_type.ljust(3).encode("ascii")
        self.width = width
        self.fields = tuple(fields)
        pos = 1
        for f in self.fields:
            if f.start != pos:
                what = "gap" if f.start > pos else "overlap"
                raise ValueError(f"layout {record_type}: {what} before {f.name} (byte {pos}, field starts at {f.start})")
            pos = f.end + 1
        if pos != width + 1:
            raise ValueError(f"layout {record_type}: fields cover {pos - 1} bytes, not {width}")
        names = [f.name for f in self.fields if f.kind != "F"]
        if len(set(names)) != len(names):
            raise ValueError(f"layout {record_type}: duplicate field names")
        self.names = tuple(names)
        self.index = {f.name: i for i, f in enumerate(self.fields) if f.kind != "F"}
        self.slices = tuple(slice(f.start - 1, f.end) for f in self.fields)

    def __getitem__(self, name: str) -> Field:
        return self.fields[self.index[name]]

    def __repr__(self) -> str:
        return f"Layout({self.record_type!r}, {len(self.fields)} fields)"

    def decode(self, rec: bytes, *, pivot_yy: int = 99, path: str = "") -> dict[str, Any]:
        """Values of every non-filler field (object-model form); FieldDecodeError on a bad one."""
        if len(rec) != self.width:
            raise FieldDecodeError(f"{path} -> type {self.record_type}", f"record of {len(rec)} bytes, not {self.width}")
        out: dict[str, Any] = {}
        for f, sl in zip(self.fields, self.slices):
            if f.kind == "F":
                continue
            try:
                out[f.name] = decode_value(f, rec[sl], pivot_yy)
            except ValueError as e:
                raise FieldDecodeError(f"{path} -> type {self.record_type} -> {f.name}", str(e)) from None
        return out

    def encode(self, values: Mapping[str, Any], *, pivot_yy: int = 99, path: str = "") -> bytes:
        """The record bytes; missing fields take 0 / '' / None, unknown names are an error."""
        unknown = set(values) - set(self.names)
        if unknown:
            raise FieldEncodeError(f"{path} -> type {self.record_type}", f"unknown fields {sorted(unknown)}")
        parts = []
        for f in self.fields:
            try:
                parts.append(encode_value(f, values[f.name] if f.name in values else default_value(f), pivot_yy))
            except ValueError as e:
                raise FieldEncodeError(f"{path} -> type {self.record_type} -> {f.name}", str(e)) from None
        return b"".join(parts)


# --- plain-Python field values ------------------------------------------------------------

def default_value(f: Field) -> Any:
    """Value of a field the object model leaves out: '' (A), None (D, blank-able), else 0."""
    return "" if f.kind == "A" else None if (f.kind == "D" or f.blank_ok) else 0


def _century(yy: int, birth: bool, pivot_yy: int) -> int:
    return 1900 + yy if birth and yy > pivot_yy else 2000 + yy


def decode_value(f: Field, raw: bytes, pivot_yy: int = 99) -> Any:
    """Object-model value of one field: int, str (padding removed), date or None."""
    if f.kind == "F":
        return None
    if f.kind == "A":
        try:
            return raw.decode("ascii").rstrip(" ")
        except UnicodeDecodeError:
            raise ValueError("not ASCII") from None
    if f.blank_ok and raw.strip(b" ") == b"":
        return None
    if not raw.isdigit():
        raise ValueError("not all digits")
    v = int(raw)
    if f.kind != "D":
        return v
    if v == 0:
        return None
    try:
        return _dt.date(_century(v // 10000, f.birth, pivot_yy), v // 100 % 100, v % 100)
    except ValueError:
        raise ValueError("not a valid date") from None


def encode_value(f: Field, value: Any, pivot_yy: int = 99) -> bytes:
    """Bytes of one field; ValueError when the value does not fit."""
    n = f.length
    if f.kind == "F":
        return b" " * n
    if f.kind == "A":
        s = "" if value is None else value
        if not isinstance(s, str):
            raise ValueError(f"text expected, got {type(s).__name__}")
        b = s.encode("ascii", "replace")
        if len(b) > n or any(c < 0x20 or c > 0x7E for c in b) or not s.isascii():
            raise ValueError(f"text must be printable ASCII of at most {n} characters")
        return b.ljust(n, b" ")
    if value is None and (f.blank_ok or f.kind == "D"):
        return b" " * n if f.blank_ok else b"000000"
    if f.kind == "D":
        if not isinstance(value, _dt.date):
            raise ValueError(f"date expected, got {type(value).__name__}")
        yy = value.year % 100
        century = _century(yy, f.birth, pivot_yy)
        # a person over 100 has the digits of a 20AA birth: they are written all the same, and
        # the directory's full birth date finds them (b2-profile.md §2)
        if century != value.year and not (f.birth and century - 100 == value.year):
            raise ValueError("year outside the two-digit window of the profile")
        return b"%02d%02d%02d" % (yy, value.month, value.day)
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ValueError(f"int expected, got {type(value).__name__}")
    if not 0 <= value < 10**n:
        raise ValueError(f"does not fit in {n} digits")
    return b"%0*d" % (n, value)


def check_value(f: Field, raw: bytes, pivot_yy: int, allowed: tuple[bytes, ...] = ()) -> tuple[int, int]:
    """(value, status) of one field as the kernel's `read_field` gives them.

    Value: the int for N/M/C, the day number for D (NO_DATE when absent or unreadable), 0 for A
    and for unreadable numbers. `allowed` = the accepted raw values (from `values`/`table`).
    """
    if f.kind == "A":
        if f.required and raw.strip(b" ") == b"":
            return 0, ST_REQUIRED
        if allowed and raw not in allowed:
            return 0, ST_VALUE
        return 0, ST_OK
    if f.kind == "F":
        return 0, ST_OK
    if f.blank_ok and raw == b" " * len(raw):
        return (NO_DATE if f.kind == "D" else 0), ST_BLANK
    if not (raw.isascii() and raw.isdigit()):
        return (NO_DATE if f.kind == "D" else 0), ST_DIGITS
    v = int(raw)
    if f.kind == "D":
        if v == 0:
            return NO_DATE, (ST_OK if f.zero_ok else ST_NO_DATE)
        try:
            d = _dt.date(_century(v // 10000, f.birth, pivot_yy), v // 100 % 100, v % 100)
        except ValueError:
            return NO_DATE, ST_DATE
        return to_days(d), ST_OK
    if v < (f.lo or 0) or v > f.max_value:
        return v, ST_RANGE
    if allowed and raw not in allowed:
        return v, ST_VALUE
    if f.key == "luhn" and not luhn_ok(raw.decode("ascii")):
        return v, ST_KEY
    return v, ST_OK


# --- numba form ---------------------------------------------------------------------------

@njit(**NJIT_OPTIONS)
def days_from_civil(y, m, d):  # type: ignore[no-untyped-def]
    """Day number (days since 1970-01-01) of a valid proleptic Gregorian date."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@njit(**NJIT_OPTIONS)
def valid_ymd(y, m, d):  # type: ignore[no-untyped-def]
    if m < 1 or m > 12 or d < 1:
        return False
    if m == 2:
        leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
        return d <= (29 if leap else 28)
    if m == 4 or m == 6 or m == 9 or m == 11:
        return d <= 30
    return d <= 31


# The digit loops index with unsigned ints: a signed index makes numba test for negative
# (wrap-around) indices on every byte, which made them several times slower.
_U48 = np.uint64(48)
_U9 = np.uint64(9)
_U10 = np.uint64(10)


@njit(**NJIT_INLINE)
def read_digits(buf, p, n):  # type: ignore[no-untyped-def]
    """Int value of `n` digit bytes at `p`, or -1 when any byte is not a digit."""
    v = np.uint64(0)
    bad = False
    q = np.uint64(p)
    for j in range(np.uint64(n)):  # no early exit: the loop stays branch-free
        c = np.uint64(buf[q + j]) - _U48  # wraps to a huge value below '0'
        bad |= c > _U9
        v = v * _U10 + c
    return np.int64(-1) if bad else np.int64(v)


@njit(**NJIT_INLINE)
def scan_record(buf, p, dmask, t):  # type: ignore[no-untyped-def]
    """(a byte outside 0x20-0x7E, a non-digit where layout t wants digits) for the record at p.

    One branch-free pass over the 128 bytes; the per-field work that follows can then skip
    the digit check of every simple numeric field.
    """
    bad_char = np.uint8(0)
    bad_digit = np.uint8(0)
    q = np.uint64(p)
    tu = np.uint64(t)
    for j in range(np.uint64(128)):
        b = buf[q + j]
        bad_char |= np.uint8(b - np.uint8(32)) > np.uint8(94)
        bad_digit |= dmask[tu, j] & (np.uint8(b - np.uint8(48)) > np.uint8(9))
    return bad_char != 0, bad_digit != 0


@njit(**NJIT_OPTIONS)
def all_spaces(buf, p, n):  # type: ignore[no-untyped-def]
    for j in range(n):
        if buf[p + j] != 32:
            return False
    return True


@njit(**NJIT_OPTIONS)
def _allowed(buf, p, n, av, av0, av1):  # type: ignore[no-untyped-def]
    q = av0
    while q < av1:
        same = True
        for j in range(n):
            if buf[p + j] != av[q + j]:
                same = False
                break
        if same:
            return True
        q += n
    return False


@njit(**NJIT_INLINE)
def read_date(buf, q, flags, pivot_yy):  # type: ignore[no-untyped-def]
    """(day number, status) of the AAMMJJ date at q; NO_DATE when absent or unreadable."""
    v = read_digits(buf, q, 6)
    if v < 0:
        return np.int64(NO_DATE), ST_DIGITS
    if v == 0:
        return np.int64(NO_DATE), (ST_OK if flags & FL_ZERO_OK else ST_NO_DATE)
    yy = v // 10000
    y = 1900 + yy if (flags & FL_BIRTH and yy > pivot_yy) else 2000 + yy
    m = v // 100 % 100
    d = v % 100
    if not valid_ymd(y, m, d):
        return np.int64(NO_DATE), ST_DATE
    return np.int64(days_from_civil(y, m, d)), ST_OK


@njit(**NJIT_OPTIONS)
def read_field(buf, p, spec, t, k, av, pivot_yy):  # type: ignore[no-untyped-def]
    """(value, status) of field k of layout t (`spec[t, k]`) in the record at offset `p`.

    Mirrors `check_value`. Takes the whole spec, not a row view: a view per field costs
    reference counting in the hot loop.
    """
    q = p + spec[t, k, A_START]
    n = spec[t, k, A_LEN]
    kind = spec[t, k, A_KIND]
    flags = spec[t, k, A_FLAGS]
    av0 = spec[t, k, A_AV0]
    av1 = spec[t, k, A_AV1]
    if kind == K_A:
        if flags & FL_REQUIRED and all_spaces(buf, q, n):
            return np.int64(0), ST_REQUIRED
        if av1 > av0 and not _allowed(buf, q, n, av, av0, av1):
            return np.int64(0), ST_VALUE
        return np.int64(0), ST_OK
    if kind == K_FILLER:
        return np.int64(0), ST_OK
    is_date = kind == K_D
    if flags & FL_BLANK_OK and all_spaces(buf, q, n):
        return (np.int64(NO_DATE) if is_date else np.int64(0)), ST_BLANK
    if is_date:
        return read_date(buf, q, flags, pivot_yy)
    v = read_digits(buf, q, n)
    if v < 0:
        return np.int64(0), ST_DIGITS
    if v < spec[t, k, A_LO] or v > spec[t, k, A_HI]:
        return v, ST_RANGE
    if av1 > av0 and not _allowed(buf, q, n, av, av0, av1):
        return v, ST_VALUE
    if flags & FL_LUHN and not luhn_ok_at(buf, q, n):
        return v, ST_KEY
    return v, ST_OK


# --- compiled layouts ---------------------------------------------------------------------

TableResolver = Callable[[str, str], tuple[str, ...]]


@dataclass(frozen=True)
class CompiledLayouts:
    """Layouts as arrays: `spec[t, k, A_*]`, accepted values in `av`, reject codes by id."""

    layouts: tuple[Layout, ...]
    spec: np.ndarray
    dmask: np.ndarray  # [type, byte]: 1 where a checked numeric field must hold a digit
    av: np.ndarray
    allowed: tuple[tuple[tuple[bytes, ...], ...], ...]
    codes: tuple[str, ...]

    def check(self, t: int, k: int, rec: bytes, pivot_yy: int) -> tuple[int, int]:
        """`check_value` of field k of layout t in a record (plain Python)."""
        lay = self.layouts[t]
        return check_value(lay.fields[k], rec[lay.slices[k]], pivot_yy, self.allowed[t][k])


def compile_layouts(layouts: Sequence[Layout], resolve: TableResolver | None = None) -> CompiledLayouts:
    """Array form of `layouts` (index = position in the sequence) for the kernels."""
    max_f = max(len(lay.fields) for lay in layouts)
    spec = np.zeros((len(layouts), max_f, N_ATTR), dtype=np.int64)
    spec[:, :, A_CODE] = -1
    dmask = np.zeros((len(layouts), max(lay.width for lay in layouts)), dtype=np.uint8)
    av_parts: list[bytes] = []
    av_len = 0
    codes: list[str] = []
    allowed_all = []
    for t, lay in enumerate(layouts):
        allowed_t = []
        for k, f in enumerate(lay.fields):
            vals = tuple(v.encode("ascii") for v in f.values)
            if f.table is not None:
                if resolve is None:
                    raise ValueError(f"field {f.name} names table {f.table} but no resolver was given")
                vals += tuple(v.encode("ascii") for v in resolve(*f.table) if len(v) == f.length)
            allowed_t.append(vals)
            simple = (f.kind in "NMCA" and not vals and not f.key and not f.blank_ok and not f.required
                      and not f.lo and (f.kind == "A" or f.max_value == 10**f.length - 1))
            flags = (
                (FL_ZERO_OK if f.zero_ok else 0) | (FL_BLANK_OK if f.blank_ok else 0)
                | (FL_BIRTH if f.birth else 0) | (FL_CHECK if f.check and f.kind != "F" else 0)
                | (FL_LUHN if f.key == "luhn" else 0) | (FL_REQUIRED if f.required else 0)
                | (FL_SIMPLE if simple else 0)
            )
            if f.check and f.numeric and not f.blank_ok:
                dmask[t, f.start - 1:f.end] = 1
            if f.code and f.code not in codes:
                codes.append(f.code)
            spec[t, k] = (
                f.start - 1, f.length, KINDS[f.kind], flags, f.lo or 0,
                f.max_value if f.numeric else 0, av_len, av_len + sum(map(len, vals)),
                codes.index(f.code) if f.code else -1,
            )
            av_parts.extend(vals)
            av_len += sum(map(len, vals))
        allowed_all.append(tuple(allowed_t))
    av = np.frombuffer(b"".join(av_parts) or b"\0", dtype=np.uint8).copy()
    return CompiledLayouts(tuple(layouts), spec, dmask, av, tuple(allowed_all), tuple(codes))
