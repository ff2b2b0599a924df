"""The liquidation state of each `fse.invoices` partition, kept in PostgreSQL with the décomptes.

The liquidate agent writes, in the transaction that writes a step's décomptes, one change per
partition (`liquidation_changes`: the rows of the beneficiaries the step touched, with the
input offsets and their incarnation), and every `FSEFLOW_SNAPSHOT_EVERY` seconds the whole
state (`liquidation_snapshots`) in place of the changes it includes. PostgreSQL therefore always
holds exactly the state its décomptes reflect: a worker that takes a partition over, on the same
broker or a new one, reads the snapshot and the changes after it, and nothing it did not write
is ever counted (a crash before the commit leaves neither the décomptes nor their state).
"""
from __future__ import annotations

from typing import Any

import psycopg

from fseflow.stream.state import PartitionState


def read_state(conn: psycopg.Connection[Any], app_id: str, partition: int) -> tuple[PartitionState, int, bool]:
    """The partition's state as PostgreSQL holds it: (state, changes replayed, from a snapshot)."""
    state = PartitionState(partition)
    row = conn.execute("SELECT state FROM liquidation_snapshots WHERE app_id = %s AND partition = %s",
                       (app_id, partition)).fetchone()
    if row is not None:
        state.apply(bytes(row[0]))
    changes = 0
    # at most FSEFLOW_SNAPSHOT_EVERY seconds of steps follow the snapshot
    with conn.cursor() as cur:
        cur.execute("SELECT state FROM liquidation_changes WHERE app_id = %s AND partition = %s AND step > %s"
                    " ORDER BY step", (app_id, partition, state.step))
        for (blob,) in cur:
            state.apply(bytes(blob))
            changes += 1
    return state, changes, row is not None


def write_change(conn: psycopg.Connection[Any], app_id: str, state: PartitionState, change: bytes) -> None:
    """One step's change of a partition (`state.step` already advanced). Inside the step's transaction."""
    conn.execute("INSERT INTO liquidation_changes (app_id, partition, step, state) VALUES (%s, %s, %s, %s)",
                 (app_id, state.partition, state.step, change))


def write_snapshot(conn: psycopg.Connection[Any], app_id: str, state: PartitionState) -> None:
    """The whole state in place of the changes it includes. Inside the step's transaction."""
    conn.execute(
        "INSERT INTO liquidation_snapshots (app_id, partition, changelog_offset, next_offset, entries, state)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (app_id, partition) DO UPDATE SET"
        " changelog_offset = EXCLUDED.changelog_offset, next_offset = EXCLUDED.next_offset,"
        " entries = EXCLUDED.entries, state = EXCLUDED.state, taken_at = clock_timestamp()",
        (app_id, state.partition, state.step, state.next_offset, int(state.table.used[0]), state.snapshot()))
    conn.execute("DELETE FROM liquidation_changes WHERE app_id = %s AND partition = %s AND step <= %s",
                 (app_id, state.partition, state.step))


def written(conn: psycopg.Connection[Any], file_ids: list[str], records: list[int]) -> set[tuple[str, int]]:
    """Which of these invoices (file_id, record) already have their décompte in PostgreSQL."""
    if not file_ids:
        return set()
    rows = conn.execute("SELECT d.file_id, d.record FROM decomptes d JOIN unnest(%s::text[], %s::int[]) AS k(f, r)"
                        " ON d.file_id = k.f AND d.record = k.r", (file_ids, records)).fetchall()
    return {(f, int(r)) for f, r in rows}


__all__ = ["read_state", "write_change", "write_snapshot", "written"]
