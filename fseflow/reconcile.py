"""Reconciliation of a cut-off day (`fseflow reconcile --date D`): payments.md §6, to the cent.

Each check returns the first discrepancy it finds, named by its ledger entry, transfer, payee
or file (pseudonymous ids only), or None. `reconcile` runs them in order and stops at the first
failure, so the message points at one thing to look at.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psycopg

from fseflow.codecs import sepa
from fseflow.cutoff import carried_totals
from fseflow.infra.ledger import signed_sum
from fseflow.processors import payments as pay

Check = Callable[[psycopg.Connection[Any], str, dt.date, Path], "str | None"]


@dataclass
class Reconciliation:
    day: dt.date
    budgets: dict[str, dict[str, int]] = field(default_factory=dict)   # budget → figures in cents
    failure: str | None = None

    @property
    def holds(self) -> bool:
        return self.failure is None


def _entry(file_id: str, record: int, line: int, kind: str) -> str:
    return f"ledger entry (file {file_id[:12]}…, record {record}, line {line}, {kind})"


# P8 and P2 (origin): each entry of the day is exactly the amount of its décompte line
_EXPECTED = """
WITH want AS (
    SELECT l.file_id, l.record, l.line, 'credit' AS kind, l.budget, l.paid_cents AS amount
      FROM decompte_lines l JOIN decomptes d USING (file_id, record)
     WHERE d.status = 'paid' AND d.liquidation_date = %(day)s AND l.budget = %(budget)s AND l.paid_cents > 0
    UNION ALL
    SELECT l.file_id, l.record, l.line, 'debit', l.budget, l.debt_cents
      FROM decompte_lines l JOIN decomptes d USING (file_id, record)
     WHERE d.status = 'paid' AND d.liquidation_date = %(day)s AND l.budget = %(budget)s AND l.debt_cents > 0),
have AS (
    SELECT file_id, record, line, kind, budget, amount_cents AS amount FROM ledger_entries
     WHERE liquidation_date = %(day)s AND budget = %(budget)s AND kind IN ('credit', 'debit'))
SELECT coalesce(w.file_id, h.file_id), coalesce(w.record, h.record), coalesce(w.line, h.line),
       coalesce(w.kind, h.kind), w.amount, h.amount
  FROM want w FULL JOIN have h USING (file_id, record, line, kind)
 WHERE w.amount IS DISTINCT FROM h.amount
 ORDER BY 1, 2, 3, 4 LIMIT 1
"""


def check_origin(conn: psycopg.Connection[Any], budget: str, day: dt.date, out: Path) -> str | None:
    """P8: Σ paid_cents of the day's lines = Σ credits, Σ debts = Σ debits, entry by entry."""
    row = conn.execute(_EXPECTED, {"day": day, "budget": budget}).fetchone()
    if row is None:
        return None
    file_id, record, line, kind, want, have = row
    if have is None:
        return f"P8: the décompte line (file {file_id[:12]}…, record {record}, line {line}) has no {kind} entry"
    if want is None:
        return f"P2: {_entry(file_id, record, line, kind)} comes from no paid décompte line of the day"
    return f"P8: {_entry(file_id, record, line, kind)} is {have} cents, its décompte line says {want}"


def check_transfers(conn: psycopg.Connection[Any], budget: str, day: dt.date, out: Path) -> str | None:
    """P2 and P4: each transfer of the run = Σ of the entries it settled, all of its budget and
    payee; no debit ever reaches a PS."""
    row = conn.execute(
        f"SELECT t.end_to_end_id, t.amount_cents, coalesce({signed_sum('e.')}, 0), bool_or(e.budget <> t.budget"
        " OR e.payee_kind <> t.payee_kind OR e.payee_id <> t.payee_id)"
        " FROM transfers t JOIN payment_runs r USING (msg_id) LEFT JOIN ledger_entries e ON e.settled_by = t.end_to_end_id"
        " WHERE r.budget = %s AND r.day = %s GROUP BY 1, 2"
        f" HAVING t.amount_cents <> coalesce({signed_sum('e.')}, 0)"
        " OR bool_or(e.budget <> t.budget OR e.payee_kind <> t.payee_kind OR e.payee_id <> t.payee_id)"
        " ORDER BY 1 LIMIT 1", (budget, day)).fetchone()
    if row is not None:
        e2e, amount, settled, foreign = row
        if foreign:
            return f"P4: transfer {e2e} settles an entry of another budget or payee"
        return f"P2: transfer {e2e} is {amount} cents, the entries it settles sum to {settled}"
    row = conn.execute("SELECT file_id, record, line, kind FROM ledger_entries WHERE payee_kind = 'P' AND kind = 'debit'"
                       " AND budget = %s LIMIT 1", (budget,)).fetchone()
    if row is not None:
        return f"P4: {_entry(*row)} debits a PS"
    row = conn.execute(
        "SELECT e.file_id, e.record, e.line, e.kind, e.settled_by FROM ledger_entries e"
        " WHERE e.budget = %s AND e.settled_by IS NOT NULL AND e.kind <> 'write_off' AND e.settled_by NOT LIKE 'WO%%'"
        " AND NOT EXISTS (SELECT 1 FROM transfers t WHERE t.end_to_end_id = e.settled_by) LIMIT 1", (budget,)).fetchone()
    if row is not None:
        return f"P2: {_entry(*row[:4])} is marked paid by {row[4]}, which no file contains"
    return None


def check_carried(conn: psycopg.Connection[Any], budget: str, day: dt.date, out: Path) -> str | None:
    """P1 and P3: as of the cut-off, each payee's unsettled entries are its carried balance,
    which is a debt or a held payment with its reason; nothing positive is left unexplained."""
    row = conn.execute(
        """WITH as_of AS (
               SELECT e.payee_kind, e.payee_id,
                      {signed} AS balance
                 FROM ledger_entries e
                 LEFT JOIN transfers t ON t.end_to_end_id = e.settled_by
                 LEFT JOIN payment_runs r ON r.msg_id = t.msg_id
                WHERE e.budget = %(budget)s AND e.liquidation_date <= %(day)s AND e.kind <> 'write_off'
                  AND (e.settled_by IS NULL OR (r.day IS NOT NULL AND r.day > %(day)s)
                       OR (e.settled_by LIKE 'WO%%' AND substr(e.settled_by, length(%(budget)s) + 3, 8) > to_char(%(day)s::date, 'YYYYMMDD')))
                GROUP BY 1, 2 HAVING {signed} <> 0),
           carried AS (SELECT payee_kind, payee_id, balance_cents, reason FROM carried_balances
                        WHERE budget = %(budget)s AND day = %(day)s)
           SELECT coalesce(a.payee_kind, c.payee_kind), coalesce(a.payee_id, c.payee_id), a.balance, c.balance_cents, c.reason
             FROM as_of a FULL JOIN carried c USING (payee_kind, payee_id)
            WHERE a.balance IS DISTINCT FROM c.balance_cents
               OR (c.balance_cents > 0 AND c.reason = 'debt') OR (c.balance_cents < 0 AND c.reason <> 'debt')
            ORDER BY 1, 2 LIMIT 1""".replace("{signed}", signed_sum("e.")), {"budget": budget, "day": day}).fetchone()
    if row is None:
        return None
    kind, payee, balance, carried, reason = row
    who = f"payee {kind}{payee}"
    if carried is None:
        return f"P3: {who} has {balance} cents unsettled after the cut-off, neither paid nor carried"
    if balance is None or balance != carried:
        return f"P1: {who} is carried at {carried} cents, its unsettled entries sum to {balance or 0}"
    return f"P3: {who} is carried at {carried} cents with reason {reason!r}"


def check_files(conn: psycopg.Connection[Any], budget: str, day: dt.date, out: Path) -> str | None:
    """P5 and P6: the file on disk is the one recorded (SHA-256), its totals hold, and its
    transactions are exactly the run's transfers; ids unique across every file."""
    run = conn.execute("SELECT msg_id, file_name, sha256, n_tx, ctrl_sum_cents FROM payment_runs"
                       " WHERE budget = %s AND day = %s", (budget, day)).fetchone()
    if run is None:
        return f"no cut-off of {day} for budget {budget}: run `fseflow pay --date {day}` first"
    msg_id, name, sha, n_tx, total = run
    if name is None:
        return None if n_tx == 0 else f"P5: run {msg_id} has {n_tx} transfers and no file"
    path = out / "sepa" / name
    if not path.exists():
        return f"P5: file {name} of run {msg_id} is missing from {path.parent}"
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        return f"P5: file {name} is not the file sent (SHA-256 differs)"
    pf = sepa.read(data)
    if pf.msg_id != msg_id:
        return f"P6: file {name} carries MsgId {pf.msg_id}, the run says {msg_id}"
    amounts = {t.end_to_end_id: t.amount_cents for t in pf.transfers}
    if len(amounts) != len(pf.transfers):
        return f"P6: file {name} repeats an EndToEndId"
    if len(pf.transfers) != n_tx or sum(amounts.values()) != total:
        return f"P5: file {name} has {len(pf.transfers)} transactions for {sum(amounts.values())} cents," \
               f" the run says {n_tx} for {total}"
    stored = dict(conn.execute("SELECT end_to_end_id, amount_cents FROM transfers WHERE msg_id = %s", (msg_id,)).fetchall())
    for e2e in sorted(set(stored) | set(amounts)):
        if stored.get(e2e) != amounts.get(e2e):
            return f"P5: transaction {e2e} of {name}: {amounts.get(e2e)} cents in the file, {stored.get(e2e)} in the ledger"
    return None


def _announced(out: Path, day: dt.date, conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Every 250 type 01 of the day's returns: {budget: [(return file, EndToEndId, cents)]}, or
    {"missing": name}. Read once per day (a day is thousands of returns), shared by the budgets."""
    from fseflow.codecs import returns as rt

    found: dict[str, Any] = {}
    for ps, name in conn.execute("SELECT ps, file_name FROM ps_returns WHERE day = %s ORDER BY ps", (day,)).fetchall():
        path = out / "returns" / name
        if not path.exists():
            return {"missing": f"P7: the return {name} of PS {ps} is missing"}
        for budget, e2e, cents in rt.transfers(path.read_bytes()):
            found.setdefault(budget, []).append((name, e2e, cents))
    return found


def check_returns(conn: psycopg.Connection[Any], budget: str, day: dt.date, out: Path,
                  announced: dict[str, Any] | None = None) -> str | None:
    """P7: each 250 type 01 of the day's PS returns is one transfer to that PS (EndToEndId and
    amount), and every transfer to a PS is announced once."""
    announced = _announced(out, day, conn) if announced is None else announced
    if "missing" in announced:
        return str(announced["missing"])
    want = dict(conn.execute(
        "SELECT t.end_to_end_id, t.amount_cents FROM transfers t JOIN payment_runs r USING (msg_id)"
        " WHERE r.budget = %s AND r.day = %s AND t.payee_kind = 'P'", (budget, day)).fetchall())
    seen: set[str] = set()
    for name, e2e, cents in announced.get(budget, []):
        if e2e in seen or want.get(e2e) != cents:
            return f"P7: the return {name} announces {e2e} for {cents} cents, the transfers say {want.get(e2e)}"
        seen.add(e2e)
    missing = sorted(set(want) - seen)
    if missing:
        return f"P7: transfer {missing[0]} to a PS is announced in no return of the day"
    return None


CHECKS: tuple[Check, ...] = (check_origin, check_transfers, check_carried, check_files, check_returns)


def reconcile(conn: psycopg.Connection[Any], day: dt.date, out: Path,
              budgets: tuple[str, ...] = pay.BUDGETS) -> Reconciliation:
    """Run every check for every budget of `day`; stops at the first failure. `out` is the
    payments folder (`sepa/` and `returns/` inside, as `fseflow pay` writes them)."""
    result = Reconciliation(day)
    # the returns are read once for every budget
    checks = (*CHECKS[:-1], functools.partial(check_returns, announced=_announced(out, day, conn)))
    for budget in budgets:
        for check in checks:
            failure = check(conn, budget, day, out)
            if failure is not None:
                result.failure = f"{budget} {day}: {failure}"
                return result
        result.budgets[budget] = _figures(conn, budget, day)
    return result


def _figures(conn: psycopg.Connection[Any], budget: str, day: dt.date) -> dict[str, int]:
    credits, debits, penalties = conn.execute(
        "SELECT coalesce(sum(amount_cents) FILTER (WHERE kind = 'credit'), 0),"
        " coalesce(sum(amount_cents) FILTER (WHERE kind = 'debit'), 0),"
        " coalesce(sum(amount_cents) FILTER (WHERE kind = 'penalty'), 0)"
        " FROM ledger_entries WHERE budget = %s AND liquidation_date = %s", (budget, day)).fetchone()
    n_tx, paid = conn.execute("SELECT n_tx, ctrl_sum_cents FROM payment_runs WHERE budget = %s AND day = %s",
                              (budget, day)).fetchone()
    _, held, _, debts = carried_totals(conn, budget, day)
    return {"credits": int(credits), "debits": int(debits), "penalties": int(penalties), "transfers": int(n_tx),
            "paid": int(paid), "held": int(held), "debts": int(debts)}
