"""The daily cut-off (`fseflow pay --date D`): from the ledger to one SEPA file per budget.

Per budget, in one PostgreSQL transaction under an advisory lock: debts past the write-off age
are written off; every payee's unsettled entries liquidated up to day D are summed; a positive
balance with a valid IBAN becomes one transfer of the whole balance (its entries are marked
with the EndToEndId), anything else is carried (a debt, or held with its reason). Tiers-payant
invoices paid by the run get their working-day delay and, when late, a penalty entry paid at the
next cut-off. The pain.001.001.09 file is validated against the XSD and written atomically
before the commit: a crash in between leaves a file the re-run rewrites with the same bytes.

A cut-off re-run for a (budget, day) already done rebuilds the same file from the stored
transfers (same MsgId, EndToEndIds, CreDtTm) and pays nothing new.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import psycopg

from fseflow.codecs import sepa
from fseflow.exceptions import FseflowError
from fseflow.infra.ledger import signed_sum
from fseflow.processors import payments as pay

log = logging.getLogger("fseflow.payments")
CUTOFF_LOCK = 0x46534643  # "FSFC": one cut-off per budget at a time


class CutoffError(FseflowError):
    """A cut-off cannot run, or a re-run would not give the file already sent."""


@dataclass
class RunResult:
    budget: str
    day: dt.date
    msg_id: str
    execution_date: dt.date
    transfers: int
    amount_cents: int
    held: int
    held_cents: int
    debts: int
    debt_cents: int
    penalties: int
    file: Path | None
    rerun: bool = False


def cutoff(conn: psycopg.Connection[Any], day: dt.date, out: Path,
           budgets: tuple[str, ...] = pay.BUDGETS) -> list[RunResult]:
    """Run (or re-run) the cut-off of `day` for each budget; files go to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for budget in budgets:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (CUTOFF_LOCK, budget))
            done = conn.execute("SELECT msg_id FROM payment_runs WHERE budget = %s AND day = %s",
                                (budget, day)).fetchone()
            results.append(_rerun(conn, budget, day, done[0], out) if done else _run(conn, budget, day, out))
    return results


def pay_day(conn: psycopg.Connection[Any], day: dt.date, folder: Path) -> tuple[list[RunResult], Any]:
    """The whole day: cut-off per budget into `folder/sepa`, then the returns into `folder/returns`."""
    from fseflow import ps_returns

    runs = cutoff(conn, day, folder / "sepa")
    return runs, ps_returns.write(conn, day, folder / "returns")


def payment_file(conn: psycopg.Connection[Any], msg_id: str) -> sepa.PaymentFile:
    """The SEPA file of a run, rebuilt from the stored run and transfers (ordered by EndToEndId)."""
    budget, created, execution = conn.execute(
        "SELECT budget, created, execution_date FROM payment_runs WHERE msg_id = %s", (msg_id,)).fetchone()
    rows = conn.execute("SELECT end_to_end_id, amount_cents, creditor_name, creditor_iban, remittance FROM transfers"
                        " WHERE msg_id = %s ORDER BY end_to_end_id", (msg_id,)).fetchall()
    account = pay.DEBTORS[budget]
    return sepa.PaymentFile(
        msg_id=msg_id, created=created, execution_date=execution,
        initiating=sepa.InitiatingParty(*pay.INITIATING_PARTY),
        debtor=sepa.Debtor(account.name, account.iban, account.bic),
        transfers=tuple(sepa.Transfer(e, int(a), n, i, r) for e, a, n, i, r in rows))


def _rerun(conn: psycopg.Connection[Any], budget: str, day: dt.date, msg_id: str, out: Path) -> RunResult:
    file_name, sha, execution, n_tx, total = conn.execute(
        "SELECT file_name, sha256, execution_date, n_tx, ctrl_sum_cents FROM payment_runs WHERE msg_id = %s",
        (msg_id,)).fetchone()
    path = None
    if file_name is not None:
        data = sepa.write(payment_file(conn, msg_id))
        written = sepa.write_atomic(out, file_name, data)
        if written != sha:
            raise CutoffError(f"re-run of {msg_id}: the rebuilt file differs from the one sent ({written[:12]}…"
                              f" instead of {sha[:12]}…)")
        path = out / file_name
    return RunResult(budget, day, msg_id, execution, n_tx, int(total), *carried_totals(conn, budget, day), 0, path,
                     rerun=True)


def carried_totals(conn: psycopg.Connection[Any], budget: str, day: dt.date) -> tuple[int, int, int, int]:
    """(held payees, held cents, debtors, debt cents) carried at the cut-off of `day`."""
    row = conn.execute("SELECT count(*) FILTER (WHERE reason <> 'debt'), coalesce(sum(balance_cents) FILTER"
                       " (WHERE reason <> 'debt'), 0), count(*) FILTER (WHERE reason = 'debt'),"
                       " coalesce(sum(balance_cents) FILTER (WHERE reason = 'debt'), 0)"
                       " FROM carried_balances WHERE budget = %s AND day = %s", (budget, day)).fetchone()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def _write_offs(conn: psycopg.Connection[Any], budget: str, day: dt.date) -> None:
    """Debts carried since longer than DEBT_WRITE_OFF_YEARS: an explicit write-off entry, and the
    debt's entries settled by it."""
    rows = conn.execute(
        f"SELECT payee_kind, payee_id, {signed_sum()}, min(liquidation_date) FROM ledger_entries"
        " WHERE budget = %s AND settled_by IS NULL AND liquidation_date <= %s GROUP BY 1, 2"
        f" HAVING {signed_sum()} < 0", (budget, day)).fetchall()
    for kind, payee, balance, since in rows:
        if not pay.write_off_due(since, day):
            continue
        tag = f"WO{budget}{day:%Y%m%d}{kind}{payee}"
        conn.execute("INSERT INTO ledger_entries (file_id, record, line, kind, budget, payee_kind, payee_id, amount_cents,"
                     " lot, invoice, liquidation_date, settled_by) VALUES (%s, 0, 0, 'write_off', %s, %s, %s,"
                     " %s, 0, '', %s, %s) ON CONFLICT DO NOTHING",
                     (tag, budget, kind, payee, -int(balance), day, tag))
        conn.execute("UPDATE ledger_entries SET settled_by = %s WHERE budget = %s AND payee_kind = %s AND payee_id = %s"
                     " AND settled_by IS NULL AND liquidation_date <= %s", (tag, budget, kind, payee, day))


def _payees(conn: psycopg.Connection[Any], kind: str, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """Name and valid IBAN (normalised; None when missing or failing its checks) of each payee:
    the PS directory, or the opener's beneficiary row."""
    if not ids:
        return {}
    if kind == "P":
        rows = conn.execute("SELECT ps_number, min(name), min(iban) FROM professionals WHERE ps_number = ANY(%s)"
                            " GROUP BY 1", (ids,)).fetchall()
        named = [(p, n or f"PS {p}", i) for p, n, i in rows]
    else:
        # the directory holds no names: the transfer names the fund's internal id, never the NIR
        rows = conn.execute("SELECT row_id::text, iban FROM beneficiaries WHERE row_id = ANY(%s::bigint[])",
                            (ids,)).fetchall()
        named = [(r, f"ASSURE CNMSS {r}", i) for r, i in rows]
    out = {}
    for payee, name, iban in named:
        iban = sepa.normalise_iban(iban) if iban else None
        out[payee] = (name, iban if iban and sepa.iban_valid(iban) else None)
    return out


def _run(conn: psycopg.Connection[Any], budget: str, day: dt.date, out: Path) -> RunResult:
    execution = pay.execution_date(day)
    run_no = 1 + conn.execute("SELECT count(*) FROM payment_runs WHERE budget = %s AND execution_date = %s",
                              (budget, execution)).fetchone()[0]
    mid = pay.msg_id(budget, execution, run_no)
    created = dt.datetime.combine(day, pay.PROFILE.cutoff_time)
    _write_offs(conn, budget, day)
    penalties = _penalties(conn, budget, day, execution)
    rows = conn.execute(
        f"SELECT payee_kind, payee_id, {signed_sum()}, min(liquidation_date), count(DISTINCT (file_id, record))"
        " FROM ledger_entries WHERE budget = %s AND settled_by IS NULL AND liquidation_date <= %s"
        " GROUP BY 1, 2 ORDER BY 1, 2", (budget, day)).fetchall()
    known = {k: _payees(conn, k, [p for kk, p, *_ in rows if kk == k]) for k in ("P", "A")}
    transfers: list[sepa.Transfer] = []
    paid: list[tuple[str, str, int]] = []       # (payee kind, payee id, items) of each transfer
    carried: list[tuple[Any, ...]] = []
    # serials already used on this execution date (an earlier cut-off executing the same day)
    used: dict[str, int] = {}
    for (e2e,) in conn.execute("SELECT end_to_end_id FROM transfers WHERE budget = %s AND execution_date = %s",
                               (budget, execution)):
        used[e2e[:-3]] = max(used.get(e2e[:-3], 0), int(e2e[-3:]))
    for kind, payee, balance, since, n_items in rows:
        name, iban = known[kind].get(payee, (f"{kind} {payee}", None))
        decision = pay.decide(int(balance), iban is not None)
        if decision == "transfer":
            serial = used.get(f"{budget}{execution:%Y%m%d}{kind}{payee}", 0) + 1
            e2e = pay.end_to_end_id(budget, execution, kind, payee, serial)
            transfers.append(sepa.Transfer(e2e, int(balance), name, iban, pay.remittance(kind, day, payee, int(n_items))))
            paid.append((kind, payee, int(n_items)))
        elif decision != "zero":
            reason = "debt" if decision == "debt" else pay.PROFILE.held_no_iban
            carried.append((budget, day, kind, payee, int(balance), reason, since))
    if transfers:
        # every entry summed into a transfer is marked with its EndToEndId, in one statement
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS cutoff_paid (payee_kind char(1), payee_id text, e2e text)"
                     " ON COMMIT DELETE ROWS")
        with conn.cursor().copy("COPY cutoff_paid FROM STDIN") as copy:
            for t, (kind, payee, _) in zip(transfers, paid):
                copy.write_row((kind, payee, t.end_to_end_id))
        conn.execute("UPDATE ledger_entries e SET settled_by = m.e2e FROM cutoff_paid m WHERE e.budget = %s"
                     " AND e.payee_kind = m.payee_kind AND e.payee_id = m.payee_id AND e.settled_by IS NULL"
                     " AND e.liquidation_date <= %s", (budget, day))
    total = sum(t.amount_cents for t in transfers)
    conn.execute("INSERT INTO payment_runs (budget, day, msg_id, created, execution_date, n_tx, ctrl_sum_cents)"
                 " VALUES (%s, %s, %s, %s, %s, %s, %s)", (budget, day, mid, created, execution, len(transfers), total))
    if transfers:
        with conn.cursor().copy("COPY transfers (end_to_end_id, msg_id, budget, payee_kind, payee_id, amount_cents,"
                                " execution_date, creditor_name, creditor_iban, remittance, n_items) FROM STDIN") as copy:
            for t, (kind, payee, n_items) in zip(transfers, paid):
                copy.write_row((t.end_to_end_id, mid, budget, kind, payee, t.amount_cents, execution, t.creditor_name,
                                t.creditor_iban, t.remittance, n_items))
    if carried:
        with conn.cursor().copy("COPY carried_balances (budget, day, payee_kind, payee_id, balance_cents, reason, since)"
                                " FROM STDIN") as copy:
            for row in carried:
                copy.write_row(row)
    _delays(conn, budget, mid, execution)
    path = None
    if transfers:
        data = sepa.write(payment_file(conn, mid))  # validated against the XSD by the writer
        name = f"{mid}.xml"
        sha = sepa.write_atomic(out, name, data)
        conn.execute("UPDATE payment_runs SET file_name = %s, sha256 = %s WHERE msg_id = %s", (name, sha, mid))
        path = out / name
    held = [c for c in carried if c[5] != "debt"]
    debts = [c for c in carried if c[5] == "debt"]
    return RunResult(budget, day, mid, execution, len(transfers), total, len(held), sum(c[4] for c in held),
                     len(debts), sum(c[4] for c in debts), penalties, path)


_LATE_CANDIDATES = """
SELECT e.payee_id, e.file_id, e.record, d.reception_date, d.lot, d.invoice, sum(e.amount_cents)
  FROM ledger_entries e JOIN decomptes d ON d.file_id = e.file_id AND d.record = e.record
 WHERE e.budget = %s AND e.payee_kind = 'P' AND e.kind = 'credit' AND e.settled_by IS NULL
   AND e.liquidation_date <= %s
 GROUP BY 1, 2, 3, 4, 5, 6
"""


def _penalties(conn: psycopg.Connection[Any], budget: str, day: dt.date, execution: dt.date) -> int:
    """Late-payment penalties (payments.md §5) of the tiers-payant invoices this run will pay:
    entered before the balances are summed, so each is paid in the transfer that pays its
    invoice. A PS never has debits, so every PS with unsettled credits and a valid IBAN is paid."""
    rows = conn.execute(_LATE_CANDIDATES, (budget, day)).fetchall()
    ibans = {p: i for p, (_, i) in _payees(conn, "P", sorted({r[0] for r in rows})).items()}
    line = -pay.BUDGETS.index(budget)  # one penalty per invoice and budget: line 0, -1, -2
    n = 0
    for ps, file_id, record, received, lot, invoice, amo_c2s in rows:
        if ibans.get(ps) is None:
            continue  # held: the delay keeps running, the penalty is counted when it is paid
        cents = pay.penalty_cents(pay.working_days_after(received, execution), int(amo_c2s))
        if cents:
            conn.execute("INSERT INTO ledger_entries (file_id, record, line, kind, budget, payee_kind, payee_id,"
                         " amount_cents, lot, invoice, liquidation_date) VALUES (%s, %s, %s, 'penalty', %s, 'P', %s,"
                         " %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (file_id, record, line, budget, ps, cents, lot, invoice, day))
            n += 1
    return n


def _delays(conn: psycopg.Connection[Any], budget: str, mid: str, execution: dt.date) -> None:
    """Record the reception, liquidation and payment dates and the working-day delay of each
    tiers-payant invoice the run pays (with the penalty it carried)."""
    rows = conn.execute(
        "SELECT e.file_id, e.record, d.ps, d.reception_date, d.liquidation_date,"
        " coalesce(sum(e.amount_cents) FILTER (WHERE e.kind = 'penalty'), 0)"
        " FROM ledger_entries e JOIN transfers t ON t.end_to_end_id = e.settled_by"
        " JOIN decomptes d ON d.file_id = e.file_id AND d.record = e.record"
        " WHERE t.msg_id = %s AND e.kind IN ('credit', 'penalty') AND e.payee_kind = 'P'"
        " GROUP BY 1, 2, 3, 4, 5", (mid,)).fetchall()
    with conn.cursor().copy("COPY invoice_payments (file_id, record, budget, ps, reception_date, liquidation_date,"
                            " msg_id, execution_date, delay_wd, penalty_cents) FROM STDIN") as copy:
        for file_id, record, ps, received, liquidated, penalty in rows:
            copy.write_row((file_id, record, budget, ps, received, liquidated, mid, execution,
                            pay.working_days_after(received, execution), int(penalty)))


PARIS = ZoneInfo("Europe/Paris")


def next_cutoff(now: dt.datetime, profile: pay.Profile = pay.PROFILE) -> dt.datetime:
    """The first cut-off instant strictly after `now` (aware): 20:00 Europe/Paris each day."""
    local = now.astimezone(PARIS)
    due = dt.datetime.combine(local.date(), profile.cutoff_time, tzinfo=PARIS)
    if due <= local:
        due = dt.datetime.combine(local.date() + dt.timedelta(days=1), profile.cutoff_time, tzinfo=PARIS)
    return due


class DailyCutoff:
    """The automatic cut-off of `fseflow serve`: at each cut-off instant, the day is paid
    (`pay_day`) and reconciled. A failure is logged and retried at the next poll: the cut-off is
    idempotent, so running it again never pays twice."""

    def __init__(self, database_url: str, folder: Path,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)) -> None:
        self.database_url, self.folder, self.clock = database_url, folder, clock
        self.due = next_cutoff(clock())

    def run_due(self) -> dt.date | None:
        """Run the cut-off if its instant has passed; returns the day paid, if any."""
        if self.clock() < self.due:
            return None
        from fseflow.infra import db
        from fseflow.reconcile import reconcile

        day = self.due.astimezone(PARIS).date()
        with db.connect(self.database_url, autocommit=True) as conn:
            runs, returns = pay_day(conn, day, self.folder)
            result = reconcile(conn, day, self.folder)
        log.info("cut-off of %s: %d transfers, %d cents, %d returns; reconciliation %s", day,
                 sum(r.transfers for r in runs), sum(r.amount_cents for r in runs), returns.files,
                 "holds" if result.holds else f"FAILS: {result.failure}")
        self.due = next_cutoff(self.due)
        return day

    def run(self, stop: threading.Event, poll: float = 30.0) -> None:
        while not stop.is_set():
            try:
                self.run_due()
            except Exception:  # noqa: BLE001 - the intake must go on; the next poll retries
                log.exception("cut-off of %s failed; retrying", self.due.date())
            wait = (self.due - self.clock()).total_seconds()
            stop.wait(max(0.0, min(poll, wait)))
