"""Idempotent batch writers and readers of the claims tables, for the sink agent and the summary.

Each writer takes an open psycopg connection and a batch, and runs inside the caller's
transaction. Keys come from the file's bytes (file_id = SHA-256, the invoice's record ordinal),
so a batch replayed after a crash inserts nothing twice. A batch of décomptes is copied into
staging tables and moved by one statement: décomptes first, then the lines, rejects and signals
of the décomptes actually inserted (a duplicate's children are skipped with it). The small
tables (files, refused lots) take their batch as one JSON parameter: one round trip.
`read_decomptes` rebuilds the records exactly as `decompte.from_outcome` made them.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import orjson
import psycopg

from fseflow.codecs.decompte import CENT_FIELDS, LINE_CENT_FIELDS
from fseflow.days import iso
from fseflow.infra.exceptions import StoreError
from fseflow.stream.decode import reason_record

# the record fields, in the tables' column order (0001_claims.sql)
_INVOICE_FIELDS = ("file_id", "record", "file", "lot", "invoice", "ps", "nir", "rang", "status", "payee", "payee_code",
                   "nature", "birth_date", "birth_rank", "quality", "reception_date", "liquidation_date")
_LINE_FIELDS = ("line", "type", "act", "care_date", "qty", "coef_hundredths", "status", "reject", "billed_cents",
                *CENT_FIELDS, "rate_pct", "budget")
FILE_COLUMNS = ("file_id", "name", "size", "emitter", "file_sequence", "creation_date", "received_at", "arl_status",
                "arl_reasons", "n_lots", "n_lots_refused", "n_invoices", "decoded_at", "duplicate_of", "src")
_DECOMPTE_COLS = (*_INVOICE_FIELDS, *LINE_CENT_FIELDS, "received_at", "liquidated_at", "partition")
_LINE_COLS = ("file_id", "record", *_LINE_FIELDS)
_REJECT_COLS = ("file_id", "record", "ordinal", "code", "line", "field", "at_record", "message")
_SIGNAL_COLS = ("file_id", "record", "ordinal", "code", "line")
# per-connection staging tables, typed like their targets (times as epoch seconds)
_STAGE = {
    "decomptes": _DECOMPTE_COLS, "decompte_lines": _LINE_COLS, "decompte_rejects": _REJECT_COLS,
    "decompte_signals": _SIGNAL_COLS,
}
_EPOCH_COLS = ("received_at", "liquidated_at")
_CREATE_STAGE = ";".join(
    f"CREATE TEMP TABLE IF NOT EXISTS stage_{t} AS SELECT "
    + ", ".join(f"0::float8 AS {c}" if c in _EPOCH_COLS else c for c in cols) + f" FROM {t} WITH NO DATA"
    for t, cols in _STAGE.items())


def _children_insert(table: str, cols: tuple[str, ...]) -> str:
    return (f"s_{table} AS (DELETE FROM stage_{table} RETURNING *), i_{table} AS ("
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT s.* FROM s_{table} AS s JOIN d USING (file_id, record)"
            " ON CONFLICT DO NOTHING)")


# Staging rows are deleted by the statement that moves them (DELETE ... RETURNING), so several
# batches in one transaction each move only their own, and a rollback leaves nothing behind.
# Children are inserted only for the décomptes inserted now: a replayed décompte's are skipped.
_MOVE_STAGED = (
    "WITH s_d AS (DELETE FROM stage_decomptes RETURNING *), d AS ("
    f"INSERT INTO decomptes ({', '.join(_DECOMPTE_COLS)}) SELECT "
    + ", ".join(f"to_timestamp({c})" if c in _EPOCH_COLS else c for c in _DECOMPTE_COLS)
    + " FROM s_d ON CONFLICT DO NOTHING RETURNING file_id, record), "
    + ", ".join(_children_insert(t, cols) for t, cols in list(_STAGE.items())[1:])
    + " SELECT count(*) FROM d")
_WRITE_FILES = f"""
INSERT INTO files ({", ".join(FILE_COLUMNS)})
SELECT file_id, name, size, emitter, file_sequence, creation_date, to_timestamp(received_at), arl_status,
       coalesce(arl_reasons, '[]'), n_lots, n_lots_refused, n_invoices, to_timestamp(decoded_at), duplicate_of,
       coalesce(src, '')
FROM jsonb_to_recordset(%s::jsonb) AS r(file_id text, name text, size bigint, emitter bigint, file_sequence int,
    creation_date date, received_at float8, arl_status text, arl_reasons jsonb, n_lots int, n_lots_refused int,
    n_invoices int, decoded_at float8, duplicate_of text, src text)
ON CONFLICT DO NOTHING
"""
_WRITE_REFUSED = """
INSERT INTO lots_refused (file_id, lot, file, reasons, src)
SELECT file_id, lot, file, reasons, coalesce(src, '')
FROM jsonb_to_recordset(%s::jsonb) AS r(file_id text, lot int, file text, reasons jsonb, src text)
ON CONFLICT DO NOTHING
"""


@contextmanager
def _named_not_quoted(what: str) -> Iterator[None]:
    """PostgreSQL's DETAIL quotes the failing row (a NIR, a name): say only where it failed."""
    try:
        yield
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as e:
        d = e.diag
        where = ", ".join(f"{k} {v}" for k, v in (("table", d.table_name), ("column", d.column_name),
                                                   ("constraint", d.constraint_name)) if v)
        raise StoreError(f"{what}: refused by PostgreSQL (SQLSTATE {e.sqlstate}{'; ' + where if where else ''})") from None


def write_decomptes(conn: psycopg.Connection[Any], records: Sequence[dict[str, Any]]) -> int:
    """Write invoice records (`decompte.from_outcome`'s, plus `file_id`, `received_at` and
    `liquidated_at` in epoch seconds, and `partition`); returns the décomptes inserted.

    COPY into staging tables, then one statement moves them: a décompte already written (same
    file_id and record) is skipped with its lines, rejects and signals. Measured on 5,000
    invoices (10,762 lines): 0.35 s, against 0.43 s for the batch as one JSON parameter through
    json_to_recordset (which costs the client 5x less CPU) and 2.5 s for multi-row VALUES.
    """
    if not records:
        return 0
    conn.execute(_CREATE_STAGE)
    with _named_not_quoted("write_decomptes"):
        for table, rows in zip(_STAGE, _flatten(records)):
            if rows:
                with conn.cursor().copy(f"COPY stage_{table} ({', '.join(_STAGE[table])}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        row = conn.execute(_MOVE_STAGED).fetchone()
    return int(row[0]) if row else 0


def _flatten(records: Sequence[dict[str, Any]]) -> tuple[list[tuple[Any, ...]], ...]:
    """Rows of decomptes, lines, rejects and signals, in the staging tables' column order."""
    decomptes: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    rejects: list[tuple[Any, ...]] = []
    signals: list[tuple[Any, ...]] = []
    for r in records:
        key = (r["file_id"], r["record"])
        totals = r["totals"]
        decomptes.append((*(r[f] for f in _INVOICE_FIELDS), *(totals[f] for f in LINE_CENT_FIELDS),
                          r["received_at"], r["liquidated_at"], r["partition"]))
        lines.extend((*key, *(line[f] for f in _LINE_FIELDS)) for line in r["lines"])
        rejects.extend((*key, n, x["code"], x["line"], x["field"], x.get("record"), x.get("message"))
                       for n, x in enumerate(r["rejects"]))
        signals.extend((*key, n, x["code"], x["line"]) for n, x in enumerate(r["signals"]))
    return decomptes, lines, rejects, signals


def write_files(conn: psycopg.Connection[Any], rows: Sequence[dict[str, Any]]) -> int:
    """Write received files (keys FILE_COLUMNS, `duplicate_of` and `src` optional; see `file_row`);
    returns the rows inserted. `creation_date` may be ISO or a day number, unreadable header
    numbers -1: both become NULL."""
    if not rows:
        return 0
    with _named_not_quoted("write_files"):
        return conn.execute(_WRITE_FILES, (orjson.dumps([_file(r) for r in rows]).decode(),)).rowcount


def _file(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("creation_date"), int):
        out["creation_date"] = iso(out["creation_date"])  # NO_DATE -> None
    for k in ("emitter", "file_sequence"):
        if out.get(k) is not None and out[k] < 0:
            out[k] = None
    return out


def seen_files(conn: psycopg.Connection[Any], file_ids: Sequence[str],
               emitters: Sequence[int] = ()) -> dict[str, str]:
    """C09 identities of the files already accepted with these SHA-256 or from these emitters:
    `sha:<file_id>` and `seq:<emitter>:<sequence>` → `<name>|<src>` (the map stream/decode.py's
    `decode_step` keeps; `src` tells a replay of the same record from a second sending)."""
    seen: dict[str, str] = {}
    for file_id, name, emitter, sequence, src in conn.execute(
            "SELECT file_id, name, emitter, file_sequence, src FROM files"
            " WHERE (file_id = ANY(%s) OR emitter = ANY(%s)) AND arl_status <> 'N' ORDER BY received_at",
            (list(file_ids), list(emitters))):
        marker = f"{name}|{src}"
        seen.setdefault(f"sha:{file_id}", marker)
        seen.setdefault(f"seq:{emitter}:{sequence}", marker)
    return seen


def file_row(decoded: Any, *, received_at: float, decoded_at: float | None, n_invoices: int) -> dict[str, Any]:
    """The `files` row of a decoded B2 file (codecs.b2.Decoded)."""
    f = decoded.file
    return {
        "file_id": f.sha256, "name": f.name, "size": f.size,
        "emitter": f.emitter_ps_number if f.emitter_ps_number >= 0 else None,
        "file_sequence": f.file_sequence if f.file_sequence >= 0 else None,
        "creation_date": iso(f.creation_date), "received_at": received_at, "arl_status": decoded.status,
        "arl_reasons": [reason_record(r) for r in decoded.reasons], "n_lots": len(decoded.lots),
        "n_lots_refused": sum(lot.status == "R" for lot in decoded.lots), "n_invoices": n_invoices,
        "decoded_at": decoded_at,
    }


def _refused_lot(record: dict[str, Any]) -> int:
    """The lot's number; for a whole file or an unreadable lot number, minus the record of its first
    reason: stable whatever the batch, and distinct for two such lots of one file."""
    if record["lot"] is not None:
        return int(record["lot"])
    first = min((r.get("record") or 0 for r in record["rejects"]), default=0)
    return -max(1, first)


def write_refused(conn: psycopg.Connection[Any], records: Sequence[dict[str, Any]]) -> int:
    """Write lots and files refused by the ARL (`decompte.refused`'s records plus `file_id`)."""
    if not records:
        return 0
    rows = [{"file_id": r["file_id"], "lot": _refused_lot(r), "file": r["file"], "reasons": r["rejects"],
             "src": r.get("src", "")}
            for r in records]
    with _named_not_quoted("write_refused"):
        return conn.execute(_WRITE_REFUSED, (orjson.dumps(rows).decode(),)).rowcount


def _day(d: dt.date | None) -> str | None:
    return None if d is None else d.isoformat()


#: what a décompte of the stream carries beside the offline engine's record: where it came from
#: and when and where it was liquidated
STREAM_FIELDS = ("file_id", "received_at", "liquidated_at", "partition")


def as_offline(record: dict[str, Any]) -> dict[str, Any]:
    """A stream décompte as `fseflow liquidate` writes it (its stream-only fields left out)."""
    return {k: v for k, v in record.items() if k not in STREAM_FIELDS}


def read_decomptes(conn: psycopg.Connection[Any], file_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The invoice records as `decompte.from_outcome` made them, by file_id then record."""
    where, args = ("WHERE file_id = ANY(%s)", (list(file_ids),)) if file_ids is not None else ("", ())
    order = "ORDER BY file_id, record"
    children: dict[str, dict[tuple[str, int], list[dict[str, Any]]]] = {}
    line_cols = ", ".join(_LINE_FIELDS)
    for name, query in (
            ("lines", f"SELECT file_id, record, {line_cols} FROM decompte_lines {where} {order}, line"),
            ("rejects", f"SELECT file_id, record, code, line, field, at_record, message FROM decompte_rejects"
                        f" {where} {order}, ordinal"),
            ("signals", f"SELECT file_id, record, code, line FROM decompte_signals {where} {order}, ordinal")):
        by_key: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for row in conn.execute(query, args):
            by_key[(row[0], row[1])].append(_child(name, row[2:]))
        children[name] = by_key
    out = []
    inv_cols = ", ".join(_INVOICE_FIELDS)
    for row in conn.execute(f"SELECT {inv_cols}, {', '.join(LINE_CENT_FIELDS)} FROM decomptes {where} {order}", args):
        rec = dict(zip(_INVOICE_FIELDS, row))
        key = (rec.pop("file_id"), rec["record"])
        for f in ("reception_date", "liquidation_date", "birth_date"):
            rec[f] = _day(rec[f])
        rec["rejects"] = children["rejects"].get(key, [])
        rec["signals"] = children["signals"].get(key, [])
        rec["lines"] = children["lines"].get(key, [])
        rec["totals"] = dict(zip(LINE_CENT_FIELDS, row[len(_INVOICE_FIELDS):]))
        out.append(rec)
    return out


def _child(kind: str, values: tuple[Any, ...]) -> dict[str, Any]:
    if kind == "lines":
        line = dict(zip(_LINE_FIELDS, values))
        line["care_date"] = _day(line["care_date"])
        return line
    if kind == "signals":
        return {"code": values[0], "line": values[1]}
    code, line, field, at_record, message = values
    reject = {"code": code, "line": line, "field": field}
    if at_record is not None:  # ARL reasons only: invoice rejects carry code, line and field
        reject["record"] = at_record
    if message is not None:
        reject["message"] = message
    return reject


def read_refused(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """The refused lots and files as `decompte.refused` made them, by file_id then lot."""
    return [{"file": file, "lot": lot if lot >= 0 else None, "status": "rejected", "rejects": reasons}
            for file, lot, reasons in conn.execute("SELECT file, lot, reasons FROM lots_refused ORDER BY file_id, lot")]


def latency_percentiles(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """p50/p95/p99 in seconds from reception to liquidation and to the database write, and n."""
    row = conn.execute("""
        SELECT count(*),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM liquidated_at - received_at)),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM written_at - received_at))
        FROM decomptes WHERE received_at IS NOT NULL""").fetchone()
    n, liq, written = row if row else (0, None, None)

    def named(values: list[float] | None) -> dict[str, float | None]:
        return dict(zip(("p50", "p95", "p99"), values or (None, None, None)))

    return {"n": n, "liquidation": named(liq), "written": named(written)}


def counts(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """What the database holds, for the summary: as offline.Summary counts it."""
    files, files_refused = conn.execute("SELECT count(*), count(*) FILTER (WHERE arl_status = 'N') FROM files").fetchone() or (0, 0)
    paid, rejected, debt = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'paid'), count(*) FILTER (WHERE status = 'rejected'),"
        " coalesce(sum(debt_cents), 0) FROM decomptes").fetchone() or (0, 0, 0)

    def grouped(query: str) -> dict[str, int]:
        return {k: int(v) for k, v in conn.execute(query)}

    return {
        "files": files, "files_refused": files_refused,
        "lots_refused": conn.execute("SELECT count(*) FROM lots_refused").fetchone()[0],  # type: ignore[index]
        "decomptes_paid": paid, "decomptes_rejected": rejected,
        "lines": conn.execute("SELECT count(*) FROM decompte_lines").fetchone()[0],  # type: ignore[index]
        "rejects_by_code": grouped("SELECT code, count(*) FROM decompte_rejects GROUP BY code ORDER BY code"),
        "signals_by_code": grouped("SELECT code, count(*) FROM decompte_signals GROUP BY code ORDER BY code"),
        "paid_cents_by_budget": grouped("SELECT budget, sum(paid_cents) FROM decompte_lines WHERE paid_cents > 0"
                                        " GROUP BY budget ORDER BY budget"),
        "paid_cents_by_payee": grouped("SELECT coalesce(d.payee, '?'), sum(l.paid_cents) FROM decompte_lines l"
                                       " JOIN decomptes d USING (file_id, record) WHERE l.paid_cents > 0"
                                       " GROUP BY 1 ORDER BY 1"),
        "debt_cents": int(debt),
    }


__all__ = ["STREAM_FIELDS", "as_offline", "write_files", "write_refused", "write_decomptes", "read_decomptes", "read_refused", "file_row", "seen_files",
           "latency_percentiles", "counts", "FILE_COLUMNS"]
