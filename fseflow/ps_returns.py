"""Returns to professionals (returns.md §2): one NOEMIE-style file per PS per liquidation day.

Built after the day's cut-off, from PostgreSQL: every tiers-payant invoice (payee 35/36)
liquidated that day, paid or rejected, and payee-10 invoices when rejected or signalled; per
budget, the day's transfer to the PS (its 250 type 01 carries the SEPA EndToEndId and amount,
P7). A re-run for the same day keeps the PS's sequence number and rewrites the same bytes.

Names are not in the fund's directory tables, so names are written as spaces (the layout's
"else spaces"); the patient's NIR is not carried by the décompte, so `nii` is blank too.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from fseflow.codecs import returns as rt
from fseflow.codecs import sepa
from fseflow.processors import payments as pay
from fseflow.processors.rules import REASONS
from fseflow.processors.tables import read_table

_LABELS = {r["code"]: r["label"] for r in read_table("reject_codes")}
_CONTROL = {r.code: int(r.name[1:]) for r in REASONS if r.name[1:].isdigit()}
_FAMILY = {r["b2_code"]: r["lot_family"] for r in read_table("natures_assurance") if r["lot_family"]}

_INVOICES = """
SELECT d.file_id, d.record, d.ps, d.lot, d.invoice, d.status, d.payee_code, d.nature, d.reception_date,
       d.liquidation_date, d.billed_cents, d.base_cents, d.amo_cents + d.c2s_cents, d.pf_cents + d.franchise_cents,
       d.paid_cents, d.debt_cents, d.nir, b.key, d.birth_date, d.birth_rank, d.quality, f.creation_date,
       f.file_sequence, s.signalled
  FROM decomptes d
  CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM decompte_signals x WHERE x.file_id = d.file_id
                                     AND x.record = d.record) AS signalled) s
  LEFT JOIN LATERAL (SELECT key FROM beneficiaries WHERE nir = d.nir AND quality = 1 ORDER BY row_id LIMIT 1) b ON true
  LEFT JOIN LATERAL (SELECT creation_date, file_sequence FROM files WHERE file_id = d.file_id LIMIT 1) f ON true
 WHERE d.liquidation_date = %(day)s
   AND (d.payee_code IN (35, 36) OR d.status = 'rejected' OR s.signalled)
   AND (%(ps)s::text[] IS NULL OR d.ps = ANY(%(ps)s))
 ORDER BY d.ps, d.file_id, d.lot, d.record
"""


@dataclass
class ReturnsRun:
    day: dt.date
    files: int
    invoices: int
    transfers_cents: int
    folder: Path


def _reject(code: str, kind: str, line: int | None, field: str | None) -> rt.Reject:
    return rt.Reject(code, kind, line or 0, _CONTROL.get(code, 0), field or "", _LABELS.get(code, ""))


def build(conn: psycopg.Connection[Any], day: dt.date, ps_numbers: list[str] | None = None) -> dict[str, rt.ReturnFile]:
    """The return of each PS for `day` (after the day's cut-off), keyed by billing number."""
    invoices = conn.execute(_INVOICES, {"day": day, "ps": ps_numbers}).fetchall()
    keys = [(r[0], r[1]) for r in invoices]
    lines: dict[tuple[str, int], list[tuple[Any, ...]]] = defaultdict(list)
    issues: dict[tuple[str, int], list[rt.Reject]] = defaultdict(list)
    if keys:
        files, records = [k[0] for k in keys], [k[1] for k in keys]
        for row in conn.execute(
                "SELECT l.file_id, l.record, l.line, l.care_date, l.act, l.qty, l.coef_hundredths, l.billed_cents,"
                " l.base_cents, l.rate_pct, l.amo_cents + l.c2s_cents, l.pf_cents, l.franchise_cents, l.paid_cents,"
                " l.status, l.budget FROM decompte_lines l JOIN unnest(%s::text[], %s::int[]) k(f, r)"
                " ON l.file_id = k.f AND l.record = k.r ORDER BY 1, 2, 3", (files, records)):
            lines[(row[0], row[1])].append(row[2:])
        for table, kind, field in (("decompte_rejects", "R", "x.field"), ("decompte_signals", "S", "NULL")):
            for f, r, code, line, fld in conn.execute(
                    f"SELECT x.file_id, x.record, x.code, x.line, {field} FROM {table} x"
                    " JOIN unnest(%s::text[], %s::int[]) k(f, r) ON x.file_id = k.f AND x.record = k.r"
                    " ORDER BY 1, 2, x.ordinal", (files, records)):
                issues[(f, r)].append(_reject(code, kind, line, fld))
    delays = {(f, r, b): (w, p) for f, r, b, w, p in conn.execute(
        "SELECT file_id, record, budget, delay_wd, penalty_cents FROM invoice_payments WHERE liquidation_date = %s",
        (day,))}
    transfers = {(b, p): (e, a, i, x) for b, p, e, a, i, x in conn.execute(
        "SELECT t.budget, t.payee_id, t.end_to_end_id, t.amount_cents, t.creditor_iban, t.execution_date"
        " FROM transfers t JOIN payment_runs r USING (msg_id) WHERE r.day = %s AND t.payee_kind = 'P'"
        " AND (%s::text[] IS NULL OR t.payee_id = ANY(%s))", (day, ps_numbers, ps_numbers))}
    execution = pay.execution_date(day)

    by_ps: dict[str, dict[str, dict[tuple[str, int], list[rt.Invoice]]]] = defaultdict(lambda: defaultdict(dict))
    lot_meta: dict[tuple[str, int], tuple[dt.date, int, str]] = {}
    for row in invoices:
        (file_id, record, ps, lot, number, status, payee_code, nature, received, liquidated, billed, base, amo,
         pf_fr, paid, debt, nir, key, birth, rank, quality, created, sequence, signalled) = row
        lns = lines[(file_id, record)]
        budget = next((ln[13] for ln in lns if ln[12] == "paid"), lns[0][13] if lns else "AMO")
        rejected = status == "rejected"
        tiers = payee_code in (35, 36)
        wd, penalty = delays.get((file_id, record, budget), (0, 0))
        movements = []
        if debt:
            movements.append(rt.Movement(3, 2, "+", int(debt), "", liquidated, budget))
        if penalty:
            movements.append(rt.Movement(3, 3, "+", int(penalty), "", execution, budget))
        inv_issues = issues.get((file_id, record), [])
        inv = rt.Invoice(
            invoice_number=int(number), status="R" if rejected else ("S" if signalled else "P"),
            payee_code=int(payee_code or 0), reception_date=received, liquidation_date=liquidated,
            working_days_to_payment=wd, billed=int(billed), base=int(base), amo=int(amo), pf_franchise=int(pf_fr),
            paid=int(paid) if tiers else 0, debt=int(debt),
            insured=rt.Insured(nir + (key or "00")),
            patient=rt.Patient(birth or received, int(rank or 1), "", "", int(quality or 1)),
            nature=nature or "AS", exo_reason=0, budget=budget,
            lines=tuple(rt.Line(n, care or received, act, int(qty), int(coef), int(lb), int(lbase), int(rate),
                                0 if rejected else int(lamo), 0 if rejected else int(lpf),
                                0 if rejected else int(lfr), 0 if rejected or not tiers else int(lpaid),
                                "P" if lstatus == "paid" else "R", lbudget,
                                tuple(x for x in inv_issues if x.line_number == n))
                        for n, care, act, qty, coef, lb, lbase, rate, lamo, lpf, lfr, lpaid, lstatus, lbudget in lns),
            rejects=tuple(x for x in inv_issues if x.line_number == 0),
            movements=tuple(movements))
        lot_meta[(file_id, lot)] = (created or received, int(sequence or 0), _FAMILY.get(nature, "AS"))
        by_ps[ps][budget].setdefault((file_id, lot), []).append(inv)
    for (budget, ps) in transfers:
        by_ps[ps].setdefault(budget, {})

    out = {}
    for ps in sorted(by_ps):
        blocks = []
        for budget in pay.BUDGETS:
            if budget not in by_ps[ps]:
                continue
            t = transfers.get((budget, ps))
            lots = tuple(rt.Lot(b2_file_date=lot_meta[k][0], lot_number=int(k[1]), b2_file_sequence=lot_meta[k][1],
                                family=lot_meta[k][2], invoices=tuple(v))
                         for k, v in sorted(by_ps[ps][budget].items()))
            blocks.append(rt.BudgetBlock(
                budget, t[2] if t else None, t[3] if t else execution, lots,
                rt.Movement(1, 1, "+", int(t[1]), t[0], t[3], budget) if t else None))
        out[ps] = rt.ReturnFile(int(ps), dt.datetime.combine(day, pay.PROFILE.returns_time), 0, tuple(blocks))
    return out


def write(conn: psycopg.Connection[Any], day: dt.date, out: Path) -> ReturnsRun:
    """Write the day's returns to `out` (atomically, with the SHA-256 manifest) and record them;
    a PS keeps its sequence number when the day is written again."""
    out.mkdir(parents=True, exist_ok=True)
    files = build(conn, day)
    invoices = paid = 0
    with conn.transaction():
        known = dict(conn.execute("SELECT ps, sequence FROM ps_returns WHERE day = %s", (day,)).fetchall())
        last = dict(conn.execute("SELECT ps, max(sequence) FROM ps_returns GROUP BY ps").fetchall())
        rows, data = [], {}
        for ps, rf in files.items():
            seq = known.get(ps) or (last.get(ps) or 0) + 1
            rf = rt.ReturnFile(rf.ps_number, rf.created, seq, rf.blocks)
            name = f"NOEMIE-{ps}-{day:%Y%m%d}.txt"
            data[name] = rt.encode(rf)
            n_inv = sum(len(lot.invoices) for b in rf.blocks for lot in b.lots)
            cents = sum(b.transfer.amount for b in rf.blocks if b.transfer)
            rows.append((ps, day, seq, name, n_inv, cents))
            invoices += n_inv
            paid += cents
        shas = sepa.write_many(out, data)
        conn.cursor().executemany("INSERT INTO ps_returns (ps, day, sequence, file_name, sha256, invoices, paid_cents)"
                         " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (ps, day) DO NOTHING",
                         [(ps, d, seq, name, shas[name], n, c) for ps, d, seq, name, n, c in rows])
    return ReturnsRun(day, len(files), invoices, paid, out)
