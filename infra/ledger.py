"""The payment ledger in PostgreSQL: writing entries idempotently, reading balances.

Entries are keyed by (file_id, record, line, kind): the ledger agent may write a batch twice
after a crash, and the second write is a no-op. An insured payee is stored as the opener's
`beneficiaries.row_id` (the fund's internal id), resolved here by a join, so no NIR reaches
the ledger, the SEPA files or the EndToEndIds.
"""
from __future__ import annotations

from typing import Any, Sequence

import psycopg

from fseflow.processors.payments import Entry

_STAGE = ("file_id", "record", "line", "kind", "budget", "payee_kind", "payee_ref", "amount_cents", "lot",
          "invoice", "liquidation_date")

_CREATE_STAGE = ("CREATE TEMP TABLE IF NOT EXISTS stage_ledger (file_id text, record integer, line smallint,"
                 " kind text, budget text, payee_kind char(1), payee_ref text, amount_cents bigint, lot integer,"
                 " invoice text, liquidation_date date) ON COMMIT DELETE ROWS")

# the opener of rights is the beneficiary of quality 1 (the insured) on the invoice's NIR
_MOVE = """
WITH moved AS (
    INSERT INTO ledger_entries (file_id, record, line, kind, budget, payee_kind, payee_id, amount_cents, lot,
                                invoice, liquidation_date)
    SELECT s.file_id, s.record, s.line, s.kind, s.budget, s.payee_kind,
           CASE WHEN s.payee_kind = 'P' THEN s.payee_ref ELSE b.row_id::text END,
           s.amount_cents, s.lot, s.invoice, s.liquidation_date
      FROM stage_ledger s
      LEFT JOIN LATERAL (SELECT row_id FROM beneficiaries
                          WHERE nir = s.payee_ref AND quality = 1 ORDER BY row_id LIMIT 1) b
             ON s.payee_kind = 'A'
    ON CONFLICT DO NOTHING
    RETURNING 1)
SELECT count(*) FROM moved
"""


def signed_sum(alias: str = "") -> str:
    """SQL: Σ of entries' effects on their payees' balances (debits lower it, every other kind
    raises it); `alias` qualifies the columns (e.g. "e.")."""
    return f"sum(CASE WHEN {alias}kind = 'debit' THEN -{alias}amount_cents ELSE {alias}amount_cents END)"


class LedgerError(Exception):
    """An entry cannot be written (e.g. an insured payee missing from the directory)."""


def write_entries(conn: psycopg.Connection[Any], entries: Sequence[Entry]) -> int:
    """Write entries (COPY into a staging table, then one INSERT … ON CONFLICT DO NOTHING);
    returns the entries inserted. Call inside a transaction."""
    if not entries:
        return 0
    conn.execute(_CREATE_STAGE)
    with conn.cursor().copy(f"COPY stage_ledger ({', '.join(_STAGE)}) FROM STDIN") as copy:
        for e in entries:
            copy.write_row(e)
    missing = conn.execute(
        "SELECT s.file_id, s.record, s.line FROM stage_ledger s WHERE s.payee_kind = 'A' AND NOT EXISTS"
        " (SELECT 1 FROM beneficiaries b WHERE b.nir = s.payee_ref AND b.quality = 1) LIMIT 1").fetchone()
    if missing is not None:
        # the controls reject an invoice whose beneficiary is unknown, so this is a directory gap
        raise LedgerError(f"décompte {missing[0][:12]}… record {missing[1]} line {missing[2]}: the insured"
                          " (opener of rights) is not in the beneficiary directory")
    row = conn.execute(_MOVE).fetchone()
    return int(row[0]) if row else 0


def missing_entries(conn: psycopg.Connection[Any]) -> int:
    """Ledger entries the paid décomptes call for and the ledger does not hold yet (0 once the
    ledger agent has caught up with the sink)."""
    row = conn.execute(
        "SELECT (SELECT count(*) FILTER (WHERE l.paid_cents > 0) + count(*) FILTER (WHERE l.debt_cents > 0)"
        " FROM decompte_lines l JOIN decomptes d USING (file_id, record) WHERE d.status = 'paid')"
        " - (SELECT count(*) FROM ledger_entries WHERE kind IN ('credit', 'debit'))").fetchone()
    return int(row[0])


__all__ = ["write_entries", "signed_sum", "missing_entries", "LedgerError"]
