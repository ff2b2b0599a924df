"""Layouts: self-validation, and the plain-Python field check against the numba one."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from fseflow.codecs._layout import (
    ST_BLANK,
    ST_DATE,
    ST_DIGITS,
    ST_KEY,
    ST_NO_DATE,
    ST_OK,
    ST_RANGE,
    ST_VALUE,
    Field,
    Layout,
    compile_layouts,
    read_field,
)
from fseflow.codecs.b2_layouts import LAYOUTS, RECORD_TYPES
from fseflow.days import NO_DATE, parse_iso
from fseflow.processors.tables import read_table

F = Field


def test_layout_rejects_gap_overlap_and_short_cover() -> None:
    with pytest.raises(ValueError, match="gap before b"):
        Layout("X", [F("a", 1, 10, "A"), F("b", 12, 117, "A")])
    with pytest.raises(ValueError, match="overlap before b"):
        Layout("X", [F("a", 1, 10, "A"), F("b", 10, 119, "A")])
    with pytest.raises(ValueError, match="cover 127 bytes"):
        Layout("X", [F("a", 1, 127, "A")])
    with pytest.raises(ValueError, match="duplicate"):
        Layout("X", [F("a", 1, 64, "A"), F("a", 65, 64, "A")])
    with pytest.raises(ValueError, match="a date is 6 bytes"):
        F("d", 1, 8, "D")


def test_every_b2_layout_covers_128_bytes_with_the_profile_names() -> None:
    assert tuple(LAYOUTS) == RECORD_TYPES
    for code, lay in LAYOUTS.items():
        assert sum(f.length for f in lay.fields) == 128
        assert lay.fields[0].name == "record_type" and lay.code == code.ljust(3).encode()
    assert LAYOUTS["2"]["birth_date"].start == 96 and LAYOUTS["4"]["billed_amount"].start == 115
    assert LAYOUTS["5"]["total_billed_hosp"].start == 115 and LAYOUTS["9"]["total_amo_claimed"].end == 49


COMPILED = compile_layouts(list(LAYOUTS.values()), lambda t, c: tuple(r[c] for r in read_table(t)))


@njit
def _kernel_check(rec, spec, t, k, av, pivot):  # type: ignore[no-untyped-def]
    return read_field(rec, 0, spec, t, k, av, pivot)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(RECORD_TYPES) - 1), st.data())
def test_python_check_equals_the_kernel(t: int, data: st.DataObject) -> None:
    """check_value is read_field's plain twin: same value, same status, on any bytes."""
    lay = COMPILED.layouts[t]
    k = data.draw(st.integers(0, len(lay.fields) - 1))
    f = lay.fields[k]
    alphabet = b"0123456789 A\xe9" if f.kind != "A" else b"ASMTP0189 "
    raw = data.draw(st.one_of(
        st.binary(min_size=f.length, max_size=f.length),
        st.lists(st.sampled_from(list(alphabet)), min_size=f.length, max_size=f.length).map(bytes),
        st.sampled_from(COMPILED.allowed[t][k] or (b"0" * f.length,)),
    ))
    rec = bytearray(b" " * 128)
    rec[f.start - 1:f.end] = raw
    pivot = data.draw(st.integers(0, 99))
    expected = COMPILED.check(t, k, bytes(rec), pivot)
    got = _kernel_check(np.frombuffer(bytes(rec), np.uint8), COMPILED.spec, t, k, COMPILED.av, pivot)
    assert (int(got[0]), int(got[1])) == expected


@pytest.mark.parametrize(("code", "field", "raw", "expected"), [
    ("2", "birth_date", b"520101", (parse_iso("1952-01-01"), ST_OK)),  # 52 > 25: 19AA
    ("2", "birth_date", b"250101", (parse_iso("2025-01-01"), ST_OK)),
    ("2", "birth_date", b"000000", (NO_DATE, ST_NO_DATE)),
    ("2", "prescription_date", b"000000", (NO_DATE, ST_OK)),
    ("2", "prescription_date", b"250229", (NO_DATE, ST_DATE)),
    ("2", "prescription_date", b"240229", (parse_iso("2024-02-29"), ST_OK)),
    ("2", "invoice_number", b"000000000", (0, ST_RANGE)),
    ("2", "payee_code", b"3 ", (0, ST_DIGITS)),
    ("1", "lot_nature_family", b"XX", (0, ST_VALUE)),
    ("1", "ps_speciality", b"24", (24, ST_OK)),
    ("1", "ps_speciality", b"99", (99, ST_VALUE)),
    ("1", "ps_number", b"830004124", (830004124, ST_KEY)),
    ("4B", "bio3_quantity", b"  ", (0, ST_BLANK)),
    ("000", "creation_time", b"240000", (240000, ST_RANGE)),
])
def test_field_checks(code: str, field: str, raw: bytes, expected: tuple[int, int]) -> None:
    t = RECORD_TYPES.index(code)
    lay = COMPILED.layouts[t]
    k = lay.index[field]
    rec = bytearray(b" " * 128)
    rec[lay.slices[k]] = raw
    assert COMPILED.check(t, k, bytes(rec), 25) == expected
