"""Décompte records: the liquidation outcome of one file as JSON objects (one per invoice).

The layout is the stable contract of `decompte.schema.json` (read by other tools): one object
per invoice with its lines, rejects, signals and cent totals (liquidation.md §1), and one
object per lot or file refused by the ARL. `from_outcome` is used by the offline engine and by
the stream agents alike, so both give the same records.
"""
from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Iterator

import numpy as np

from fseflow.days import NO_DATE, iso
from fseflow.processors.claims import MONEY, M_BUDGET, InvoiceCols, LineCols, Outcome
from fseflow.processors.reference import BUDGETS
from fseflow.processors.rules import REASONS

CENT_FIELDS = tuple(f for f in MONEY if f.endswith("_cents"))
LINE_CENT_FIELDS = ("billed_cents",) + CENT_FIELDS
_MONEY_INDEX = {f: k for k, f in enumerate(MONEY)}
PAYEE = {10: "insured", 35: "ps", 36: "ps"}
# C14 failures the kernel finds beyond the decoder's unreadable fields, with the field they name
_C14_FIELDS = (
    ("nature_operation", lambda ic, i: ic.nature_operation[i] != 1),
    ("invoice_number", lambda ic, i: ic.invoice_number[i] == 0),
    ("qualite_beneficiaire", lambda ic, i: not 1 <= ic.quality[i] <= 4),
    ("birth_rank", lambda ic, i: not 1 <= ic.birth_rank[i] <= 9),
    ("birth_date", lambda ic, i: ic.birth_date[i] == NO_DATE),
)


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of a décompte record."""
    return json.loads(resources.files(__package__).joinpath("decompte.schema.json").read_text("utf-8"))


def _bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _c14_field(ic: InvoiceCols, lc: LineCols, i: int, decoded_field: str | None) -> str | None:
    if decoded_field:
        return decoded_field
    for name, test in _C14_FIELDS:
        if test(ic, i):
            return name
    first, end = int(ic.line_start[i]), int(ic.line_start[i] + ic.line_count[i])
    if any(lc.care_date[j] == NO_DATE for j in range(first, end)):
        return "care_date"
    return None


def refused(file: str, lot: int | None, reasons: list[Any]) -> dict[str, Any]:
    """A lot (or, with lot None, a whole file) refused by the ARL."""
    return {"file": file, "lot": lot, "status": "rejected",
            "rejects": [{"code": r.code, "line": None, "field": r.field or None, "record": r.record_ordinal,
                         "message": r.message} for r in reasons]}


#: per-invoice columns `records` needs beside the kernel's inputs and outcome
META_COLUMNS = (("file_ix", "i4"), ("lot_number", "i4"), ("nir_opener", "S13"), ("rang", "i2"),
                ("record_ordinal", "i4"), ("nature_code", "S2"), ("reception_date", "i4"))


def invoice_meta(raw_inv: dict[str, np.ndarray], lots: list[Any], reception_date: int,
                 file_ix: int = 0) -> dict[str, np.ndarray]:
    """The META_COLUMNS of the invoices of one decoded file."""
    n = raw_inv["lot_idx"].shape[0]
    lot_numbers = np.array([l.lot_number for l in lots] or [0], dtype=np.int32)
    return {"file_ix": np.full(n, file_ix, np.int32), "lot_number": lot_numbers[raw_inv["lot_idx"]],
            "nir_opener": raw_inv["nir_opener"], "rang": raw_inv["rang"],
            "record_ordinal": raw_inv["record_ordinal"], "nature_code": raw_inv["nature_code"],
            "reception_date": np.full(n, reception_date, np.int32)}


def from_outcome(file: str, raw_inv: dict[str, np.ndarray], raw_lines: dict[str, np.ndarray], lots: list[Any],
                 ic: InvoiceCols, lc: LineCols, out: Outcome, c14_fields: list[str | None],
                 reception_date: int) -> Iterator[dict[str, Any]]:
    """One décompte record per invoice of a decoded file, in record order."""
    return records([file], invoice_meta(raw_inv, lots, reception_date), raw_lines["act_code"], ic, lc, out,
                   c14_fields)


def records(files: list[str], meta: dict[str, np.ndarray], act_code: np.ndarray, ic: InvoiceCols, lc: LineCols,
            out: Outcome, c14_fields: list[str | None] | dict[int, str]) -> Iterator[dict[str, Any]]:
    """One décompte record per invoice of a batch (of one file or many), in batch order.

    `meta` holds META_COLUMNS per invoice (`file_ix` indexes `files`), `act_code` the raw act
    code per line, `c14_fields` the decoder's unreadable field per invoice (list or sparse dict).
    """
    money = out.money
    file_ix, lot_number, record_ordinal = meta["file_ix"], meta["lot_number"], meta["record_ordinal"]
    reception = meta["reception_date"]
    for i in range(len(ic.ps)):
        first, end = int(ic.line_start[i]), int(ic.line_start[i] + ic.line_count[i])
        rejected_invoice = bool(out.inv_rejects[i])
        rejects: list[dict[str, Any]] = []
        for bit in _bits(int(out.inv_rejects[i])):
            reason = REASONS[bit]
            if reason.name == "C14":
                line = int(ic.c14_line[i])
                decoded_field = c14_fields.get(i) if isinstance(c14_fields, dict) else c14_fields[i]
                rejects.append({"code": reason.code, "line": line or None,
                                "field": _c14_field(ic, lc, i, decoded_field)})
            else:
                rejects.append({"code": reason.code, "line": None, "field": reason.field})
        signals = [{"code": REASONS[bit].code, "line": None} for bit in _bits(int(out.inv_signals[i]))]
        lines = []
        totals = dict.fromkeys(LINE_CENT_FIELDS, 0)
        for n, j in enumerate(range(first, end), start=1):
            r = int(out.line_reject[j])
            if r >= 0:
                rejects.append({"code": REASONS[r].code, "line": n, "field": REASONS[r].field})
            signals.extend({"code": REASONS[bit].code, "line": n} for bit in _bits(int(out.line_signals[j])))
            line: dict[str, Any] = {
                "line": n, "type": str(int(lc.rec_type[j])), "act": code_of(act_code[j]),
                "care_date": iso(int(lc.care_date[j])), "qty": int(lc.quantity[j]),
                "coef_hundredths": int(lc.coefficient[j]),
                "status": "paid" if out.line_status[j] else "rejected",
                "reject": REASONS[r].code if r >= 0 and not rejected_invoice else None,
                "billed_cents": int(lc.billed_amount[j]),
            }
            for f in CENT_FIELDS:
                line[f] = int(money[j, _MONEY_INDEX[f]])
            line["rate_pct"] = int(money[j, _MONEY_INDEX["rate_pct"]])
            line["budget"] = BUDGETS[int(money[j, M_BUDGET])]
            for f in LINE_CENT_FIELDS:
                totals[f] += line[f]
            lines.append(line)
        yield {
            "file": files[int(file_ix[i])], "lot": int(lot_number[i]),
            "invoice": f"{int(ic.invoice_number[i]):09d}", "ps": f"{int(ic.ps[i]):09d}",
            "nir": meta["nir_opener"][i].decode("ascii", "replace"), "rang": f"{int(meta['rang'][i]):03d}",
            "status": "paid" if out.inv_status[i] else "rejected",
            "payee": PAYEE.get(int(ic.payee_code[i])), "nature": code_of(meta["nature_code"][i]),
            "reception_date": iso(int(reception[i])), "liquidation_date": iso(int(ic.liq_date[i])),
            "record": int(record_ordinal[i]),
            "rejects": rejects, "signals": signals, "lines": lines, "totals": totals,
        }


def code_of(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip()


__all__ = ["from_outcome", "invoice_meta", "records", "refused", "schema", "CENT_FIELDS", "LINE_CENT_FIELDS",
           "META_COLUMNS"]
