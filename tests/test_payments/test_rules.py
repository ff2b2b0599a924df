"""The pure payment rules: ledger entries of a décompte, decisions, calendars, penalties, ids."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from fseflow.codecs import sepa
from fseflow.processors import payments as pay
from fseflow.tests.test_payments.support import EXAMPLE_PS, example_records

D = dt.date


def test_entries_of_the_worked_file_are_the_payments_md_example() -> None:
    """payments.md §2: PS 830004123 credited 21.00 + 3.78; PF 2.00 and franchise 1.00 debited to the insured."""
    got = sorted((e.kind, e.payee_kind, e.payee_ref, e.amount_cents, e.budget) for e in pay.entries(example_records()))
    assert got == [("credit", "P", EXAMPLE_PS, 378, "AMO"), ("credit", "P", EXAMPLE_PS, 2100, "AMO"),
                   ("debit", "A", "1490383137009", 100, "AMO"), ("debit", "A", "1850483137042", 200, "AMO")]


def test_rejected_decomptes_make_no_entry() -> None:
    recs = example_records()
    rejected = [{**r, "status": "rejected"} for r in recs]
    assert pay.entries(rejected) == []


def test_insured_payee_is_credited_the_net_and_owes_nothing() -> None:
    r = example_records()[0]
    r = {**r, "payee": "insured", "lines": [{**r["lines"][0], "paid_cents": 1900, "debt_cents": 0}]}
    assert [(e.kind, e.payee_kind, e.payee_ref, e.amount_cents) for e in pay.entries([r])] == \
        [("credit", "A", r["nir"], 1900)]


@pytest.mark.parametrize("balance, iban_ok, want", [(1, True, "transfer"), (1, False, "held"), (-1, True, "debt"),
                                                     (-1, False, "debt"), (0, True, "zero")])
def test_decide(balance: int, iban_ok: bool, want: str) -> None:
    assert pay.decide(balance, iban_ok) == want


@pytest.mark.parametrize("delay, amount, want", [(0, 2100, 0), (7, 2100, 0), (8, 2100, 100), (9, 99, 100),
                                                 (10, 2100, 210), (10, 378, 38), (12, 375, 38), (30, 374, 37)])
def test_late_penalty(delay: int, amount: int, want: int) -> None:
    """payments.md §5: 1.00 EUR on day 8 or 9; 10 % of amo + c2s, rounded half-up, from day 10."""
    assert pay.penalty_cents(delay, amount) == want


@pytest.mark.parametrize("cutoff, execution", [
    (D(2025, 3, 14), D(2025, 3, 17)),    # Friday → Monday (the worked example)
    (D(2025, 4, 17), D(2025, 4, 22)),    # Good Friday and Easter Monday are TARGET2 holidays
    (D(2025, 5, 7), D(2025, 5, 8)),      # 8 May is a French holiday, not a TARGET2 one
    (D(2025, 12, 24), D(2025, 12, 29)),  # 25 and 26 December
    (D(2025, 12, 31), D(2026, 1, 2)),    # 1 January
])
def test_execution_date_is_the_next_target2_business_day(cutoff: dt.date, execution: dt.date) -> None:
    assert pay.execution_date(cutoff) == execution


@pytest.mark.parametrize("day0, until, want", [
    (D(2025, 3, 14), D(2025, 3, 17), 1),   # the worked example: received Friday, paid Monday
    (D(2025, 5, 7), D(2025, 5, 9), 1),     # 8 May is not a working day in France
    (D(2025, 3, 14), D(2025, 3, 14), 0),
    (D(2025, 3, 14), D(2025, 3, 31), 11),
])
def test_working_days_after_reception(day0: dt.date, until: dt.date, want: int) -> None:
    assert pay.working_days_after(day0, until) == want


def test_identifiers_have_the_profile_form() -> None:
    assert pay.msg_id("AMO", D(2025, 3, 17)) == "FSF-AMO-20250317-01"
    assert pay.end_to_end_id("AMO", D(2025, 3, 17), "P", EXAMPLE_PS, 1) == "AMO20250317P830004123001"
    assert pay.remittance("P", D(2025, 3, 14), EXAMPLE_PS, 2) == "CNMSS REMB 14/03/2025 REF P01 PS 830004123 2 FACT"
    with pytest.raises(ValueError, match="max 35"):
        pay.end_to_end_id("APIAS", D(2025, 3, 17), "A", "9" * 30, 1)


@given(st.sampled_from(pay.BUDGETS), st.dates(D(2000, 1, 1), D(2099, 12, 31)), st.sampled_from("PA"),
       st.integers(0, 10**9), st.integers(1, 999))
def test_end_to_end_ids_are_valid_sepa_identifiers(budget: str, day: dt.date, kind: str, payee: int,
                                                   serial: int) -> None:
    e2e = pay.end_to_end_id(budget, day, kind, str(payee), serial)
    assert len(e2e) <= 35 and set(e2e) <= sepa.EPC_CHARS and "/" not in e2e


def test_debtor_accounts_are_three_valid_and_distinct_ibans() -> None:
    ibans = [a.iban for a in pay.DEBTORS.values()]
    assert sorted(pay.DEBTORS) == sorted(pay.BUDGETS) and len(set(ibans)) == 3
    assert all(sepa.iban_valid(i) for i in ibans)


def test_write_off_after_two_years() -> None:
    assert not pay.write_off_due(D(2023, 3, 15), D(2025, 3, 14))
    assert pay.write_off_due(D(2023, 3, 14), D(2025, 3, 14))
    assert pay.write_off_due(D(2024, 2, 29), D(2026, 2, 28))
