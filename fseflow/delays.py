"""Tiers-payant payment delays (`fseflow report delays`): payments.md §5.

Reads `invoice_payments`, which each cut-off fills with the reception, liquidation and
execution dates of the invoices it pays and the delay in French working days.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from fseflow.processors.payments import PROFILE


@dataclass
class DelayReport:
    start: dt.date
    end: dt.date
    invoices: int
    mean_wd: float | None           # working days, reporting only (never an amount)
    within_target: int
    late_8_9: int
    late_10: int
    penalty_cents: int
    pending: int                    # tiers-payant invoices liquidated in the period and not paid yet
    target_wd: int = PROFILE.deadline_working_days

    @property
    def share_within(self) -> float | None:
        return None if not self.invoices else self.within_target / self.invoices


def delay_report(conn: psycopg.Connection[Any], start: dt.date, end: dt.date) -> DelayReport:
    """Invoices received between `start` and `end` (inclusive), one row per invoice and budget."""
    n, mean, within, late89, late10, penalty = conn.execute(
        "SELECT count(*), avg(delay_wd)::float8, count(*) FILTER (WHERE delay_wd <= %(t)s),"
        " count(*) FILTER (WHERE delay_wd BETWEEN %(f)s AND %(r)s - 1), count(*) FILTER (WHERE delay_wd >= %(r)s),"
        " coalesce(sum(penalty_cents), 0) FROM invoice_payments WHERE reception_date BETWEEN %(s)s AND %(e)s",
        {"s": start, "e": end, "t": PROFILE.deadline_working_days, "f": PROFILE.flat_penalty_from,
         "r": PROFILE.rate_penalty_from}).fetchone()
    pending = conn.execute(
        "SELECT count(*) FROM decomptes d WHERE d.status = 'paid' AND d.payee_code IN (35, 36) AND d.paid_cents > 0"
        " AND d.reception_date BETWEEN %s AND %s AND NOT EXISTS (SELECT 1 FROM invoice_payments p"
        " WHERE p.file_id = d.file_id AND p.record = d.record)", (start, end)).fetchone()[0]
    return DelayReport(start, end, int(n), mean, int(within), int(late89), int(late10), int(penalty), int(pending))
