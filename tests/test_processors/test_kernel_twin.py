"""Property tests: the numba kernels equal the pure-Python twin on random invoice sequences.

Each example draws a small world (beneficiaries with random rights, ALD, C2S and SIG periods;
a PS directory with a structure and a prescriber), a sequence of invoices that share
beneficiaries and days (so duplicates, once-per-day rules and caps interact), and counters
already taken. Both implementations must give the same outcome, bit for bit, and the same state.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from fseflow.processors import state as st
from fseflow.processors.reference import load_reference
from fseflow.tests.builders import claims, write_beneficiaries, write_professionals
from fseflow.tests.test_processors.impls import run_numba, run_twin

NIRS = ["1850483137042", "2921175123456", "1490383137009", "2520813055118", "106022A123456"]
BIRTHS = ["1985-04-12", "1992-11-20", "1949-03-20", "1952-08-07", "2006-02-28"]
SEXES = [1, 2, 1, 2, 1]
PRESCRIBER = 10001234567
# (billing n°, executor RPPS, speciality, codes it may bill)
PS = [
    (830004123, 0, 1, ["G", "G", "GS", "VG", "C", "CS", "MEG", "MCG", "MM", "K", "ADC", "ATM", "TCG"]),
    (830004123, PRESCRIBER, 1, ["G", "K", "ADC", "ATM", "MCG"]),
    (830004123, 10007654321, 24, ["AMI", "AMI", "AIS", "IFI", "IK"]),
    (842000013, 0, 26, ["AMS", "AMK", "AMC", "IK"]),
    (850000011, 0, 50, ["PH7", "PH1", "PH4", "PH2", "PHN"]),
    (831000017, 0, 4, ["ADC", "ACO", "ATM", "K", "CS"]),
    (855000018, 0, 55, ["VSL", "ABA"]),
    (860000017, 0, 30, ["B", "B"]),
    (870000018, 0, 19, ["SDE", "END"]),
]
DAYS = ["2025-01-06", "2025-01-10", "2025-03-09", "2025-03-10", "2025-03-11", "2025-03-12", "2025-05-01",
        "2019-06-14", "2024-03-01", "2023-12-29"]
REF = load_reference()


def period(draw: Any, name: str) -> dict[str, str]:
    start = draw(s.sampled_from(["", "", "2019-01-01", "2024-06-30", "2025-03-10"]))
    end = draw(s.sampled_from(["", "", "2025-03-11", "2030-01-01"])) if start else ""
    return {f"{name}_start": start, f"{name}_end": end}


def valid_line(draw: Any, codes: list[str], day: str, rpps: int, spe: int) -> dict[str, Any]:
    code = draw(s.sampled_from(codes))
    row = next(iter(REF.letter_keys[code]))
    coef = 100 if row.priced_by_unit else draw(s.sampled_from([100, 150, 200, 840, 1700, 3000, 6000]))
    qty = 1 if row.category in ("consultation", "visit", "majoration") and code not in ("IK",) else \
        draw(s.sampled_from([1, 1, 2, 3, 12]))
    unit = draw(s.sampled_from([315, 1440, 2000, 3000, 12540, 9999]))
    tariff = (unit * coef * qty + 50) // 100
    billed = draw(s.sampled_from([tariff, tariff, tariff, tariff + 2000, max(1, tariff - 100)]))
    return {"act": code, "care_date": day, "quantity": qty, "coefficient": coef, "unit_price": unit,
            "billed_amount": billed, "executor_rpps": rpps, "executor_speciality": spe,
            "line_exo_flag": draw(s.sampled_from([0, 0, 1])), "complement_code": draw(s.sampled_from([0, 0, 0, 1, 2, 3])),
            "nabm_uncheckable": int(code == "B" and draw(s.booleans())),
            "base": draw(s.sampled_from([0, tariff])), "rate_pct": draw(s.sampled_from([0, 70, 60])),
            "amo_amount": draw(s.sampled_from([0, 2100]))}


# invalid values a perturbation can put in one field (each hits one control)
LINE_PERTURBATIONS = [("quantity", 0), ("coefficient", 0), ("count", 0), ("act", "ZZZ"), ("act", "G"),
                      ("executor_speciality", 99), ("executor_speciality", 24), ("detail_bad", 1),
                      ("billed_amount", 0), ("care_date", "2019-06-14"), ("rec_type", 3), ("coefficient_mco", 12345),
                      ("executor_rpps", 99999999999), ("care_date", "2022-12-30")]
INVOICE_PERTURBATIONS = [
    ("c14_line", 0), ("nature_operation", 2), ("invoice_number", 0), ("nir_key", 0), ("quality", 3),
    ("birth_date", "1985-04-13"), ("nature", "XX"), ("nature", "AT"), ("nature", "MA"), ("nature", "SG"),
    ("lot_family", "MA"), ("exo_reason", 42), ("exo_reason", 21), ("exo_reason", 55), ("exo_reason", 13),
    ("exo_reason", 41), ("exo_reason", 47), ("exo_justification", 0), ("ps", 899999992), ("lot_speciality", 24),
    ("lot_convention", 0), ("lot_convention", 2), ("payee_code", 99), ("payee_code", 36), ("amc_number", 5),
    ("prescriber_rpps", 0), ("prescriber_rpps", 12345678901), ("prescription_date", "2026-01-01"),
    ("prescription_date", "2023-01-01"), ("liq_date", "2027-06-01"), ("liq_date", "2025-03-08"),
    ("stay_number", 7), ("stay_entry_date", "2025-03-11"), ("stay_exit_date", "2025-01-01"),
    ("parcours", " "), ("parcours", "S"), ("parcours", "?"), ("parcours", "L"), ("nii", NIRS[1]),
    ("pregnancy_start_date", "2024-09-01"), ("event_date", "2025-03-12"), ("zone", 3), ("ps", 880000013),
    ("ps", 831000017),
]


@s.composite
def worlds(draw: Any) -> tuple[list[dict], list[dict[str, Any]], dict]:
    benes = []
    for k, (nir, birth) in enumerate(zip(NIRS, BIRTHS)):
        row: dict[str, Any] = {"nir": nir, "birth_date": birth, "sex": SEXES[k], "rights_start": "2010-01-01"}
        for p in ("ald", "c2s", "sig"):
            row |= period(draw, p)
        if draw(s.integers(0, 9)) == 0:
            row["rights_end"] = "2025-03-10"
        if draw(s.integers(0, 19)) == 0:
            row["death_date"] = "2025-03-10"
        benes.append(row)
    invoices = []
    for _ in range(draw(s.integers(1, 10))):
        b = draw(s.integers(0, len(benes) - 1))
        ps, rpps, spe, codes = draw(s.sampled_from(PS))
        day = draw(s.sampled_from(DAYS))
        lines = [valid_line(draw, codes, draw(s.sampled_from([day, day, day, DAYS[3]])), rpps, spe)
                 for _ in range(draw(s.integers(1, 5)))]
        for _ in range(draw(s.sampled_from([0, 0, 0, 1, 2]))):
            j = draw(s.integers(0, len(lines) - 1))
            field, value = draw(s.sampled_from(LINE_PERTURBATIONS))
            lines[j][field] = value
        care = sorted(l["care_date"] for l in lines)
        inv: dict[str, Any] = {
            "nir": NIRS[b], "birth_date": BIRTHS[b], "ps": ps, "lot_speciality": 1 if ps == 830004123 else spe,
            "liq_date": draw(s.sampled_from([care[-1], "2025-05-02", "2025-06-30"])),
            "invoice_number": draw(s.integers(1, 4)), "payee_code": draw(s.sampled_from([10, 35, 36])),
            "amc_number": draw(s.sampled_from([0, 7])), "parcours": draw(s.sampled_from(["T", "T", "O", "L", " ", "S"])),
            "prescriber_rpps": PRESCRIBER, "prescription_date": care[0], "lines": lines,
        }
        nature = draw(s.sampled_from(["AS", "AS", "AS", "AS", "PM", "MA", "AT", "SG"]))
        inv |= {"nature": nature, "lot_family": {"PM": "AS"}.get(nature, nature),
                "event_date": "2025-01-02", "pregnancy_start_date": "2024-08-15"}
        if draw(s.integers(0, 5)) == 0:  # a hospital invoice with a stay (C39, C46)
            inv |= {"stay_number": 7, "stay_entry_date": "2025-03-01", "stay_exit_date": draw(s.sampled_from([None, "2025-03-11"]))}
            lines[0] |= {"rec_type": 3, "act": "FJ", "unit_price": 2000, "coefficient": 100, "quantity": 1}
        for _ in range(draw(s.sampled_from([0, 0, 0, 1, 1, 2]))):
            field, value = draw(s.sampled_from(INVOICE_PERTURBATIONS))
            inv[field] = value
            if field == "nature":
                inv["lot_family"] = {"XX": "AS"}.get(value, value)
        invoices.append(inv)
    preload = {}
    for b in range(len(benes)):
        for kind, year, cap in ((st.PF_YEAR, 2025, 5000), (st.FR_YEAR, 2025, 5000)):
            taken = draw(s.sampled_from([0, 0, 0, cap - 50, cap - 150, cap]))
            if taken:
                preload[(st.key_a(kind, b), year, 0)] = taken
    return benes, invoices, preload


PROS = [{"ps_number": 830004123, "rpps": 0, "speciality": 1}] + \
       [{"ps_number": ps, "rpps": rpps, "speciality": spe} for ps, rpps, spe, _ in PS if not (ps == 830004123 and rpps == 0)] + \
       [{"ps_number": 880000013, "rpps": 0, "speciality": 1, "convention": 0}]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_kernel_equals_twin(world) -> None:
    benes, invoices, preload = world
    with tempfile.TemporaryDirectory() as tmp:
        bene = write_beneficiaries(Path(tmp) / "b.csv", benes)
        pros = write_professionals(Path(tmp) / "p.csv", PROS)
    ic, lc = claims(invoices)
    twin_out, twin_state = run_twin(ic, lc, bene, pros, dict(preload))
    kern_out, kern_state = run_numba(ic, lc, bene, pros, dict(preload))
    for name, a, b in zip(twin_out._fields, twin_out, kern_out):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert twin_state == kern_state
