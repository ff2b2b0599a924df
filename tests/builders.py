"""Builders of kernel inputs for tests: beneficiaries, PS directory and claims, with defaults.

Claims are built as columns directly (not through B2 bytes), so processor tests do not depend
on the codec; end-to-end tests go through B2 files instead.
"""
from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

from fseflow.days import NO_DATE, to_days
from fseflow.processors.claims import KERNEL_DTYPES, InvoiceCols, LineCols
from fseflow.processors.directory import (
    BENEFICIARY_COLUMNS, PROFESSIONAL_COLUMNS, Beneficiaries, Professionals, load_beneficiaries,
    load_professionals, nir_id,
)
from fseflow.processors.reference import LOT_FAMILIES, compile_reference


def nir_key(nir: str) -> int:
    return 97 - (nir_id(nir) % 10**13) % 97


def d(s: str | None) -> int:
    return NO_DATE if not s else to_days(dt.date.fromisoformat(s))


def write_beneficiaries(path: Path, rows: list[dict[str, Any]]) -> Beneficiaries:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(BENEFICIARY_COLUMNS)
        for r in rows:
            full = {"key": f"{nir_key(r['nir']):02d}", "rang": "000", "birth_rank": 1, "quality": 1,
                    "sex": r["nir"][0], "rights_start": "2000-01-01", "iban": ""} | r
            w.writerow([full.get(c, "") for c in BENEFICIARY_COLUMNS])
    return load_beneficiaries(path)


def write_professionals(path: Path, rows: list[dict[str, Any]]) -> Professionals:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(PROFESSIONAL_COLUMNS)
        for r in rows:
            full = {"convention": 1, "department": "83", "tariff_zone": "00", "iban": "", "name": "PS"} | r
            w.writerow([full.get(c, "") for c in PROFESSIONAL_COLUMNS])
    return load_professionals(path)


INVOICE_DEFAULTS: dict[str, Any] = {
    "ps": 830004123, "lot_speciality": 1, "lot_convention": 1, "zone": 0, "lot_family": "AS", "nature": "AS",
    "liq_date": None, "nir": "1850483137042", "nir_key": None, "nii": None, "nii_key": None, "quality": 1,
    "birth_date": "1985-04-12", "birth_rank": 1, "invoice_number": 1, "nature_operation": 1, "exo_reason": 0,
    "exo_justification": None, "prescriber_rpps": 0, "prescription_date": None, "pregnancy_start_date": None,
    "event_date": None, "stay_number": 0, "stay_entry_date": None, "stay_exit_date": None, "payee_code": 10,
    "amc_number": 0, "parcours": " ", "c14_line": -1,
}
LINE_DEFAULTS: dict[str, Any] = {
    "rec_type": 4, "act": "G", "complement_code": 0, "line_exo_flag": 0, "executor_rpps": 0,
    "executor_speciality": 1, "care_date": "2025-03-10", "care_end_date": None, "quantity": 1,
    "coefficient": 100, "coefficient_mco": 10000, "count": 1, "unit_price": 0, "base": 0, "rate_pct": 0,
    "amo_amount": 0, "billed_amount": 0, "detail_bad": 0, "nabm_uncheckable": 0,
}
_DATE_FIELDS = {"liq_date", "birth_date", "prescription_date", "pregnancy_start_date", "event_date",
                "stay_entry_date", "stay_exit_date", "care_date", "care_end_date"}


def claims(invoices: list[dict[str, Any]]) -> tuple[InvoiceCols, LineCols]:
    """Kernel inputs from invoice dicts (INVOICE_DEFAULTS keys + `lines`: list of LINE_DEFAULTS dicts)."""
    ref = compile_reference()
    inv_rows, line_rows = [], []
    for inv in invoices:
        lines = [LINE_DEFAULTS | l for l in inv.get("lines", [])]
        row = INVOICE_DEFAULTS | {k: v for k, v in inv.items() if k != "lines"}
        row["line_start"], row["line_count"] = len(line_rows), len(lines)
        if row["liq_date"] is None:
            row["liq_date"] = max(l["care_date"] for l in lines)
        if row["exo_justification"] is None:
            row["exo_justification"] = int(row["exo_reason"] != 0)
        for l in lines:
            l["act"] = ref.act_ids.get(l["act"], -1)
            line_rows.append({k: d(v) if k in _DATE_FIELDS else v for k, v in l.items()})
        nir, nii = row.pop("nir"), row.pop("nii")
        row["nir_id"] = nir_id(nir)
        row["nir_key"] = nir_key(nir) if row["nir_key"] is None else row["nir_key"]
        row["nir_sex"] = int(nir[0])
        row["nii_present"] = int(nii is not None)
        row["nii_id"] = nir_id(nii) if nii else -1
        row["nii_key"] = (nir_key(nii) if row["nii_key"] is None else row["nii_key"]) if nii else -1
        row["nii_sex"] = int(nii[0]) if nii else -1
        row["nature"] = ref.nature_ids.get(row["nature"], -1)
        row["lot_family"] = LOT_FAMILIES.index(row["lot_family"]) if row["lot_family"] in LOT_FAMILIES else -1
        row["parcours"] = ord(row["parcours"])
        inv_rows.append({k: d(v) if k in _DATE_FIELDS else v for k, v in row.items()})
    ic = InvoiceCols(*[np.array([r[f] for r in inv_rows], dtype=t) for f, t in _types(InvoiceCols)])
    lc = LineCols(*[np.array([r[f] for r in line_rows], dtype=t) for f, t in _types(LineCols)])
    return ic, lc


def _types(cls: type) -> list[tuple[str, str]]:
    return [(f, KERNEL_DTYPES[f]) for f in cls._fields]
