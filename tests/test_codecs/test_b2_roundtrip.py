"""Round trips on random object models (hypothesis).

1. Any model whose values fit its fields: parse(encode(x)) == normalize(x), in every framing.
2. Any structurally valid model: decode says 'P' and every column equals the model's value,
   the expected values being read off the `source` text of codecs/columns.py.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fseflow.codecs import b2
from fseflow.codecs._layout import Field, Layout
from fseflow.codecs.b2_layouts import LAYOUTS
from fseflow.codecs.columns import INVOICE_COLUMNS, LINE_COLUMNS
from fseflow.codecs.model import B2File, Detail, Invoice, Line, Lot
from fseflow.codecs.nir import nir_key
from fseflow.days import NO_DATE, to_days
from fseflow.tests.test_codecs.factory import (
    bio_detail,
    ccam_detail,
    device_line,
    fee_line,
    file_model,
    hosp_line,
    invoice_model,
    lot_model,
    pharmacy_line,
    ps_number,
    ucd_detail,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CREATED = dt.date(2025, 3, 14)
# fields the encoder derives: left out of the random mappings (normalize fills them)
DERIVED = {"record_type", "lot_number", "record_seq"}
REPEATS = {"nir_opener", "nir_key", "rang_beneficiaire", "invoice_number"}


def field_value(f: Field) -> st.SearchStrategy[Any]:
    """Any value that fits field f (dates inside the profile's two-digit window)."""
    if f.kind == "A":
        return st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=f.length).map(
            lambda s: s.rstrip(" "))
    if f.kind == "D":
        lo, hi = (dt.date(CREATED.year - 99, 1, 1), CREATED) if f.birth else (dt.date(2000, 1, 1), dt.date(2099, 12, 31))
        return st.one_of(st.none(), st.dates(lo, hi))
    values = st.integers(0, 10**f.length - 1)
    return st.one_of(st.none(), values) if f.blank_ok else values


def fields_of(code: str, skip: set[str] = frozenset()) -> st.SearchStrategy[dict[str, Any]]:
    lay = LAYOUTS[code]
    return st.fixed_dictionaries({f.name: field_value(f) for f in lay.fields
                                  if f.kind != "F" and f.name not in DERIVED | set(skip)})


def _line(kind: str) -> st.SearchStrategy[Line]:
    details = {"3": ["3H", "3F"], "4": ["4M", "4B", "4P", "3F"]}[kind]
    amounts = {"base", "amo_amount", "billed_amount", "amc_amount"}

    def build(fields: dict[str, Any], money: list[int], ds: list[Detail]) -> Line:
        base, amo, billed, amc = money
        fields.update(base=base, amo_amount=min(amo, billed), billed_amount=billed, amc_amount=amc)
        return Line(kind, fields, ds)

    detail = st.sampled_from(details).flatmap(lambda d: fields_of(d, REPEATS).map(lambda f: Detail(d, f)))
    return st.builds(build, fields_of(kind, REPEATS | amounts), st.lists(st.integers(0, 99_999), min_size=4,
                                                                          max_size=4), st.lists(detail, max_size=2))


def _invoice() -> st.SearchStrategy[Invoice]:
    lines = st.lists(st.sampled_from(["3", "4"]).flatmap(_line), min_size=1, max_size=3)
    return st.builds(Invoice, fields_of("2"), fields_of("2S", REPEATS), lines)


ANY_MODEL = st.builds(
    B2File,
    fields_of("000").map(lambda h: {**h, "creation_date": CREATED}),
    st.lists(st.builds(Lot, fields_of("1", {"invoice_count_expected"}), st.lists(_invoice(), min_size=1, max_size=2)),
             min_size=1, max_size=2),
)


@SETTINGS
@given(ANY_MODEL, st.sampled_from(["fixed", "LF", "CRLF"]))
def test_parse_encode_round_trip(model: B2File, framing: str) -> None:
    data = b2.encode(model, framing=framing)
    assert len(data) % {"fixed": 128, "LF": 129, "CRLF": 130}[framing] == 0
    assert b2.parse(data, "any.b2") == b2.normalize(model)


@SETTINGS
@given(st.sampled_from(list(LAYOUTS)), st.data())
def test_every_layout_round_trips(code: str, data: st.DataObject) -> None:
    roundtrip(LAYOUTS[code], data.draw(fields_of(code)))


def roundtrip(layout: Layout, values: dict[str, Any]) -> None:
    """Encode one record, check its width, decode it back to the same values, encode again."""
    values = {**values, "record_type": layout.record_type}
    raw = layout.encode(values, pivot_yy=CREATED.year % 100)
    assert len(raw) == 128 and raw.isascii()
    back = layout.decode(raw, pivot_yy=CREATED.year % 100)
    assert {k: v for k, v in back.items() if k in values} == values
    assert layout.encode(back, pivot_yy=CREATED.year % 100) == raw


# --- valid models: decode agrees with the objects ----------------------------------------------

def _nir(draw: st.DrawFn) -> str:
    digits = draw(st.text("0123456789", min_size=13, max_size=13))
    if draw(st.booleans()) and draw(st.booleans()):
        digits = digits[:5] + draw(st.sampled_from(["2A", "2B"])) + digits[7:]
    return digits


@st.composite
def valid_line(draw: st.DrawFn) -> Line:
    kind = draw(st.sampled_from(["G", "AMI", "pharmacy", "B", "ADC", "OPT", "FJ"]))
    price = draw(st.integers(1, 50_000))
    care = draw(st.dates(dt.date(2024, 1, 1), dt.date(2025, 3, 14)))
    if kind == "G":
        return fee_line("G", unit_price=price, care=care, executor_rpps=draw(st.integers(0, 10**11 - 1)))
    if kind == "AMI":
        return fee_line("AMI", coefficient=draw(st.integers(1, 9999)), unit_price=315, care=care)
    if kind == "pharmacy":
        cip = draw(st.integers(10**11, 10**12 - 1))
        body = f"{cip:012d}"
        key = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10) % 10
        line = pharmacy_line(draw(st.sampled_from(["PH1", "PH7", "PH4", "PH2", "PHN"])),
                             boxes=draw(st.integers(1, 99)), price=price, cip13=int(body + str(key)))
        line.fields["care_date"] = line.details[0].fields["dispensing_date"] = care
        return line
    if kind == "B":
        blocks = tuple(draw(st.lists(st.tuples(st.integers(1, 99), st.integers(0, 9999)), min_size=1, max_size=5)))
        return fee_line("B", coefficient=1700, unit_price=27, care=care, details=[bio_detail(care, blocks)])
    if kind == "ADC":
        code = draw(st.from_regex(r"[A-Z]{4}[0-9]{3}", fullmatch=True))
        return fee_line("ADC", unit_price=price, care=care, details=[ccam_detail(code)])
    if kind == "OPT":
        return device_line(price=price, care=care)
    # 3H totals must add up to the line's billed amount (C38); with no 3H the price stands alone
    parts = draw(st.lists(st.integers(1, 5000), min_size=0, max_size=3))
    return hosp_line(unit_price=sum(parts) or price, care=care, details=[ucd_detail(p) for p in parts])


@st.composite
def valid_invoice(draw: st.DrawFn) -> Invoice:
    nir = _nir(draw)
    nii = draw(st.one_of(st.just(""), st.builds(lambda: _nir(draw))))
    inv = invoice_model(draw(st.lists(valid_line(), min_size=1, max_size=4)), nir=nir,
                        number=draw(st.integers(1, 10**9 - 1)),
                        birth_date=draw(st.dates(dt.date(1926, 3, 15), dt.date(2025, 3, 14))),
                        qualite_beneficiaire=draw(st.integers(1, 4)), payee_code=draw(st.sampled_from([10, 35, 36])),
                        complement={"nii": nii, "nii_key": f"{nir_key(nii):02d}" if nii else "",
                                    "parcours_qualifier": draw(st.sampled_from(["", "T", "M"]))})
    return inv


@st.composite
def valid_file(draw: st.DrawFn) -> B2File:
    lots = [lot_model(draw(st.lists(valid_invoice(), min_size=1, max_size=3)),
                      ps_number=ps_number(draw(st.integers(0, 99_999)), draw(st.integers(1, 95)), draw(st.integers(0, 9))),
                      lot_nature_family=draw(st.sampled_from(["AS", "MA", "AT", "SG"])))
            for _ in range(draw(st.integers(1, 3)))]
    return file_model(lots)


def _sources(spec: tuple[tuple[str, str, str], ...]) -> dict[str, tuple[dict[str, str], dict[str, int]]]:
    """column -> ({record type: field}, {record type: default}) read off columns.py's source text."""
    out = {}
    for name, _, source in spec:
        fields: dict[str, str] = {}
        for part in source.split(";")[0].split(" or "):
            m = re.match(r"([0-9S/]+)\.(\w+)", part.strip())
            if m:
                for code in m.group(1).split("/"):
                    fields[code] = m.group(2)
        defaults = {m.group(2): (NO_DATE if m.group(1) == "NO_DATE" else int(m.group(1)))
                    for m in re.finditer(r"(-?\d+|NO_DATE) on a (\d) line", source)}
        if fields:
            out[name] = (fields, defaults)
    return out


def _cell(code: str, fname: str, value: Any, dtype: str) -> Any:
    f = LAYOUTS[code][fname]
    if dtype.startswith("S") or dtype == "u1":
        raw = value.ljust(f.length).encode()
        return raw[0] if dtype == "u1" else raw
    if f.kind == "D":
        return to_days(value)
    if f.kind == "A":  # a text field read as a number (2S.nii_key): -1 when absent
        return int(value) if value.isdigit() else -1
    return value


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_file(), st.sampled_from(["fixed", "LF", "CRLF"]))
def test_decode_agrees_with_the_objects(model: B2File, framing: str) -> None:
    d = b2.decode(b2.encode(model, framing=framing), "valid.b2")
    assert (d.status, d.reasons) == ("P", [])
    full = b2.normalize(model)
    invoices = [(lot_idx, inv) for lot_idx, lot in enumerate(full.lots) for inv in lot.invoices]
    lines = [(i, line) for i, (_, inv) in enumerate(invoices) for line in inv.lines]
    dtypes = {name: dt_ for name, dt_, _ in INVOICE_COLUMNS + LINE_COLUMNS}
    for name, (fields, _) in _sources(INVOICE_COLUMNS).items():
        [(code, fname)] = fields.items()
        rec = {"2": lambda inv: inv.head, "2S": lambda inv: inv.complement, "5": lambda inv: inv.end}[code]
        expected = [_cell(code, fname, rec(inv)[fname], dtypes[name]) for _, inv in invoices]
        assert d.invoices[name].tolist() == expected, name
    for name, (fields, defaults) in _sources(LINE_COLUMNS).items():
        expected = [_cell(line.kind, fields[line.kind], line.fields[fields[line.kind]], dtypes[name])
                    if line.kind in fields else defaults[line.kind] for _, line in lines]
        assert d.lines[name].tolist() == expected, name
    assert d.invoices["lot_idx"].tolist() == [lot_idx for lot_idx, _ in invoices]
    assert d.lines["invoice_idx"].tolist() == [i for i, _ in lines]
    assert d.invoices["line_count"].tolist() == [len(inv.lines) for _, inv in invoices]
    starts = np.cumsum([0] + [len(inv.lines) for _, inv in invoices])[:-1]
    assert d.invoices["line_start"].tolist() == starts.tolist()
    assert d.lines["detail_bad"].tolist() == [0] * len(lines)
    assert d.lines["nabm_uncheckable"].tolist() == [int(any(x.kind == "4B" for x in line.details)) for _, line in lines]
    assert d.lines["cip13"].tolist() == [next((int(x.fields["cip13"]) for x in line.details if x.kind == "4P"), 0)
                                         for _, line in lines]
    assert [lot.billed for lot in d.lots] == [lot.end["total_billed"] for lot in full.lots]
