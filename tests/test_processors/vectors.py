"""The worked vectors of liquidation.md §5 (tests/data/liquidation_vectors.csv) as kernel inputs."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fseflow.codecs.nir import luhn_key
from fseflow.processors import state as st
from fseflow.processors.reference import load_reference
from fseflow.tests.builders import d

VECTORS = Path(__file__).resolve().parent.parent / "data" / "liquidation_vectors.csv"

# the PS speciality that bills each code of the vectors
SPECIALITY = {"G": 1, "MEG": 1, "C": 1, "MM": 1, "MCG": 1, "ADC": 4, "ATM": 1, "AMS": 26, "AMI": 24,
              "PH7": 50, "B": 30, "VSL": 55}
PRESCRIBER = 10001234567
# counters already taken before the vector (liquidation.md §5 notes)
PRELOAD = {"V13": (st.PF_YEAR, 5000), "V14": (st.PF_YEAR, 4900), "V24": (st.FR_YEAR, 4950)}
# a woman in her 7th month of pregnancy on 2025-03-10 (V18)
PREGNANCY_START = "2024-08-15"


@dataclass
class Vector:
    row: dict[str, str]
    invoice: dict[str, Any]
    beneficiary: dict[str, Any]
    state: dict[tuple[int, int, int], int]


def _lines(spec: str, care: str) -> list[dict[str, Any]]:
    billed_override = None
    if ";" in spec:
        spec, extra = spec.split(";")
        billed_override = round(float(extra.strip().removeprefix("billed ")) * 100)
    m = re.fullmatch(r"(\d+) × \[(.*)\]", spec.strip())
    parts = [m.group(2)] * int(m.group(1)) if m else spec.split(" + ")
    ref = load_reference()
    out = []
    for part in parts:
        pm = re.fullmatch(r"(\w+) × ([\d.]+) × (\d+)(?: @ ([\d.]+))?", part.strip())
        assert pm, part
        code, coef, qty, price = pm.groups()
        coef_h = round(float(coef) * 100)
        row = ref.letter_key(code, 0, d(care))
        assert row is not None
        unit = row.value_cents if row.value_cents is not None else round(float(price) * 100)
        billed = (unit * coef_h * int(qty) + 50) // 100
        out.append({"act": code, "care_date": care, "quantity": int(qty), "coefficient": coef_h,
                    "unit_price": unit, "billed_amount": billed_override or billed,
                    "executor_speciality": SPECIALITY[code]})
    return out


def load_vectors() -> list[Vector]:
    vectors = []
    with open(VECTORS, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            care = row["care_date"]
            lines = _lines(row["lines"], care)
            nature, exo = row["nature"], int(row["exo_mtf"])
            female = row["birth_date"] == "1992-06-01"
            nir = "2920675123456" if female else "1850483137042"
            bene: dict[str, Any] = {"nir": nir, "birth_date": row["birth_date"], "sex": 2 if female else 1}
            inv: dict[str, Any] = {"nir": nir, "birth_date": row["birth_date"], "nature": nature,
                                   "lot_family": {"PM": "AS"}.get(nature, nature), "exo_reason": exo,
                                   "payee_code": int(row["payee_code"]), "parcours": row["parcours"] or " ",
                                   "ps": ps_for(lines[0]["executor_speciality"]),
                                   "lot_speciality": lines[0]["executor_speciality"],
                                   "lines": lines}
            if exo:
                for l in lines:
                    l["line_exo_flag"] = 1 if row["id"] != "V25" else 0
            if exo in (41, 42, 43, 44, 45, 46, 47):
                bene |= {"ald_start": "2020-01-01"}
            if nature == "SG" or exo == 21:
                bene |= {"sig_start": "2010-01-01"}
            if row["c2s"] == "yes":
                bene |= {"c2s_start": "2024-01-01"}
            if nature == "AT":
                inv["event_date"] = "2025-02-01"
            if nature == "MA":
                inv["pregnancy_start_date"] = PREGNANCY_START
            if any(load_reference().letter_key(l["act"], 0, d(care)).prescription_required for l in lines):
                inv |= {"prescriber_rpps": PRESCRIBER, "prescription_date": care}
            state = {}
            if row["id"] in PRELOAD:
                kind, cents = PRELOAD[row["id"]]
                state[(st.key_a(kind, 0), int(care[:4]), 0)] = cents
            vectors.append(Vector(row, inv, bene, state))
    return vectors


def ps_for(speciality: int) -> int:
    """A billing number with a valid Luhn key, one per speciality (département 83)."""
    body = f"831{speciality:05d}"
    return int(body + str(luhn_key(body)))


def professionals() -> list[dict[str, Any]]:
    """One billing PS per speciality of the vectors, plus the prescriber."""
    rows = [{"ps_number": ps_for(s), "rpps": 0, "speciality": s} for s in sorted(set(SPECIALITY.values()))]
    rows.append({"ps_number": 831000017, "rpps": PRESCRIBER, "speciality": 1})
    return rows
