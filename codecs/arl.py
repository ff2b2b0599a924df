"""ARL writer and reader (returns.md §1): AR0, one AR1 per lot read, one AR2 per reason, AR9.

The ARL answers one received file before any liquidation. It uses the B2 physical rules
(128-byte ASCII records, LF lines) and is built from a `b2.Decoded` alone. AR1/AR2 name a lot
by its rank in the file, which is its lot number when the numbering is right (ArlReason.lot).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, Final

from fseflow.days import from_days
from fseflow.processors.tables import read_table

from ._layout import Field as F
from ._layout import Layout
from .b2 import Decoded
from .b2_layouts import LAYOUTS
from .exceptions import CodecError

__all__ = ["Arl", "build", "read"]

ARL_VERSION: Final = "ARL1"

AR0 = Layout("AR0", [
    F("record_type", 1, 3, "A"),
    F("lot_seq", 4, 8, "N"),
    F("regime", 12, 2, "N"),
    F("caisse", 14, 3, "N"),
    F("centre", 17, 4, "N"),
    F("emitter_ps_number", 21, 9, "N"),
    F("file_sequence", 30, 5, "N"),
    F("file_creation_date", 35, 6, "D"),
    F("reception_date", 41, 6, "D"),
    F("reception_time", 47, 6, "N"),
    F("status", 53, 1, "A"),
    F("lots_read", 54, 3, "N"),
    F("lots_accepted", 57, 3, "N"),
    F("invoices_accepted", 60, 5, "N"),
    F("billed_accepted", 65, 12, "M", decimals=2),
    F("reason_count", 77, 4, "N"),
    F("arl_version", 81, 4, "A"),
    F("filler", 85, 44, "F"),
])
AR1 = Layout("AR1", [
    F("record_type", 1, 3, "A"),
    F("lot_number", 4, 3, "N"),
    F("record_seq", 7, 5, "N"),
    F("lot_status", 12, 1, "A"),
    F("lot_family", 13, 2, "A"),
    F("invoices", 15, 4, "N"),
    F("billed", 19, 10, "M", decimals=2),
    F("filler", 29, 100, "F"),
])
AR2 = Layout("AR2", [
    F("record_type", 1, 3, "A"),
    F("lot_number", 4, 3, "N"),
    F("record_seq", 7, 5, "N"),
    F("reason_code", 12, 8, "A"),
    F("record_ordinal", 20, 7, "N"),
    F("faulty_record_type", 27, 3, "A"),
    F("position", 30, 3, "N"),
    F("length", 33, 3, "N"),
    F("field", 36, 30, "A"),
    F("label", 66, 63, "A"),
])
AR9 = Layout("AR9", [
    F("record_type", 1, 3, "A"),
    F("lot_number", 4, 3, "N"),
    F("record_seq", 7, 5, "N"),
    F("record_count", 12, 7, "N"),
    F("filler", 19, 110, "F"),
])
_BY_TYPE: Final = {lay.record_type: lay for lay in (AR0, AR1, AR2, AR9)}
_FAMILIES: Final = LAYOUTS["1"]["lot_nature_family"].values
# the fund's own identity: the destination the B2 file header must name (C05)
_FUND: Final = {name: int(LAYOUTS["000"][f"dest_{name}"].values[0]) for name in ("regime", "caisse", "centre")}


def _ascii(text: str, width: int) -> str:
    """Printable ASCII (accents dropped), cut to `width`: ARL records are ASCII only."""
    flat = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c for c in flat if " " <= c <= "~")[:width].rstrip(" ")


def _labels() -> dict[str, str]:
    return {row["code"]: row["label"] for row in read_table("reject_codes")}


def _num(v: int, width: int) -> int:
    """A count or amount for an N/M field: unknown (-1) as 0, capped to the field."""
    return min(max(v, 0), 10**width - 1)


def build(d: Decoded, *, reception_date: int | None = None, reception_time: int = 0) -> bytes:
    """The ARL file of a decoded B2 file (LF lines). Reception defaults to `d.reception_date`."""
    rdate = d.reception_date if reception_date is None else reception_date
    accepted = [lot for lot in d.lots if lot.status == "A"]
    f = d.file
    records = [AR0.encode({
        "record_type": "AR0", **_FUND,
        "emitter_ps_number": _num(f.emitter_ps_number, 9), "file_sequence": _num(f.file_sequence, 5),
        "file_creation_date": from_days(f.creation_date), "reception_date": None if rdate is None else from_days(rdate),
        "reception_time": reception_time, "status": d.status,
        "lots_read": _num(len(d.lots), 3), "lots_accepted": _num(len(accepted), 3),
        "invoices_accepted": _num(sum(lot.invoice_count for lot in accepted), 5),
        "billed_accepted": _num(sum(max(lot.billed, 0) for lot in accepted), 12),
        "reason_count": _num(len(d.reasons), 4), "arl_version": ARL_VERSION,
    })]
    for rank, lot in enumerate(d.lots, 1):
        records.append(AR1.encode({
            "record_type": "AR1", "lot_number": _num(rank, 3), "lot_status": lot.status,
            "lot_family": lot.family if lot.family in _FAMILIES else "",
            "invoices": _num(lot.invoice_count, 4), "billed": _num(lot.billed, 10),
        }))
    labels = _labels()
    for r in d.reasons:
        records.append(AR2.encode({
            "record_type": "AR2", "lot_number": _num(r.lot, 3), "record_seq": _num(r.record_seq, 5),
            "reason_code": r.code, "record_ordinal": _num(r.record_ordinal, 7),
            "faulty_record_type": _ascii(r.record_type, 3), "position": _num(r.position, 3),
            "length": _num(r.length, 3), "field": _ascii(r.field, 30),
            "label": _ascii(labels.get(r.code, r.code), 63),
        }))
    records.append(AR9.encode({"record_type": "AR9", "record_count": len(records) + 1}))
    return b"".join(rec + b"\n" for rec in records)


@dataclass
class Arl:
    """An ARL file read back: header, lot statuses, reasons, end (field dicts)."""

    header: dict[str, Any]
    lots: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] = field(default_factory=dict)


def read(data: bytes) -> Arl:
    """Read an ARL file (the reverse of `build`); CodecError when it is not one."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    recs = []
    for i, line in enumerate(lines, 1):
        lay = _BY_TYPE.get(line[:3].decode("ascii", "replace"))
        if lay is None:
            raise CodecError(f"ARL record={i}: unknown record type")
        recs.append((lay.record_type, lay.decode(line, path=f"ARL record={i}")))
    if not recs or recs[0][0] != "AR0" or recs[-1][0] != "AR9":
        raise CodecError("ARL: not an AR0 ... AR9 file")
    out = Arl(header=recs[0][1], end=recs[-1][1])
    for kind, values in recs[1:-1]:
        (out.lots if kind == "AR1" else out.reasons).append(values)
    return out
