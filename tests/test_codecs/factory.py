"""Builders of valid B2 object models for the codec tests (and the decode benchmark).

Every builder returns a model that decodes with status 'P'; a test changes one thing and
checks the one reason it expects. Values follow the worked example of b2-profile.md §6.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from fseflow.codecs.b2_layouts import PHARMACY_RATE_CLASS
from fseflow.codecs.model import B2File, Detail, Invoice, Line, Lot
from fseflow.codecs.nir import luhn_key, nir_key

CARE = dt.date(2025, 3, 10)
CREATED = dt.date(2025, 3, 14)


def ps_number(serial: int, dept: int = 83, category: int = 0) -> int:
    """A valid PS billing number (Luhn key) from its parts."""
    body = f"{dept:02d}{category}{serial:05d}"
    return int(body + str(luhn_key(body)))


def file_model(lots: list[Lot] | None = None, **header: Any) -> B2File:
    h = {
        "emitter_ps_number": 830004123, "software_name": "SANTEFACT", "software_version": "2.1.0",
        "norm_version": "B2P1", "creation_date": CREATED, "creation_time": 183000, "dest_regime": 8,
        "dest_caisse": 756, "dest_centre": 100, "test_flag": "P", "file_sequence": 42,
    }
    h.update(header)
    return B2File(header=h, lots=lots if lots is not None else [lot_model()])


def lot_model(invoices: list[Invoice] | None = None, **header: Any) -> Lot:
    h = {
        "ps_number": 830004123, "ps_speciality": 0, "convention_code": 1, "tariff_zone": 0,
        "lot_nature_family": "AS", "lot_creation_date": CREATED, "ps_rpps": 0, "structure_finess": "830012340",
    }
    h.update(header)
    return Lot(header=h, invoices=invoices if invoices is not None else [invoice_model()])


def invoice_model(lines: list[Line] | None = None, *, nir: str = "1850483137042", number: int = 250000101,
                  complement: dict[str, Any] | None = None, **head: Any) -> Invoice:
    h = {
        "nir_opener": nir, "nir_key": nir_key(nir), "rang_beneficiaire": 0, "invoice_number": number,
        "nature_operation": 1, "grand_regime": 8, "caisse": 756, "centre": 100, "nature_assurance": "AS",
        "qualite_beneficiaire": 1, "birth_date": dt.date(1985, 4, 12), "birth_rank": 1, "payee_code": 35,
    }
    h.update(head)
    return Invoice(head=h, complement={"parcours_qualifier": "T", **(complement or {})},
                   lines=lines if lines is not None else [fee_line()])


def fee_line(act: str = "G", *, quantity: int = 1, coefficient: int = 100, unit_price: int = 3000,
             rate: int = 70, care: dt.date = CARE, details: list[Detail] | None = None, **kw: Any) -> Line:
    """A `4` line with base = unit × coefficient/100 × quantity, billed = base, amo = base × rate."""
    base = unit_price * coefficient * quantity // 100
    f = {
        "executor_rpps": 10001234567, "executor_speciality": 1, "care_date": care, "act_code": act,
        "quantity": quantity, "coefficient": coefficient, "count": 1, "unit_price": unit_price,
        "base": base, "rate_pct": rate, "amo_amount": base * rate // 100, "billed_amount": base,
    }
    f.update(kw)
    return Line("4", f, details or [])


def hosp_line(act: str = "FJ", *, quantity: int = 1, unit_price: int = 2000, care: dt.date = CARE,
              details: list[Detail] | None = None, **kw: Any) -> Line:
    """A `3` line (hospital service) with billed = base = unit × quantity, rate 80 %."""
    base = unit_price * quantity
    f = {
        "treatment_mode": 3, "dmt": 101, "care_date": care, "act_code": act, "quantity": quantity,
        "coefficient": 100, "coefficient_mco": 10000, "unit_price": unit_price, "base": base,
        "rate_pct": 80, "amo_amount": base * 80 // 100, "billed_amount": base,
    }
    f.update(kw)
    return Line("3", f, details or [])


def ccam_detail(code: str = "QZFA004", **kw: Any) -> Detail:
    return Detail("4M", {"ccam_code": code, "activity": 1, "phase": 0, **kw})


def bio_detail(care: dt.date = CARE, blocks: tuple[tuple[int, int], ...] = ((1, 1104),), **kw: Any) -> Detail:
    """A 4B with one block (quantity, NABM code) per item, dated `care`; the other blocks blank."""
    f: dict[str, Any] = {}
    for i, (qty, code) in enumerate(blocks, 1):
        f.update({f"bio{i}_date": care, f"bio{i}_quantity": qty, f"bio{i}_nabm_code": code})
    f.update(kw)
    return Detail("4B", f)


def pharmacy_line(act: str = "PH4", *, boxes: int = 2, price: int = 450, cip13: int = 3400930000120,
                  **kw: Any) -> Line:
    """A pharmacy `4` line and its coherent 4P."""
    rate_class = PHARMACY_RATE_CLASS[act]
    detail = Detail("4P", {"dispensing_date": CARE, "cip13": cip13, "boxes": boxes, "box_unit_price": price,
                           "rate_class": rate_class, "total_billed": boxes * price, "generic_flag": "G"})
    return fee_line(act, quantity=boxes, coefficient=100, unit_price=price, rate=30, executor_speciality=50,
                    details=[detail], **kw)


def device_line(*, price: int = 12000, lpp: str = "2223342", **kw: Any) -> Line:
    """An optics `4` line (OPT) with one coherent 3F."""
    detail = Detail("3F", {"lpp_code": lpp, "quantity": 1, "lpp_unit_price": price, "total_billed": price})
    return fee_line("OPT", unit_price=price, rate=60, executor_speciality=64, details=[detail], **kw)


def ucd_detail(total: int, **kw: Any) -> Detail:
    return Detail("3H", {"ucd_code": 9391234, "fraction_coefficient": 10000, "unit_purchase_price": total,
                         "quantity": 1, "total_billed": total, **kw})


def example_model() -> B2File:
    """The worked example of b2-profile.md §6 as a model (fields the encoder derives left out)."""
    inv1 = invoice_model([fee_line("G", executor_rpps=10001234567, executor_speciality=1)], number=250000101)
    inv2 = invoice_model(
        [fee_line("AMI", coefficient=200, unit_price=315, rate=60, care=dt.date(2025, 3, 12),
                  executor_rpps=10007654321, executor_speciality=24)],
        nir="1490383137009", number=250000102, qualite_beneficiaire=2, birth_date=dt.date(1952, 11, 7),
        prescriber_rpps=10001234567, prescription_date=dt.date(2025, 3, 3),
        complement={"nii": "2521113055118", "nii_key": "65", "parcours_qualifier": ""},
    )
    return file_model([lot_model([inv1, inv2])])


def two_lot_model() -> B2File:
    """Two lots of two invoices each (the second lot from another PS): faults go in lot 2."""
    lot1 = lot_model([invoice_model(number=1), invoice_model([fee_line("AMI", coefficient=200, unit_price=315, rate=60)],
                                                             nir="1490383137009", number=2)])
    lot2 = lot_model([invoice_model([fee_line("G"), pharmacy_line()], number=3),
                      invoice_model([fee_line("ADC", unit_price=12540, details=[ccam_detail()])], number=4)],
                     ps_number=ps_number(12345, 75, 1), ps_speciality=1, structure_finess="")
    return file_model([lot1, lot2])


# --- byte-level helpers: records as a list of 128-byte strings -------------------------------

def records(f: B2File) -> list[bytes]:
    from fseflow.codecs.b2 import encode

    data = encode(f)
    return [data[i:i + 128] for i in range(0, len(data), 128)]


def join(recs: list[bytes], framing: str = "fixed") -> bytes:
    term = {"fixed": b"", "LF": b"\n", "CRLF": b"\r\n"}[framing]
    return b"".join(r + term for r in recs)


def field_slice(code: str, name: str) -> slice:
    from fseflow.codecs.b2_layouts import LAYOUTS

    f = LAYOUTS[code][name]
    return slice(f.start - 1, f.end)


def set_field(rec: bytes, code: str, name: str, raw: bytes) -> bytes:
    """The record with field `name` (of record type `code`) replaced by `raw` (same length)."""
    sl = field_slice(code, name)
    assert len(raw) == sl.stop - sl.start, (name, raw)
    return rec[:sl.start] + raw + rec[sl.stop:]


def rtype(rec: bytes) -> str:
    return rec[:3].decode("ascii", "replace").rstrip(" ")


def ordinal(recs: list[bytes], code: str, nth: int = 1, lot: int | None = None) -> int:
    """1-based file rank of the nth record of type `code` (in lot `lot` if given)."""
    seen = 0
    current = 0
    for i, rec in enumerate(recs, 1):
        if rtype(rec) == "1":
            current += 1
        if rtype(rec) == code and (lot is None or current == lot):
            seen += 1
            if seen == nth:
                return i
    raise AssertionError(f"no record {code} #{nth}")


def resequence(recs: list[bytes]) -> list[bytes]:
    """Counts a careful sender recomputes after a record is added or removed: record_seq in each
    lot, the lot end record_seq/record_count, and the file end counts and totals."""
    out: list[bytes] = []
    seq = 0
    lots = 0
    billed = amo = 0
    for rec in recs:
        code = rtype(rec)
        if code in ("000", "999"):
            out.append(rec)
            continue
        if code == "1":
            seq = 0
            lots += 1
        seq += 1
        rec = rec[:6] + b"%05d" % seq + rec[11:]
        if code == "9":
            rec = set_field(rec, "9", "record_count", b"%05d" % seq)
            billed += int(rec[field_slice("9", "total_billed")])
            amo += int(rec[field_slice("9", "total_amo_claimed")])
        out.append(rec)
    end = out[-1]
    if rtype(end) == "999":
        end = set_field(end, "999", "lot_count", b"%03d" % lots)
        end = set_field(end, "999", "record_count", b"%07d" % len(out))
        end = set_field(end, "999", "total_billed", b"%012d" % billed)
        end = set_field(end, "999", "total_amo_claimed", b"%012d" % amo)
        out[-1] = end
    return out
