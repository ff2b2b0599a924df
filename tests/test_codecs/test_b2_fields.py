"""Invoice-level field faults: C14 (unreadable fields) and C38 (detail coherence).

Neither refuses the lot: the file stays positive and the invoice or line carries the fault.
"""
from __future__ import annotations

import datetime as dt

import pytest

from fseflow.codecs import b2
from fseflow.codecs.exceptions import FieldDecodeError
from fseflow.codecs.model import Detail
from fseflow.days import NO_DATE, to_days
from fseflow.tests.test_codecs.factory import (
    CARE,
    bio_detail,
    ccam_detail,
    device_line,
    fee_line,
    file_model,
    hosp_line,
    invoice_model,
    join,
    lot_model,
    ordinal,
    pharmacy_line,
    records,
    rtype,
    set_field,
    ucd_detail,
)


def _two_invoices(*lines_of_second: object) -> list[bytes]:
    return records(file_model([lot_model([invoice_model(number=1),
                                          invoice_model(list(lines_of_second) or None, number=2)])]))  # type: ignore[arg-type]


def _patch(recs: list[bytes], code: str, nth: int, field: str, raw: bytes) -> b2.Decoded:
    at = ordinal(recs, code, nth)
    bad = list(recs)
    bad[at - 1] = set_field(bad[at - 1], code, field, raw)
    d = b2.decode(join(bad), "x.b2")
    assert (d.status, d.reasons) == ("P", []), d.reasons
    return d


# --- C14 --------------------------------------------------------------------------------------

def test_c14_bad_birth_date_on_the_invoice() -> None:
    d = _patch(_two_invoices(), "2", 2, "birth_date", b"851332")
    assert d.c14_field == [None, "birth_date"]
    assert d.invoices["c14_line"].tolist() == [-1, 0]
    assert d.invoices["birth_date"].tolist() == [to_days(dt.date(1985, 4, 12)), NO_DATE]


def test_c14_letters_in_a_line_quantity() -> None:
    d = _patch(_two_invoices(fee_line(), fee_line("AMI", coefficient=200, unit_price=315)), "4", 3, "quantity", b"A1")
    assert d.c14_field == [None, "quantity"]
    assert d.invoices["c14_line"].tolist() == [-1, 2]
    assert d.lines["quantity"].tolist() == [1, 1, 0]


def test_c14_first_field_in_record_order_wins() -> None:
    recs = _two_invoices()
    at4 = ordinal(recs, "4", 2)
    at2 = ordinal(recs, "2", 2)
    bad = list(recs)
    bad[at4 - 1] = set_field(bad[at4 - 1], "4", "care_date", b"000000")  # required: not allowed
    bad[at2 - 1] = set_field(bad[at2 - 1], "2", "amc_number", b"00000000X0")
    d = b2.decode(join(bad), "x.b2")
    assert d.status == "P" and d.c14_field == [None, "amc_number"]
    assert d.invoices["amc_number"].tolist() == [0, 0] and d.lines["care_date"].tolist()[1] == NO_DATE


def test_c14_value_rules() -> None:
    d = _patch(_two_invoices(), "2", 2, "nature_operation", b"2")
    assert d.c14_field == [None, "nature_operation"]
    assert d.invoices["nature_operation"].tolist() == [1, 2]  # readable: the value is kept
    d = b2.decode(b2.encode(file_model([lot_model([invoice_model(number=0)])])), "x.b2")
    assert (d.status, d.c14_field, d.invoices["invoice_number"].tolist()) == ("P", ["invoice_number"], [0])


def test_c14_on_a_detail_and_on_the_invoice_end() -> None:
    d = _patch(_two_invoices(fee_line(), pharmacy_line()), "4P", 1, "cip13", b"34009300001X0")
    assert d.c14_field == [None, "cip13"] and d.invoices["c14_line"].tolist() == [-1, 2]
    d = _patch(_two_invoices(), "5", 1, "total_amc_fees", b"0000000 ")
    assert d.c14_field == ["total_amc_fees", None] and d.invoices["c14_line"].tolist() == [0, -1]


def test_nir_key_not_digits_is_minus_one_for_c15() -> None:
    recs = _two_invoices()
    first, end = ordinal(recs, "2", 1), ordinal(recs, "5", 1)
    bad = [set_field(rec, rtype(rec), "nir_key", b"2 ") if first <= i <= end else rec
           for i, rec in enumerate(recs, 1)]  # the key and its repeats: no C11 fault
    d = b2.decode(join(bad), "x.b2")
    assert d.status == "P"
    assert d.invoices["nir_key"].tolist() == [-1, 29] and d.c14_field == [None, None]


def test_corsican_nir_id() -> None:
    d = b2.decode(b2.encode(file_model([lot_model([invoice_model(nir="185042A123456")])])), "x.b2")
    assert d.invoices["nir_id"].tolist() == [10**13 + 1850419123456]
    assert d.invoices["nir_key"].tolist() == [97 - 1850419123456 % 97]


# --- C38 --------------------------------------------------------------------------------------

def _detail_bad(*lines: object) -> list[int]:
    d = b2.decode(b2.encode(file_model([lot_model([invoice_model(list(lines))])])), "x.b2")  # type: ignore[arg-type]
    assert (d.status, d.reasons) == ("P", []), d.reasons
    return d.lines["detail_bad"].tolist()


def test_c38_coherent_details_are_good() -> None:
    assert _detail_bad(fee_line(), pharmacy_line(), device_line(),
                       fee_line("ADC", unit_price=12540, details=[ccam_detail()]),
                       fee_line("B", coefficient=1700, unit_price=27, details=[bio_detail()]),
                       hosp_line(details=[ucd_detail(1200), ucd_detail(800)])) == [0] * 6


def test_c38_pharmacy_boxes_price_rate_and_key() -> None:
    good = pharmacy_line()
    for change in ({"boxes": 3, "total_billed": 1350}, {"rate_class": 7}, {"cip13": 3400930000121},
                   {"dispensing_date": dt.date(2025, 3, 11)}, {"total_billed": 901}):
        line = pharmacy_line()
        line.details[0].fields.update(change)
        assert _detail_bad(fee_line(), good, line) == [0, 0, 1], change


def test_c38_totals_of_3h_and_3f_equal_the_parent() -> None:
    assert _detail_bad(hosp_line(details=[ucd_detail(1200), ucd_detail(700)])) == [1]
    line = device_line()
    line.details[0].fields["total_billed"] = 11999
    assert _detail_bad(line, device_line()) == [1, 0]


def test_c38_ccam_code_format() -> None:
    assert _detail_bad(fee_line("ADC", unit_price=12540, details=[ccam_detail("QZF4004")])) == [1]


def test_c38_biology_blocks_and_nabm_signal() -> None:
    d = b2.decode(b2.encode(file_model([lot_model([invoice_model([
        fee_line("G"),
        fee_line("B", coefficient=1700, unit_price=27, details=[bio_detail(blocks=((1, 1104), (2, 1207)))]),
        fee_line("B", coefficient=1700, unit_price=27, details=[bio_detail(care=CARE + dt.timedelta(days=1))]),
        fee_line("B", coefficient=1700, unit_price=27, details=[bio_detail(blocks=((0, 1104),))]),
    ])])])), "x.b2")
    assert d.status == "P"
    assert d.lines["detail_bad"].tolist() == [0, 0, 1, 1]
    assert d.lines["nabm_uncheckable"].tolist() == [0, 1, 1, 1]


def test_c38_partly_blank_biology_block() -> None:
    recs = records(file_model([lot_model([invoice_model([
        fee_line("B", coefficient=1700, unit_price=27, details=[bio_detail()])])])]))
    d = _patch(recs, "4B", 1, "bio2_quantity", b"01")
    assert d.lines["detail_bad"].tolist() == [1]


def test_detail_on_a_hospital_line_needs_no_rule() -> None:
    lpp = Detail("3F", {"lpp_code": "2223342", "quantity": 1, "lpp_unit_price": 2000, "total_billed": 2000})
    assert _detail_bad(hosp_line(details=[lpp])) == [0]


# --- parse errors carry a path, never the value ------------------------------------------------

def test_parse_error_path() -> None:
    recs = _two_invoices()
    at = ordinal(recs, "2", 2)
    bad = list(recs)
    bad[at - 1] = set_field(bad[at - 1], "2", "birth_date", b"851332")
    with pytest.raises(FieldDecodeError) as e:
        b2.parse(join(bad), "PS1.b2")
    assert str(e.value) == f"file=PS1.b2 lot=001 record={at} -> type 2 -> birth_date: not a valid date"
    assert "1850483137042" not in str(e.value) and "851332" not in str(e.value)


def test_values_set_after_a_block_boundary_are_kept() -> None:
    """The kernel fills columns every 2048 records: a line or invoice still open at a boundary
    gets detail_bad, c14_line and line_count from later records (regression)."""
    lines = []
    for i in range(900):  # 5 records per invoice: the two boundaries fall on different kinds
        line = pharmacy_line()
        line.details[0].fields["rate_class"] = 9
        lines.append(invoice_model([line], number=i + 1))
    recs = records(file_model([lot_model(lines)]))
    at = ordinal(recs, "4P", 600)
    recs[at - 1] = set_field(recs[at - 1], "4P", "cip13", b"34009300001X0")
    d = b2.decode(join(recs), "x.b2")
    assert d.status == "P" and len(recs) > 2 * 2048
    assert d.lines["detail_bad"].tolist() == [1] * 900
    assert d.invoices["line_count"].tolist() == [1] * 900
    assert d.invoices["c14_line"].tolist() == [-1] * 599 + [1] + [-1] * 300
