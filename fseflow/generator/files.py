"""Invoices → lots → files: one B2 file per PS and reception day, lots by nature family.

Each file is emitted by its PS (file header), created on the reception day, numbered by a
file sequence that grows per emitter, and addressed to 08/756/0100 in production (P, B2P1).
Lots hold one nature family (AS for AS/PM, MA, AT, SG) and at most 9,999 invoices
(b2-profile.md §2). Invoice numbers are unique per PS: reception year × 10^7 + a counter.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from fseflow.codecs.model import B2File, Lot
from fseflow.generator._invoices import FAMILY_ORDER, Built
from fseflow.generator.professionals import Directory, Professional

__all__ = ["B2Output", "number_invoices", "assemble", "file_name", "SOFTWARE"]

MAX_INVOICES_PER_LOT = 9999
MAX_LOTS_PER_FILE = 999
#: PS software (name ≤ 12, version ≤ 8 characters) by kind — profile choice
SOFTWARE: dict[str, tuple[tuple[str, str], ...]] = {
    "pharmacy": (("LGPI", "3.12"), ("WINPHARMA", "6.2.1"), ("PHARMAGEST", "8.12"), ("SMART RX", "2.4")),
    "gp": (("MEDISTORY", "4.3"), ("CROSSWAY", "2024.1"), ("WEDA", "3.5"), ("HELLODOC", "5.60")),
    "nurse": (("TOPAZE", "3.0"), ("VEGA", "11.0"), ("AGATHE", "7.2")),
    "physio": (("KINE+4000", "3.2"), ("VEGA", "11.0"), ("TOPAZE", "3.0")),
    "lab": (("KALISIL", "5.1"), ("GLIMS", "9.7")),
    "dentist": (("JULIE", "7.1"), ("LOGOSW", "2.3"), ("VEGA", "11.0")),
    "transporter": (("AMBUFACT", "4.0"), ("SANTEFACT", "2.1.0")),
    "health_centre": (("SANTEFACT", "2.1.0"), ("WEDA", "3.5")),
}
DEFAULT_SOFTWARE = (("SANTEFACT", "2.1.0"), ("CROSSWAY", "2024.1"), ("MEDISTORY", "4.3"), ("VEGA", "11.0"))
#: first file sequence and first invoice counter of a PS (profile choice)
FIRST_SEQUENCE = (1, 900)
FIRST_INVOICE_COUNTER = (1, 400_000)
CREATION_HOURS = (12, 23)
RESEND = "duplicate_invoice"


def file_name(ps_number: str, day: dt.date) -> str:
    return f"PS{ps_number}-{day:%Y%m%d}.b2"


@dataclass
class B2Output:
    """One file to write, and where each of its invoices sits (lot number, invoice)."""

    name: str
    reception: dt.date
    emitter: str
    sequence: int
    b2: B2File
    placed: list[tuple[int, Built]] = field(default_factory=list)


def number_invoices(built: list[Built], directory: Directory, reception_days: list[dt.date],
                    rng: np.random.Generator) -> None:
    """Invoice numbers per PS, in reception order: YY × 10^7 + a counter from a random start."""
    lo, hi = FIRST_INVOICE_COUNTER
    counter = rng.integers(lo, hi + 1, len(directory.professionals)).tolist()
    for b in sorted(built, key=lambda b: b.day):  # stable: plan order within a day
        counter[b.ps] += 1
        b.invoice.head["invoice_number"] = reception_days[b.day].year % 100 * 10**7 + counter[b.ps]


def _lot_header(p: Professional, ps_number: str, family: str, day: dt.date, count: int) -> dict[str, object]:
    return {"ps_number": int(ps_number), "ps_speciality": int(p.speciality), "convention_code": p.convention,
            "tariff_zone": int(p.tariff_zone), "lot_nature_family": family, "lot_creation_date": day,
            "invoice_count_expected": count, "ps_rpps": int(p.rpps), "structure_finess": p.finess}


def assemble(built: list[Built], directory: Directory, reception_days: list[dt.date],
             rng: np.random.Generator) -> list[B2Output]:
    """Files in reception order (then by billing number), lots by family, invoices in given order."""
    groups: dict[tuple[int, str], list[Built]] = {}
    for b in built:
        number = b.ps_number or directory.professionals[b.ps].ps_number
        groups.setdefault((b.day, number), []).append(b)
    pros = directory.professionals
    software = {}
    for p in pros:
        table = SOFTWARE.get(p.kind, DEFAULT_SOFTWARE)
        software[p.ps_number] = table[int(rng.integers(0, len(table)))]
    sequence: dict[str, int] = {}
    outputs: list[B2Output] = []
    for (day_index, number), members in sorted(groups.items()):
        day = reception_days[day_index]
        p = pros[members[0].ps]
        if number not in sequence:
            sequence[number] = int(rng.integers(FIRST_SEQUENCE[0], FIRST_SEQUENCE[1] + 1))
        else:
            sequence[number] += 1
        name, version = software.get(number, DEFAULT_SOFTWARE[0])
        created = int(rng.integers(CREATION_HOURS[0], CREATION_HOURS[1] + 1)) * 10000 \
            + int(rng.integers(0, 60)) * 100 + int(rng.integers(0, 60))
        header = {"emitter_ps_number": int(number), "software_name": name, "software_version": version,
                  "norm_version": "B2P1", "creation_date": day, "creation_time": created, "dest_regime": 8,
                  "dest_caisse": 756, "dest_centre": 100, "test_flag": "P", "file_sequence": sequence[number]}
        out = B2Output(file_name(number, day), day, number, sequence[number], B2File(header=header))
        # a resend travels in a lot of its own after the others, so (file, lot, invoice) names it
        batches = [[b for b in members if b.family == f and b.anomaly != RESEND] for f in FAMILY_ORDER]
        batches += [[b for b in members if b.family == f and b.anomaly == RESEND] for f in FAMILY_ORDER]
        for invoices in batches:
            if not invoices:
                continue
            family = invoices[0].family
            for start in range(0, len(invoices), MAX_INVOICES_PER_LOT):
                chunk = invoices[start:start + MAX_INVOICES_PER_LOT]
                lot_number = len(out.b2.lots) + 1
                if lot_number > MAX_LOTS_PER_FILE:
                    raise ValueError("more than 999 lots in one file")
                out.b2.lots.append(Lot(_lot_header(p, number, family, day, len(chunk)), [b.invoice for b in chunk]))
                out.placed.extend((lot_number, b) for b in chunk)
        outputs.append(out)
    return outputs
