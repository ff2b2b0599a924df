"""Each control of controls.md on one valid invoice changed in one place: exactly its code, on
the twin and on the kernel. (The property tests prove the two agree; these prove they are right.)"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fseflow.processors import state as st
from fseflow.processors.rules import REASONS, R
from fseflow.tests.builders import claims, write_beneficiaries, write_professionals
from fseflow.tests.test_processors.impls import IMPLS

GP, NURSE_RPPS, PRESCRIBER = 830004123, 10007654321, 10001234567
BENE = {"nir": "1850483137042", "birth_date": "1985-04-12", "ald_start": "2020-01-01", "sig_start": "2020-01-01"}
WOMAN = {"nir": "2920675123456", "birth_date": "1992-06-01", "sex": 2}
LEFT = {"nir": "1490383137009", "birth_date": "1949-03-20", "rights_end": "2025-03-01"}
DEAD = {"nir": "2520813055118", "birth_date": "1952-08-07", "death_date": "2025-03-09"}
PROS = [{"ps_number": GP, "rpps": 0, "speciality": 1}, {"ps_number": GP, "rpps": NURSE_RPPS, "speciality": 24},
        {"ps_number": GP, "rpps": PRESCRIBER, "speciality": 1}, {"ps_number": 831000017, "rpps": 0, "speciality": 1},
        {"ps_number": 880000013, "rpps": 0, "speciality": 1, "convention": 0}]
G = {"act": "G", "unit_price": 3000, "billed_amount": 3000, "base": 3000, "rate_pct": 70, "amo_amount": 2100}
AMI = {"act": "AMI", "coefficient": 200, "unit_price": 315, "billed_amount": 630, "executor_rpps": NURSE_RPPS,
       "executor_speciality": 24, "base": 630, "rate_pct": 60, "amo_amount": 378}
BASE: dict[str, Any] = {"parcours": "T", "lines": [G]}


def outcome(impl, invoices: list[dict[str, Any]], tmp_path: Path, benes=(BENE, WOMAN, LEFT, DEAD), state=None):
    bene = write_beneficiaries(tmp_path / "b.csv", list(benes))
    pros = write_professionals(tmp_path / "p.csv", PROS)
    ic, lc = claims(invoices)
    return impl(ic, lc, bene, pros, dict(state or {}))[0]


def names(mask: int) -> set[str]:
    return {r.name for k, r in enumerate(REASONS) if (int(mask) >> k) & 1}


INVOICE_CASES = [
    ("C14", {"nature_operation": 2}),
    ("C14", {"c14_line": 0}),
    ("C15", {"nir_key": 11}),
    ("C16", {"birth_date": "1985-04-13"}),
    ("C17", {"nir": LEFT["nir"], "birth_date": LEFT["birth_date"]}),
    ("C18", {"nir": DEAD["nir"], "birth_date": DEAD["birth_date"]}),
    ("C19", {"nir": WOMAN["nir"], "birth_date": WOMAN["birth_date"], "nature": "MA", "lot_family": "AS",
             "pregnancy_start_date": "2024-09-01"}),
    ("C20", {"nature": "AT", "lot_family": "AT"}),
    ("C21", {"nature": "MA", "lot_family": "MA", "pregnancy_start_date": "2024-09-01"}),  # a man
    ("C23", {"exo_reason": 55, "lines": [G | {"line_exo_flag": 1}]}),  # no pregnancy date
    ("C25", {"ps": 831000017, "lines": [AMI], "prescriber_rpps": PRESCRIBER,  # the nurse does not bill there
             "prescription_date": "2025-03-01"}),
    ("C25", {"lot_speciality": 24}),
    ("C26", {"ps": 880000013, "lot_convention": 0}),
    ("C27", {"payee_code": 36}),  # no C2S, no AMC
    ("C27", {"payee_code": 31}),
    ("C29", {"liq_date": "2025-03-09"}),
    ("C32A", {"lines": [AMI]}),
    ("C32B", {"lines": [AMI], "prescriber_rpps": 12345678901, "prescription_date": "2025-03-01"}),
    ("C33", {"lines": [AMI], "prescriber_rpps": PRESCRIBER, "prescription_date": "2025-03-11", "liq_date": "2025-03-20"}),
    ("C33", {"lines": [AMI], "prescriber_rpps": PRESCRIBER, "prescription_date": "2024-03-01"}),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("expected, change", INVOICE_CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(INVOICE_CASES)])
def test_invoice_control(expected: str, change: dict[str, Any], impl, tmp_path: Path) -> None:
    clean = outcome(impl, [BASE], tmp_path)
    assert clean.inv_rejects[0] == 0 and clean.inv_status[0] == 1
    out = outcome(impl, [BASE | change], tmp_path)
    assert names(out.inv_rejects[0]) == {expected}
    assert out.inv_status[0] == 0 and (out.line_status == 0).all() and (out.money[:, :-1] == 0).all()


LINE_CASES = [
    ("C30", {"care_date": "2023-02-10"}, {"liq_date": "2025-04-01"}),
    ("C34", {"act": "ZZZ"}, {}),
    ("C34", {"care_date": "2017-04-30"}, {"liq_date": "2017-05-02"}),  # G has no row before 2017-05-01
    ("C35", {"executor_speciality": 24, "executor_rpps": NURSE_RPPS}, {}),
    ("C36", {"quantity": 2}, {}),
    ("C36", {"coefficient": 150}, {}),
    ("C38", {"detail_bad": 1}, {}),
    ("C42", {"billed_amount": 0}, {}),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("expected, line, inv", LINE_CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(LINE_CASES)])
def test_line_control_rejects_one_line_and_pays_the_other(expected, line, inv, impl, tmp_path: Path) -> None:
    # the other line keeps a care date that passes (the forclusion case moves only the first line)
    care = "2025-03-10" if expected == "C30" else line.get("care_date", "2025-03-10")
    other = G | {"act": "MCG", "unit_price": 500, "billed_amount": 500, "care_date": care}
    out = outcome(impl, [BASE | inv | {"lines": [G | line, other]}], tmp_path)
    assert out.inv_rejects[0] == 0 and out.inv_status[0] == 1
    assert [int(x) for x in out.line_reject] == [R[expected], -1] and list(out.line_status) == [0, 1]
    assert (out.money[0, :-1] == 0).all() and out.money[1, 5] > 0  # M_AMO


def test_c37_second_consultation_same_day_same_practitioner(tmp_path: Path) -> None:
    for impl in IMPLS:
        out = outcome(impl, [BASE, BASE | {"invoice_number": 2}, BASE | {"invoice_number": 3, "lines": [G | {"care_date": "2025-03-11"}]}], tmp_path)
        assert [int(x) for x in out.line_reject] == [-1, R["C37"], -1]
        assert list(out.inv_status) == [1, 0, 1]  # every line rejected: the invoice is rejected


def test_c28_duplicate_invoice_and_a_rejected_one_does_not_count(tmp_path: Path) -> None:
    for impl in IMPLS:
        bad = BASE | {"nature_operation": 2}
        out = outcome(impl, [bad, BASE, BASE | {"lines": [G | {"care_date": "2025-03-11"}]}], tmp_path)
        assert [names(m) for m in out.inv_rejects] == [{"C14"}, set(), {"C28"}]


def test_c45_same_act_same_day_by_another_ps_is_a_signal(tmp_path: Path) -> None:
    for impl in IMPLS:
        other_ps = BASE | {"ps": 831000017, "invoice_number": 9, "lines": [G | {"executor_rpps": 0}]}
        out = outcome(impl, [BASE, other_ps], tmp_path)
        assert list(out.inv_status) == [1, 1]
        assert not (out.line_signals[0] >> R["C45S"]) & 1 and (out.line_signals[1] >> R["C45S"]) & 1


def test_c47_sunday_complement_on_a_weekday_and_night_on_pharmacy(tmp_path: Path) -> None:
    for impl in IMPLS:
        sunday = BASE | {"lines": [G | {"complement_code": 2, "care_date": "2025-03-09"}]}
        monday = BASE | {"invoice_number": 2, "lines": [G | {"complement_code": 2}]}
        out = outcome(impl, [sunday, monday], tmp_path)
        assert [bool((s >> R["C47S"]) & 1) for s in out.line_signals] == [False, True]


def test_pf_annual_cap_counts_across_invoices(tmp_path: Path) -> None:
    for impl in IMPLS:
        state = {(st.key_a(st.PF_YEAR, 0), 2025, 0): 4700}
        days = ["2025-03-10", "2025-03-11", "2025-03-12"]
        invs = [BASE | {"invoice_number": k, "lines": [G | {"care_date": d}]} for k, d in enumerate(days, 1)]
        out = outcome(impl, invs, tmp_path, state=state)
        assert [int(x) for x in out.money[:, 7]] == [200, 100, 0]  # M_PF: 47 + 2 + 1 = the 50.00 cap


# a woman born in 1924: in a 2025 file her birth date reads 24 → 2024 (b2-profile.md §2)
CENTENARIAN = {"nir": "2240483137011", "birth_date": "1924-04-12", "sex": 2}


@pytest.mark.parametrize("impl", IMPLS)
def test_a_centenarian_is_found_on_the_directory_birth_date(impl, tmp_path: Path) -> None:
    benes = (BENE, CENTENARIAN)
    read = BASE | {"nir": CENTENARIAN["nir"], "birth_date": "2024-04-12"}  # the decoder's 20AA reading
    out = outcome(impl, [read], tmp_path, benes=benes)
    assert out.inv_rejects[0] == 0 and out.inv_status[0] == 1  # no C16, and no C29 (born after the care)
    assert out.inv_bene[0] == 1
    # the century step is only a fallback: another day still matches no one
    out = outcome(impl, [read | {"birth_date": "2024-04-13"}], tmp_path, benes=benes)
    assert names(out.inv_rejects[0]) == {"C16"}
    # and a baby of 2024 with that NIR, if the directory holds one, is found first
    baby = CENTENARIAN | {"birth_date": "2024-04-12"}
    out = outcome(impl, [read], tmp_path, benes=(BENE, CENTENARIAN, baby))
    assert out.inv_rejects[0] == 0 and out.inv_bene[0] == 2
