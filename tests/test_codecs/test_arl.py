"""ARL bytes (returns.md §1) built from a decoded file, and read back."""
from __future__ import annotations

from fseflow.codecs import arl, b2
from fseflow.days import parse_iso
from fseflow.tests.test_codecs.factory import two_lot_model


def _partial() -> b2.Decoded:
    f = two_lot_model()
    f.lots[1].header["lot_nature_family"] = "XX"
    f.lots[1].invoices[0].end = {"total_billed_fees": 1}
    return b2.decode(b2.encode(f), "PS.b2", reception_date=parse_iso("2025-03-15"))


def test_partial_arl() -> None:
    d = _partial()
    assert d.status == "L"
    data = arl.build(d, reception_time=101500)
    lines = data.split(b"\n")
    assert lines[-1] == b"" and all(len(x) == 128 and x.isascii() for x in lines[:-1])
    a = arl.read(data)
    h = a.header
    assert (h["status"], h["regime"], h["caisse"], h["centre"], h["emitter_ps_number"]) == ("L", 8, 756, 100, 830004123)
    assert (h["lots_read"], h["lots_accepted"], h["invoices_accepted"]) == (2, 1, 2)
    assert h["billed_accepted"] == d.lots[0].billed == 3630
    assert (str(h["reception_date"]), h["reception_time"], h["arl_version"]) == ("2025-03-15", 101500, "ARL1")
    assert [(x["lot_number"], x["lot_status"], x["lot_family"], x["invoices"]) for x in a.lots] == [
        (1, "A", "AS", 2), (2, "R", "", 2)]
    assert h["reason_count"] == len(a.reasons) == len(d.reasons) == 2
    assert [(x["reason_code"], x["lot_number"], x["record_ordinal"], x["field"]) for x in a.reasons] == [
        (r.code, r.lot, r.record_ordinal, r.field) for r in d.reasons]
    assert a.reasons[0]["label"] == "lot header field invalid"
    assert a.end["record_count"] == len(lines) - 1


def test_negative_arl_has_file_level_reasons_only() -> None:
    f = two_lot_model()
    f.header["dest_regime"] = 1
    d = b2.decode(b2.encode(f), "PS.b2")
    a = arl.read(arl.build(d))
    assert a.header["status"] == "N" and a.header["lots_accepted"] == 0
    assert [(x["reason_code"], x["lot_number"], x["faulty_record_type"], x["position"]) for x in a.reasons] == [
        ("8005-001", 0, "000", 57)]
    assert [x["lot_status"] for x in a.lots] == ["R", "R"]
