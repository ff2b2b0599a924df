"""The worked example of b2-profile.md §6: decode gives its values, encode gives its bytes."""
from __future__ import annotations

import datetime as dt
from importlib import resources

import numpy as np
import pytest

from fseflow.codecs import b2, columns
from fseflow.days import NO_DATE, parse_iso, to_days
from fseflow.tests.test_codecs.factory import example_model

NAME = "b2-example-v1.b2"


@pytest.fixture(scope="module")
def data() -> bytes:
    return resources.files("fseflow.tests").joinpath("data", NAME).read_bytes()


@pytest.fixture(scope="module")
def decoded(data: bytes) -> b2.Decoded:
    return b2.decode(data, NAME, reception_date=parse_iso("2025-03-15"))


def test_file_and_lot(decoded: b2.Decoded, data: bytes) -> None:
    f = decoded.file
    assert (decoded.status, decoded.reasons) == ("P", [])
    assert (f.framing, f.size, f.record_count) == ("LF", len(data), 12)
    assert (f.emitter_ps_number, f.software_name, f.software_version, f.norm_version) == (
        830004123, "SANTEFACT", "2.1.0", "B2P1")
    assert (f.creation_date, f.creation_time, f.file_sequence, f.test_flag) == (
        parse_iso("2025-03-14"), 183000, 42, "P")
    assert (f.dest_regime, f.dest_caisse, f.dest_centre) == (8, 756, 100)
    assert len(f.sha256) == 64
    [lot] = decoded.lots
    assert (lot.status, lot.lot_number, lot.ps_number, lot.ps_speciality, lot.family) == ("A", 1, 830004123, 0, "AS")
    assert (lot.invoice_count, lot.billed, lot.amo_claimed, lot.record_ordinal, lot.record_count) == (2, 3630, 2478, 2, 10)
    assert (lot.structure_finess, lot.tariff_zone, lot.convention_code) == ("830012340", 0, 1)


def test_invoices(decoded: b2.Decoded) -> None:
    inv = decoded.invoices
    assert inv["nir_opener"].tolist() == [b"1850483137042", b"1490383137009"]
    assert inv["nir_id"].tolist() == [1850483137042, 1490383137009]
    assert inv["nir_key"].tolist() == [29, 64]
    assert inv["nii"].tolist() == [b" " * 13, b"2521113055118"]
    assert inv["nii_id"].tolist() == [-1, 2521113055118]
    assert inv["nii_key"].tolist() == [-1, 65]
    assert inv["birth_date"].tolist() == [to_days(dt.date(1985, 4, 12)), to_days(dt.date(1952, 11, 7))]
    assert inv["quality"].tolist() == [1, 2]
    assert inv["prescriber_rpps"].tolist() == [0, 10001234567]
    assert inv["prescription_date"].tolist() == [NO_DATE, parse_iso("2025-03-03")]
    assert inv["payee_code"].tolist() == [35, 35]
    assert inv["parcours"].tolist() == [ord("T"), ord(" ")]
    assert inv["total_billed_fees"].tolist() == [3000, 630]
    assert inv["total_amo_fees"].tolist() == [2100, 378]
    assert inv["line_start"].tolist() == [0, 1] and inv["line_count"].tolist() == [1, 1]
    assert inv["record_ordinal"].tolist() == [3, 7] and inv["record_seq"].tolist() == [2, 6]
    assert inv["c14_line"].tolist() == [-1, -1] and decoded.c14_field == [None, None]


def test_lines(decoded: b2.Decoded) -> None:
    ln = decoded.lines
    assert ln["act_code"].tolist() == [b"G   ", b"AMI "]
    assert ln["billed_amount"].tolist() == [3000, 630]
    assert ln["unit_price"].tolist() == [3000, 315] and ln["coefficient"].tolist() == [100, 200]
    assert ln["amo_amount"].tolist() == [2100, 378] and ln["rate_pct"].tolist() == [70, 60]
    assert ln["care_date"].tolist() == [parse_iso("2025-03-10"), parse_iso("2025-03-12")]
    assert ln["executor_rpps"].tolist() == [10001234567, 10007654321]
    assert ln["executor_speciality"].tolist() == [1, 24]
    assert ln["care_end_date"].tolist() == [NO_DATE, NO_DATE] and ln["coefficient_mco"].tolist() == [10000, 10000]
    assert ln["rec_type"].tolist() == [4, 4] and ln["record_ordinal"].tolist() == [5, 9]
    assert ln["detail_bad"].tolist() == [0, 0] and ln["nabm_uncheckable"].tolist() == [0, 0]


def test_columns_follow_the_contract(decoded: b2.Decoded) -> None:
    for spec, table in ((columns.INVOICE_COLUMNS, decoded.invoices), (columns.LINE_COLUMNS, decoded.lines)):
        assert list(table) == [name for name, _, _ in spec]
        for name, dtype, _ in spec:
            assert table[name].dtype == np.dtype(dtype), name
            assert table[name].flags.c_contiguous, name


def test_encode_parse_gives_the_file_back_byte_for_byte(data: bytes) -> None:
    assert b2.encode(b2.parse(data, NAME), framing="LF") == data
    assert b2.encode(example_model(), framing="LF") == data  # every derived field derived right


@pytest.mark.parametrize("framing", ["fixed", "LF", "CRLF"])
def test_every_framing_decodes_alike(data: bytes, decoded: b2.Decoded, framing: str) -> None:
    other = b2.encode(b2.parse(data, NAME), framing=framing)
    d = b2.decode(other if framing != "LF" else other[:-1], NAME)  # LF: last terminator left out
    assert (d.status, d.file.framing) == ("P", framing)
    for name, col in decoded.invoices.items():
        assert d.invoices[name].tolist() == col.tolist(), name
    for name, col in decoded.lines.items():
        assert d.lines[name].tolist() == col.tolist(), name
