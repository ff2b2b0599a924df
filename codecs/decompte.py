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
    # whole columns to Python lists once: per-element numpy scalar access is the cost here
    money = out.money.tolist()
    n_lines = len(money)
    ix = {f: _MONEY_INDEX[f] for f in CENT_FIELDS}
    rate_ix = _MONEY_INDEX["rate_pct"]
    L = {name: col.tolist() for name, col in (
        ("type", lc.rec_type), ("care_date", lc.care_date), ("qty", lc.quantity), ("coef", lc.coefficient),
        ("billed", lc.billed_amount), ("status", out.line_status), ("reject", out.line_reject),
        ("signals", out.line_signals))} if n_lines else {}
    acts = [code_of(a) for a in act_code.tolist()]
    days: dict[int, str | None] = {}

    def day(n: int) -> str | None:
        if n not in days:
            days[n] = iso(n)
        return days[n]

    I = {name: col.tolist() for name, col in (
        ("start", ic.line_start), ("count", ic.line_count), ("rejects", out.inv_rejects),
        ("signals", out.inv_signals), ("status", out.inv_status), ("c14_line", ic.c14_line),
        ("invoice", ic.invoice_number), ("ps", ic.ps), ("payee", ic.payee_code), ("liq", ic.liq_date),
        ("file_ix", meta["file_ix"]), ("lot", meta["lot_number"]), ("record", meta["record_ordinal"]),
        ("reception", meta["reception_date"]), ("rang", meta["rang"]), ("nir", meta["nir_opener"]),
        ("nature", meta["nature_code"]), ("birth_date", ic.birth_date), ("birth_rank", ic.birth_rank),
        ("quality", ic.quality))}
    for i in range(len(I["ps"])):
        first, end = I["start"][i], I["start"][i] + I["count"][i]
        rejected_invoice = bool(I["rejects"][i])
        rejects: list[dict[str, Any]] = []
        for bit in _bits(I["rejects"][i]):
            reason = REASONS[bit]
            if reason.name == "C14":
                line = I["c14_line"][i]
                decoded_field = c14_fields.get(i) if isinstance(c14_fields, dict) else c14_fields[i]
                rejects.append({"code": reason.code, "line": line or None,
                                "field": _c14_field(ic, lc, i, decoded_field)})
            else:
                rejects.append({"code": reason.code, "line": None, "field": reason.field})
        signals = [{"code": REASONS[bit].code, "line": None} for bit in _bits(I["signals"][i])]
        lines = []
        totals = dict.fromkeys(LINE_CENT_FIELDS, 0)
        for n, j in enumerate(range(first, end), start=1):
            r = L["reject"][j]
            if r >= 0:
                rejects.append({"code": REASONS[r].code, "line": n, "field": REASONS[r].field})
            if L["signals"][j]:
                signals.extend({"code": REASONS[bit].code, "line": n} for bit in _bits(L["signals"][j]))
            m = money[j]
            line: dict[str, Any] = {
                "line": n, "type": str(L["type"][j]), "act": acts[j],
                "care_date": day(L["care_date"][j]), "qty": L["qty"][j],
                "coef_hundredths": L["coef"][j],
                "status": "paid" if L["status"][j] else "rejected",
                "reject": REASONS[r].code if r >= 0 and not rejected_invoice else None,
                "billed_cents": L["billed"][j],
            }
            for f, k in ix.items():
                line[f] = m[k]
            line["rate_pct"] = m[rate_ix]
            line["budget"] = BUDGETS[m[M_BUDGET]]
            for f in LINE_CENT_FIELDS:
                totals[f] += line[f]
            lines.append(line)
        yield {
            "file": files[I["file_ix"][i]], "lot": I["lot"][i],
            "invoice": f"{I['invoice'][i]:09d}", "ps": f"{I['ps'][i]:09d}",
            "nir": I["nir"][i].decode("ascii", "replace"), "rang": f"{I['rang'][i]:03d}",
            "status": "paid" if I["status"][i] else "rejected",
            "payee": PAYEE.get(I["payee"][i]), "payee_code": I["payee"][i], "nature": code_of(I["nature"][i]),
            # the patient, as the B2 names them: returns (entity 120) and fraud scoring need them
            "birth_date": day(I["birth_date"][i]), "birth_rank": I["birth_rank"][i], "quality": I["quality"][i],
            "reception_date": day(I["reception"][i]), "liquidation_date": day(I["liq"][i]),
            "record": I["record"][i],
            "rejects": rejects, "signals": signals, "lines": lines, "totals": totals,
        }


def code_of(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip()


__all__ = ["from_outcome", "invoice_meta", "records", "refused", "schema", "CENT_FIELDS", "LINE_CENT_FIELDS",
           "META_COLUMNS"]
