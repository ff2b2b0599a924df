"""The cut-off, the SEPA files, the returns and the reconciliation on the real PostgreSQL.

The worked B2 file of b2-profile.md, liquidated on Friday 14 March 2025, is the payments.md §2
example: one transfer of 24.78 to the health centre on Monday 17 March, and the insured's PF
and franchise carried as debts. The returns.md §2.5 return is what the PS receives.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from fseflow.codecs import returns as rt
from fseflow.codecs import sepa
from fseflow.cutoff import CutoffError, pay_day
from fseflow.delays import delay_report
from fseflow.reconcile import reconcile
from fseflow.tests.test_codecs.test_returns import EXAMPLE
from fseflow.tests.test_payments.support import DAY, EXAMPLE_PS, insured_payment, load_example, write

IBAN_EXAMPLE = "FR7630001007941234567890185"   # the PS account of the returns.md example


@pytest.fixture
def example(fresh_db: str) -> str:
    load_example(fresh_db)
    return fresh_db


def _transfers(conn: psycopg.Connection, day: dt.date) -> list[tuple]:
    return conn.execute("SELECT t.budget, t.payee_kind, t.end_to_end_id, t.amount_cents FROM transfers t"
                        " JOIN payment_runs r USING (msg_id) WHERE r.day = %s ORDER BY 3", (day,)).fetchall()


def test_worked_example_pays_the_ps_and_carries_the_debts(example: str, tmp_path: Path) -> None:
    with psycopg.connect(example, autocommit=True) as conn:
        runs, returns = pay_day(conn, DAY, tmp_path)
        amo = next(r for r in runs if r.budget == "AMO")
        assert (amo.msg_id, amo.execution_date, amo.transfers, amo.amount_cents) == \
            ("FSF-AMO-20250317-01", dt.date(2025, 3, 17), 1, 2478)
        assert (amo.debts, amo.debt_cents, amo.held) == (2, -300, 0)
        assert all(r.file is None and r.transfers == 0 for r in runs if r.budget != "AMO")
        assert _transfers(conn, DAY) == [("AMO", "P", "AMO20250317P830004123001", 2478)]
        carried = conn.execute("SELECT balance_cents, reason FROM carried_balances ORDER BY 1").fetchall()
        assert carried == [(-200, "debt"), (-100, "debt")]
        pf = sepa.read(amo.file.read_bytes())
        assert (pf.msg_id, pf.ctrl_sum_cents, pf.execution_date, pf.created) == \
            ("FSF-AMO-20250317-01", 2478, dt.date(2025, 3, 17), dt.datetime(2025, 3, 14, 20, 0))
        assert pf.transfers[0].remittance == "CNMSS REMB 14/03/2025 REF P01 PS 830004123 2 FACT"
        sepa.validate(amo.file.read_bytes())
        assert (tmp_path / "sepa" / "SHA256SUMS").read_text().split() == [sepa_sha(amo.file), amo.file.name]
        delays = conn.execute("SELECT delay_wd, penalty_cents FROM invoice_payments ORDER BY record").fetchall()
        assert delays == [(1, 0), (1, 0)]
        assert returns.files == 1 and returns.transfers_cents == 2478
        assert reconcile(conn, DAY, tmp_path).holds


def sepa_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_return_is_the_returns_md_example(example: str, tmp_path: Path) -> None:
    """Byte for byte, but for what the fund's tables do not hold: the spouse's own NIR (entity 120)
    and the example's IBAN (the test directory's PS account differs)."""
    with psycopg.connect(example, autocommit=True) as conn:
        conn.execute("UPDATE professionals SET iban = %s WHERE ps_number = %s AND iban IS NOT NULL",
                     (IBAN_EXAMPLE, EXAMPLE_PS))
        pay_day(conn, DAY, tmp_path)
    got = (tmp_path / "returns" / f"NOEMIE-{EXAMPLE_PS}-20250314.txt").read_bytes()
    want = EXAMPLE.replace(b"2252111305511865", b"2" + b" " * 15)
    assert got == want
    assert rt.decode(got).blocks[0].transfer.end_to_end_id == "AMO20250317P830004123001"


def test_a_tiers_payant_debt_is_netted_against_a_later_insured_payment(example: str, tmp_path: Path) -> None:
    """payments.md §2: the insured owes 2.00; a later consultation without tiers payant nets 19.00
    → 17.00 transferred, the debt cleared; the other insured's debt stays carried."""
    day2 = dt.date(2025, 3, 18)
    with psycopg.connect(example, autocommit=True) as conn:
        pay_day(conn, DAY, tmp_path)
        from fseflow.tests.test_payments.support import example_records
        write(example, [insured_payment(example_records(), day2, 1900)])
        runs, _ = pay_day(conn, day2, tmp_path)
        amo = next(r for r in runs if r.budget == "AMO")
        row_id = conn.execute("SELECT row_id FROM beneficiaries WHERE nir = '1850483137042' AND quality = 1").fetchone()[0]
        assert _transfers(conn, day2) == [("AMO", "A", f"AMO20250319A{row_id}001", 1700)]
        assert (amo.debts, amo.debt_cents) == (1, -100)
        debit = conn.execute("SELECT settled_by FROM ledger_entries WHERE kind = 'debit' AND amount_cents = 200").fetchone()
        assert debit == (f"AMO20250319A{row_id}001",)
        creditor = sepa.read(amo.file.read_bytes()).transfers[0]
        assert "1850483137042" not in creditor.creditor_name + creditor.remittance + creditor.end_to_end_id
        assert reconcile(conn, day2, tmp_path).holds
        assert reconcile(conn, DAY, tmp_path).holds   # the first day still holds as of its cut-off


def test_a_payee_without_iban_is_held_then_paid_late_with_penalties(example: str, tmp_path: Path) -> None:
    with psycopg.connect(example, autocommit=True) as conn:
        iban = conn.execute("SELECT iban FROM professionals WHERE ps_number = %s AND iban IS NOT NULL",
                            (EXAMPLE_PS,)).fetchone()[0]
        conn.execute("UPDATE professionals SET iban = NULL WHERE ps_number = %s", (EXAMPLE_PS,))
        runs, returns = pay_day(conn, DAY, tmp_path)
        amo = next(r for r in runs if r.budget == "AMO")
        assert (amo.transfers, amo.held, amo.held_cents, amo.file) == (0, 1, 2478, None)
        assert conn.execute("SELECT reason FROM carried_balances WHERE payee_kind = 'P'").fetchone() == ("no valid IBAN",)
        assert reconcile(conn, DAY, tmp_path).holds
        # fixed two weeks later: paid on 31 March, 11 working days after reception → 10 % penalties
        conn.execute("UPDATE professionals SET iban = %s WHERE ps_number = %s AND rpps = '00000000000'",
                     (iban, EXAMPLE_PS))
        later = dt.date(2025, 3, 28)
        runs, _ = pay_day(conn, later, tmp_path)
        amo = next(r for r in runs if r.budget == "AMO")
        assert (amo.transfers, amo.amount_cents, amo.penalties) == (1, 2478 + 210 + 38, 2)
        assert conn.execute("SELECT delay_wd, penalty_cents FROM invoice_payments ORDER BY record").fetchall() == \
            [(11, 210), (11, 38)]
        report = delay_report(conn, DAY, DAY)
        assert (report.invoices, report.mean_wd, report.within_target, report.late_10, report.penalty_cents) == \
            (2, 11.0, 0, 2, 248)
        assert reconcile(conn, later, tmp_path).holds


def test_a_cut_off_run_again_gives_the_same_file_and_pays_nothing_twice(example: str, tmp_path: Path) -> None:
    with psycopg.connect(example, autocommit=True) as conn:
        first, _ = pay_day(conn, DAY, tmp_path)
        data = first[0].file.read_bytes()
        again, _ = pay_day(conn, DAY, tmp_path)
        assert again[0].rerun and again[0].file.read_bytes() == data
        assert conn.execute("SELECT count(*), sum(amount_cents) FROM transfers").fetchone() == (1, 2478)
        assert conn.execute("SELECT count(*) FROM ps_returns").fetchone() == (1,)
        # a file changed after it was sent is not silently replaced
        first[0].file.write_bytes(data.replace(b"24.78", b"24.79"))
        with pytest.raises(sepa.SepaError):
            pay_day(conn, DAY, tmp_path)


def test_reconciliation_names_a_tampered_ledger_entry(example: str, tmp_path: Path) -> None:
    with psycopg.connect(example, autocommit=True) as conn:
        pay_day(conn, DAY, tmp_path)
        conn.execute("UPDATE ledger_entries SET amount_cents = amount_cents + 1 WHERE kind = 'credit' AND line = 1"
                     " AND amount_cents = 2100")
        result = reconcile(conn, DAY, tmp_path)
        assert not result.holds
        assert "P8" in result.failure and "line 1, credit" in result.failure and "2101 cents" in result.failure


def test_reconciliation_names_a_transfer_that_does_not_match_its_entries(example: str, tmp_path: Path) -> None:
    with psycopg.connect(example, autocommit=True) as conn:
        pay_day(conn, DAY, tmp_path)
        conn.execute("UPDATE ledger_entries SET settled_by = NULL WHERE amount_cents = 378")
        result = reconcile(conn, DAY, tmp_path)
        assert not result.holds and "P2: transfer AMO20250317P830004123001 is 2478 cents" in result.failure


def test_reconciliation_names_a_file_changed_on_disk(example: str, tmp_path: Path) -> None:
    with psycopg.connect(example, autocommit=True) as conn:
        runs, _ = pay_day(conn, DAY, tmp_path)
        runs[0].file.write_bytes(runs[0].file.read_bytes().replace(b"24.78", b"24.79"))
        result = reconcile(conn, DAY, tmp_path)
        assert not result.holds and "P5" in result.failure and runs[0].file.name in result.failure


def test_a_missed_ledger_entry_is_found(example: str, tmp_path: Path) -> None:
    with psycopg.connect(example, autocommit=True) as conn:
        conn.execute("DELETE FROM ledger_entries WHERE kind = 'debit' AND amount_cents = 100")
        pay_day(conn, DAY, tmp_path)
        result = reconcile(conn, DAY, tmp_path)
        assert not result.holds and result.failure.endswith("has no debit entry")


def test_a_debt_older_than_two_years_is_written_off(example: str, tmp_path: Path) -> None:
    with psycopg.connect(example, autocommit=True) as conn:
        pay_day(conn, DAY, tmp_path)
        later = dt.date(2027, 3, 15)
        runs, _ = pay_day(conn, later, tmp_path)
        assert next(r for r in runs if r.budget == "AMO").debts == 0
        assert conn.execute("SELECT count(*), sum(amount_cents) FROM ledger_entries WHERE kind = 'write_off'"
                            ).fetchone() == (2, 300)
        assert conn.execute("SELECT count(*) FROM ledger_entries WHERE settled_by IS NULL").fetchone() == (0,)
        assert reconcile(conn, later, tmp_path).holds


def test_a_re_run_that_would_not_give_the_file_sent_is_refused_naming_the_run(example: str, tmp_path: Path) -> None:
    """The stored transfers changed after the file was sent: the re-run rebuilds other bytes and
    refuses, naming the MsgId, instead of writing them."""
    from fseflow.cutoff import cutoff

    with psycopg.connect(example, autocommit=True) as conn:
        pay_day(conn, DAY, tmp_path / "sent")
        conn.execute("UPDATE transfers SET creditor_name = 'CENTRE DE SANTE TOULON'")
        with pytest.raises(CutoffError, match="FSF-AMO-20250317-01"):
            cutoff(conn, DAY, tmp_path / "elsewhere")


def test_next_cutoff_is_20h_paris_through_daylight_saving() -> None:
    from zoneinfo import ZoneInfo

    from fseflow.cutoff import next_cutoff

    utc = dt.timezone.utc
    assert next_cutoff(dt.datetime(2025, 3, 14, 12, 0, tzinfo=utc)) == \
        dt.datetime(2025, 3, 14, 20, 0, tzinfo=ZoneInfo("Europe/Paris"))
    # 19:00 UTC is 20:00 in Paris in winter: that instant is past, the next is the next day
    assert next_cutoff(dt.datetime(2025, 3, 14, 19, 0, tzinfo=utc)).date() == dt.date(2025, 3, 15)
    # summer time: 20:00 Paris is 18:00 UTC
    assert next_cutoff(dt.datetime(2025, 7, 1, 17, 59, tzinfo=utc)).astimezone(utc).hour == 18


def test_the_daily_cut_off_of_serve_pays_the_day_once(example: str, tmp_path: Path) -> None:
    from fseflow.cutoff import DailyCutoff

    now = [dt.datetime(2025, 3, 14, 10, 0, tzinfo=dt.timezone.utc)]
    daily = DailyCutoff(example, tmp_path, clock=lambda: now[0])
    assert daily.run_due() is None                      # before 20:00: nothing
    now[0] = dt.datetime(2025, 3, 14, 19, 5, tzinfo=dt.timezone.utc)   # 20:05 in Paris
    assert daily.run_due() == DAY and daily.run_due() is None
    assert (tmp_path / "sepa" / "FSF-AMO-20250317-01.xml").exists()
    assert daily.due.date() == dt.date(2025, 3, 15)
    with psycopg.connect(example) as conn:
        assert conn.execute("SELECT count(*), sum(amount_cents) FROM transfers").fetchone() == (1, 2478)
