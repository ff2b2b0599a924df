"""Structural controls of `b2.decode` (controls.md C01-C13): one test per fault.

Faults go in lot 2 of a two-lot file. Each test checks the reason (code, lot, record ordinal,
field) and that lot 1 is still accepted and decoded: a lot fault refuses only its lot.
"""
from __future__ import annotations

import pytest

from fseflow.codecs import b2
from fseflow.codecs.model import Detail
from fseflow.days import parse_iso
from fseflow.tests.test_codecs.factory import (
    ccam_detail,
    fee_line,
    file_model,
    invoice_model,
    join,
    lot_model,
    ordinal,
    ps_number,
    records,
    resequence,
    rtype,
    set_field,
    two_lot_model,
)

NAME = "PS830004123-20250314.b2"


def _decode(data: bytes, **kw: object) -> b2.Decoded:
    return b2.decode(data, NAME, **kw)  # type: ignore[arg-type]


def _only(d: b2.Decoded, code: str) -> b2.ArlReason:
    found = [r for r in d.reasons if r.code == code]
    assert found, f"no {code} among {[(r.code, r.message) for r in d.reasons]}"
    return found[0]


def assert_lot2_refused(d: b2.Decoded, code: str, ordinal_: int, field: str = "") -> b2.ArlReason:
    """Lot 2 refused with `code` at `ordinal_`/`field`; lot 1 accepted and its invoices decoded."""
    assert d.status == "L"
    assert [lot.status for lot in d.lots] == ["A", "R"]
    r = _only(d, code)
    assert (r.lot, r.record_ordinal, r.field) == (2, ordinal_, field)
    assert r in d.lots[1].reasons and not d.lots[0].reasons
    assert list(d.invoices["invoice_number"]) == [1, 2]  # lot 1's invoices only
    assert set(d.invoices["lot_idx"].tolist()) == {0}
    assert d.lines["invoice_idx"].tolist() == [0, 1]
    assert d.invoices["line_start"].tolist() == [0, 1]
    return r


def assert_file_refused(d: b2.Decoded, code: str, field: str = "") -> b2.ArlReason:
    assert d.status == "N"
    assert all(lot.status == "R" for lot in d.lots)
    assert len(d.invoices["lot_idx"]) == 0 and len(d.lines["invoice_idx"]) == 0
    r = _only(d, code)
    assert r.lot == 0 and r.field == field
    return r


@pytest.fixture(scope="module")
def recs() -> list[bytes]:
    return records(two_lot_model())


def test_clean_file_is_positive(recs: list[bytes]) -> None:
    d = _decode(join(recs))
    assert (d.status, d.reasons) == ("P", [])
    assert [lot.invoice_count for lot in d.lots] == [2, 2]
    assert len(d.invoices["invoice_number"]) == 4


# --- C01 framing ------------------------------------------------------------------------------

def test_c01_fixed_length_not_multiple_of_128_refuses_the_file(recs: list[bytes]) -> None:
    d = _decode(join(recs) + b"  ")
    r = assert_file_refused(d, "8001-001")
    assert "not a multiple of 128" in r.message


def test_c01_short_line_refuses_only_its_lot(recs: list[bytes]) -> None:
    at = ordinal(recs, "4", lot=2)
    bad = list(recs)
    bad[at - 1] = bad[at - 1][:127]
    d = _decode(join(bad, "LF"))
    assert d.file.framing == "LF"
    r = assert_lot2_refused(d, "8001-001", at)
    assert "127 characters" in r.message


def test_c01_mixed_terminators_refuse_only_their_lot(recs: list[bytes]) -> None:
    at = ordinal(recs, "2S", lot=2)
    data = b"".join(rec + (b"\n" if i == at else b"\r\n") for i, rec in enumerate(recs, 1))
    d = _decode(data)
    assert d.file.framing == "CRLF"
    assert_lot2_refused(d, "8001-001", at)


def test_c01_line_feed_inside_a_record_is_a_short_line(recs: list[bytes]) -> None:
    at = ordinal(recs, "5", lot=2)
    bad = list(recs)
    bad[at - 1] = bad[at - 1][:60] + b"\n" + bad[at - 1][61:]  # the file now has one line more
    d = _decode(join(bad, "LF"))
    assert d.status == "N"  # the file end counts one record less than the lines read (C07)
    assert [(r.code, r.lot) for r in d.lots[1].reasons] == []
    assert _only(d, "8007-001").field == "record_count"


# --- C02 characters ---------------------------------------------------------------------------

def test_c02_non_ascii_byte_in_a_lot_refuses_that_lot(recs: list[bytes]) -> None:
    at = ordinal(recs, "2", lot=2)
    bad = list(recs)
    rec = bad[at - 1]
    bad[at - 1] = rec[:76] + b"\xe9" + rec[77:]  # byte 77: nature_assurance
    r = assert_lot2_refused(_decode(join(bad)), "8002-001", at, "nature_assurance")
    assert (r.position, r.length) == (77, 1)


def test_c02_in_the_file_header_refuses_the_file(recs: list[bytes]) -> None:
    bad = list(recs)
    bad[0] = bad[0][:100] + b"\x00" + bad[0][101:]
    r = assert_file_refused(_decode(join(bad)), "8002-001", "filler")
    assert r.record_ordinal == 1 and r.position == 101


# --- C03 record types -------------------------------------------------------------------------

def test_c03_unknown_record_type_inside_a_lot_refuses_only_that_lot(recs: list[bytes]) -> None:
    at = ordinal(recs, "2S", lot=2) + 1
    civility = b"2B " + recs[at - 2][3:]  # an official record profile v1 does not read
    bad = resequence(recs[:at - 1] + [civility] + recs[at - 1:])
    r = assert_lot2_refused(_decode(join(bad)), "8003-002", at, "record_type")
    assert (r.record_type, r.position, r.length, r.record_seq) == ("2B", 1, 3, 4)
    assert [x.code for x in _decode(join(bad)).lots[1].reasons] == ["8003-002"]


def test_c03_missing_file_end_refuses_the_file(recs: list[bytes]) -> None:
    r = assert_file_refused(_decode(join(recs[:-1])), "8003-001")
    assert r.record_ordinal == len(recs) - 1


def test_c03_second_file_header_refuses_the_file(recs: list[bytes]) -> None:
    r = assert_file_refused(_decode(join(recs[:3] + [recs[0]] + recs[3:])), "8003-001")
    assert r.record_ordinal == 4


# --- C04 to C08: file header and file end --------------------------------------------------------

def test_c04_norm_version(recs: list[bytes]) -> None:
    bad = [set_field(recs[0], "000", "norm_version", b"B2P2")] + recs[1:]
    r = assert_file_refused(_decode(join(bad)), "8004-002", "norm_version")
    assert (r.record_ordinal, r.position, r.length) == (1, 41, 4)


def test_c04_creation_date_invalid_or_after_reception(recs: list[bytes]) -> None:
    bad = [set_field(recs[0], "000", "creation_date", b"250230")] + recs[1:]
    assert_file_refused(_decode(join(bad)), "8004-001", "creation_date")
    d = _decode(join(recs), reception_date=parse_iso("2025-03-13"))
    assert "after the reception date" in assert_file_refused(d, "8004-001", "creation_date").message
    assert _decode(join(recs), reception_date=parse_iso("2025-03-14")).status == "P"


def test_c05_destination(recs: list[bytes]) -> None:
    bad = [set_field(recs[0], "000", "dest_caisse", b"757")] + recs[1:]
    assert_file_refused(_decode(join(bad)), "8005-001", "dest_caisse")


def test_c06_test_file_and_production_instance(recs: list[bytes]) -> None:
    test_file = join([set_field(recs[0], "000", "test_flag", b"T")] + recs[1:])
    assert_file_refused(_decode(test_file), "8006-001", "test_flag")
    assert _decode(test_file, production=False).status == "P"
    assert_file_refused(_decode(join(recs), production=False), "8006-001", "test_flag")


def test_c07_file_end_totals() -> None:
    f = two_lot_model()
    f.end = {"total_billed": 1}
    r = assert_file_refused(_decode(b2.encode(f)), "8007-001", "total_billed")
    assert r.record_ordinal == len(records(f)) and "declared 1" in r.message


def test_c08_emitter_key_refuses_the_file(recs: list[bytes]) -> None:
    bad = [set_field(recs[0], "000", "emitter_ps_number", b"830004124")] + recs[1:]
    assert_file_refused(_decode(join(bad)), "8008-001", "emitter_ps_number")


def test_c08_lot_ps_key_refuses_only_that_lot() -> None:
    f = two_lot_model()
    f.lots[1].header["ps_number"] = ps_number(12345, 75, 1) + 1  # same digits, wrong key
    recs = records(f)
    assert_lot2_refused(_decode(join(recs)), "8008-001", ordinal(recs, "1", 2), "ps_number")


# --- C10 lot counts and totals ------------------------------------------------------------------

def test_c10_header_invoice_count() -> None:
    f = two_lot_model()
    f.lots[1].header["invoice_count_expected"] = 3
    recs = records(f)
    r = assert_lot2_refused(_decode(join(recs)), "8010-001", ordinal(recs, "1", 2), "invoice_count_expected")
    assert "declared 3, found 2" in r.message


def test_c10_lot_end_counts() -> None:
    f = two_lot_model()
    f.lots[1].end = {"invoice_count": 5}
    recs = records(f)
    assert_lot2_refused(_decode(join(recs)), "8010-001", len(recs) - 1, "invoice_count")
    f.lots[1].end = {"record_count": 4}
    recs = records(f)
    assert_lot2_refused(_decode(join(recs)), "8010-001", len(recs) - 1, "record_count")


def test_c10_lot_end_totals() -> None:
    f = two_lot_model()
    f.lots[1].end = {"total_billed": 99}  # the file end follows the lot ends: only C10 fails
    recs = records(f)
    r = assert_lot2_refused(_decode(join(recs)), "8010-002", len(recs) - 1, "total_billed")
    assert r.record_type == "9"


# --- C11 grammar, numbering, identification, required details -------------------------------------

def test_c11_lot_numbering() -> None:
    f = two_lot_model()
    f.lots[1].header["lot_number"] = 3  # every record of the lot follows its header
    recs = records(f)
    r = assert_lot2_refused(_decode(join(recs)), "8011-002", ordinal(recs, "1", 2), "lot_number")
    assert "3, expected 2" in r.message


def test_c11_record_sequence(recs: list[bytes]) -> None:
    at = ordinal(recs, "5", lot=2)
    bad = list(recs)
    bad[at - 1] = set_field(bad[at - 1], "5", "record_seq", b"00099")
    assert_lot2_refused(_decode(join(bad)), "8011-002", at, "record_seq")


def test_c11_record_out_of_order(recs: list[bytes]) -> None:
    at = ordinal(recs, "2S", lot=2)
    bad = resequence(recs[:at - 1] + recs[at:])  # an invoice without its 2S
    r = assert_lot2_refused(_decode(join(bad)), "8011-001", at)
    assert r.record_type == "4" and "after the type 2" in r.message


def test_c11_lot_without_its_end(recs: list[bytes]) -> None:
    at = ordinal(recs, "9", lot=2)
    bad = resequence(recs[:at - 1] + recs[at:])
    r = assert_lot2_refused(_decode(join(bad)), "8011-001", at - 1)
    assert "lot end" in r.message


def test_c11_identification_repeat(recs: list[bytes]) -> None:
    at = ordinal(recs, "4", lot=2)
    bad = list(recs)
    bad[at - 1] = set_field(bad[at - 1], "4", "invoice_number", b"000000099")
    r = assert_lot2_refused(_decode(join(bad)), "8011-003", at, "invoice_number")
    assert (r.position, r.length) == (30, 9)


def test_c11_ccam_line_without_its_4m() -> None:
    f = two_lot_model()
    f.lots[1].invoices[1].lines[0].details = []
    recs = records(f)
    r = assert_lot2_refused(_decode(join(recs)), "8011-001", ordinal(recs, "4", 3, lot=2))
    assert "exactly 1 4M" in r.message


def test_c11_detail_not_allowed_on_a_consultation() -> None:
    f = two_lot_model()
    f.lots[1].invoices[0].lines[0].details = [ccam_detail()]
    recs = records(f)
    assert_lot2_refused(_decode(join(recs)), "8011-001", ordinal(recs, "4", 1, lot=2))


def test_c03_records_before_the_first_lot_header_refuse_the_file(recs: list[bytes]) -> None:
    at = ordinal(recs, "2", lot=1)
    bad = resequence([recs[0]] + recs[at - 1:at + 3] + recs[1:])  # an invoice ahead of lot 1
    d = _decode(join(bad))
    r = assert_file_refused(d, "8003-001")
    assert (r.record_ordinal, r.record_type) == (2, "2")
    assert [lot.invoice_count for lot in d.lots] == [2, 2]  # both lots listed, refused with the file


# --- C12 invoice totals -------------------------------------------------------------------------

def test_c12_invoice_end_total() -> None:
    f = two_lot_model()
    f.lots[1].invoices[0].end = {"total_billed_fees": 1}
    recs = records(f)
    r = assert_lot2_refused(_decode(join(recs)), "8012-001", ordinal(recs, "5", 1, lot=2), "total_billed_fees")
    assert "declared 1, lines give 3900" in r.message


def test_c12_line_count() -> None:
    f = two_lot_model()
    f.lots[1].invoices[1].end = {"line_count": 2}
    recs = records(f)
    assert_lot2_refused(_decode(join(recs)), "8012-001", ordinal(recs, "5", 2, lot=2), "line_count")


# --- C13 lot header fields ----------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("lot_nature_family", "XX"), ("ps_speciality", 99), ("convention_code", 5), ("tariff_zone", 7),
])
def test_c13_lot_header_field(field: str, value: object) -> None:
    f = two_lot_model()
    f.lots[1].header[field] = value
    recs = records(f)
    assert_lot2_refused(_decode(join(recs)), "8013-001", ordinal(recs, "1", 2), field)


def test_c13_lot_creation_date(recs: list[bytes]) -> None:
    at = ordinal(recs, "1", 2)
    bad = list(recs)
    bad[at - 1] = set_field(bad[at - 1], "1", "lot_creation_date", b"25A314")
    r = assert_lot2_refused(_decode(join(bad)), "8013-001", at, "lot_creation_date")
    assert (r.position, r.length) == (28, 6)


# --- NotB2Error and the worst cases -------------------------------------------------------------

def test_not_b2_names_the_file_and_no_personal_value() -> None:
    with pytest.raises(b2.NotB2Error, match=NAME):
        b2.decode(b"", NAME)
    invoice = records(file_model())[2]  # a type 2 record, NIR at 12-24
    with pytest.raises(b2.NotB2Error) as e:
        b2.decode(invoice * 3, NAME)
    msg = str(e.value)
    assert NAME in msg and "record=1" in msg and "\n" not in msg
    assert "1850483137042" not in msg


def test_garbage_after_a_header_is_an_arl_not_a_crash(recs: list[bytes]) -> None:
    d = _decode(recs[0] + bytes(range(256)) * 3)
    assert d.status == "N" and d.reasons


def test_messages_carry_no_personal_value() -> None:
    f = two_lot_model()
    f.lots[1].invoices[0].lines[0].fields["invoice_number"] = 7  # identification repeat fault
    d = _decode(b2.encode(f))
    for r in d.reasons:
        assert "1850483137042" not in r.message


def test_lot_with_many_faults_lists_each_code_once() -> None:
    f = two_lot_model()
    for inv in f.lots[1].invoices:
        inv.end = {"total_billed_fees": 1}
    d = _decode(b2.encode(f))
    assert [r.code for r in d.lots[1].reasons].count("8012-001") == 1


def test_fee_lines_with_ccam_and_device_details_decode() -> None:
    f = file_model([lot_model([invoice_model([fee_line("ADC", unit_price=12540, details=[ccam_detail()]),
                                              fee_line("OPT", unit_price=100, details=[Detail(
                                                  "3F", {"lpp_code": "2223342", "quantity": 1,
                                                         "lpp_unit_price": 100, "total_billed": 100})])])])])
    d = _decode(b2.encode(f))
    assert d.status == "P"
    assert [rtype(r) for r in records(f)][4:8] == ["4", "4M", "4", "3F"]
    assert d.lines["detail_bad"].tolist() == [0, 0]


def test_c03_a_file_without_lots_is_refused(recs: list[bytes]) -> None:
    end = set_field(set_field(recs[-1], "999", "lot_count", b"000"), "999", "record_count", b"0000002")
    end = set_field(set_field(end, "999", "total_billed", b"0" * 12), "999", "total_amo_claimed", b"0" * 12)
    d = _decode(recs[0] + end)
    assert assert_file_refused(d, "8003-001").message.endswith("the file holds no lot")
    assert d.lots == []
