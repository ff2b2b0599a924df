"""The intake journal: every received file, in PostgreSQL, from reception to completion.

A file is journaled (SHA-256, name, size, reception time, where its bytes are kept) before it
is acknowledged to its sender (ARL, archive, `.dup`), and followed until it is complete: its
receipt written and every invoice it sent on with its décompte, or refused with its reason, or
kept as a dead letter. Whenever the pipeline starts, or finds its broker new, every file not
complete is sent again from where its bytes are kept (stream/spool.py): a broker that loses
its records loses nothing the journal holds. `seq` is the reception's identity on the topics.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import psycopg


@dataclass(frozen=True)
class Entry:
    """One journaled reception."""

    seq: int
    file_id: str
    name: str
    size: int
    received_at: float          # epoch seconds
    reception_date: int | None  # liquidation day number; None: the file's creation date
    stored_at: str
    completed: bool = False
    outcome: str | None = None


@dataclass(frozen=True)
class New:
    """A reception to journal."""

    file_id: str
    name: str
    size: int
    received_at: float
    reception_date: int | None
    stored_at: str


_COLUMNS = "seq, file_id, name, size, extract(epoch FROM received_at), reception_date, stored_at," \
           " completed_at IS NOT NULL, outcome"


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(int(row[0]), row[1], row[2], int(row[3]), float(row[4]), row[5], row[6], bool(row[7]), row[8])


def record(conn: psycopg.Connection[Any], files: Sequence[New]) -> dict[str, tuple[Entry, bool]]:
    """Journal the receptions (one statement, committed by the caller's transaction or autocommit):
    file_id → (its entry, True when journaled now; False when the same bytes were journaled before)."""
    if not files:
        return {}
    rows = conn.execute(
        "INSERT INTO intake_journal (file_id, name, size, received_at, reception_date, stored_at)"
        " SELECT f, n, s, to_timestamp(t), d, p FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::float8[],"
        " %s::int[], %s::text[]) AS u(f, n, s, t, d, p) ON CONFLICT (file_id) DO NOTHING"
        f" RETURNING {_COLUMNS}",
        ([f.file_id for f in files], [f.name for f in files], [f.size for f in files],
         [f.received_at for f in files], [f.reception_date for f in files], [f.stored_at for f in files])).fetchall()
    out = {r[1]: (_entry(r), True) for r in rows}
    known = [f.file_id for f in files if f.file_id not in out]
    if known:
        out.update((fid, (e, False)) for fid, e in lookup(conn, known).items())
    return out


def lookup(conn: psycopg.Connection[Any], file_ids: Sequence[str]) -> dict[str, Entry]:
    return {r[1]: _entry(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM intake_journal WHERE file_id = ANY(%s)",
                                                  (list(file_ids),))}


def sent(conn: psycopg.Connection[Any], seqs: Sequence[int]) -> None:
    """The broker acknowledged these receptions."""
    if seqs:
        conn.execute("UPDATE intake_journal SET sends = sends + 1, sent_at = clock_timestamp() WHERE seq = ANY(%s)",
                     (list(seqs),))


def pending(conn: psycopg.Connection[Any]) -> list[Entry]:
    """Receptions not complete, in reception order."""
    return [_entry(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM intake_journal WHERE completed_at IS NULL"
                                            " ORDER BY seq")]


def count_pending(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute("SELECT count(*) FROM intake_journal WHERE completed_at IS NULL").fetchone()[0])


# A reception is complete once its receipt is written and every invoice it sent on has its
# décompte (décomptes are keyed by the bytes' SHA-256, whichever broker carried them), or once
# it was refused whole. The receipt of a journaled reception has src 'r<seq>'.
_SWEEP = """
UPDATE intake_journal j SET completed_at = clock_timestamp(),
       outcome = CASE WHEN f.arl_status = 'N' THEN 'refused' ELSE 'complete' END
FROM files f
WHERE j.completed_at IS NULL AND f.file_id = j.file_id AND f.src = 'r' || j.seq
  AND f.n_invoices <= (SELECT count(*) FROM decomptes d WHERE d.file_id = j.file_id)
"""


def sweep(conn: psycopg.Connection[Any]) -> int:
    """Mark the receptions that became complete; returns how many."""
    cur = conn.execute(_SWEEP)
    return cur.rowcount or 0


def dead_letter(conn: psycopg.Connection[Any], file_id: str | None, reason: str) -> None:
    """A reception whose record a stage could not process: kept as a dead letter, not sent again."""
    if file_id:
        conn.execute("UPDATE intake_journal SET completed_at = clock_timestamp(), outcome = 'dead-letter',"
                     " reason = %s WHERE file_id = %s AND completed_at IS NULL", (reason, file_id))


def read_bytes(entry: Entry, fallback: Path | None = None) -> bytes | None:
    """The bytes of a journaled reception, from where they are kept (else `fallback`), checked
    against the SHA-256; None when neither holds them."""
    for path in (Path(entry.stored_at), fallback):
        if path is None:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == entry.file_id:
            return data
    return None


__all__ = ["Entry", "New", "record", "lookup", "sent", "pending", "count_pending", "sweep", "dead_letter",
           "read_bytes"]
