"""The liquidation state in PostgreSQL (infra/state_store.py): snapshot plus the changes after it
rebuild the state, and offsets of another (or no known) broker incarnation are never applied."""
from __future__ import annotations

import numpy as np

from fseflow.codecs import batch
from fseflow.infra import db, state_store
from fseflow.processors import _hashtable as ht
from fseflow.stream.state import PartitionState


def _state(counters: dict[tuple[int, int, int], int], next_offset: int, incarnation: str) -> PartitionState:
    return PartitionState(1, table=ht.from_dict(counters), next_offset=next_offset, watermarks={0: next_offset - 1},
                          incarnation=incarnation)


def test_snapshot_then_changes_rebuild_the_state(fresh_db: str) -> None:
    with db.connect(fresh_db, autocommit=True) as conn:
        state = _state({(1, 1, 0): 10, (2, 1, 0): 20}, 5, "t1")
        state.step = 1
        state_store.write_snapshot(conn, "app", state)
        # a later step touched beneficiary 2 only: its change holds its rows
        state.table = ht.from_dict({(1, 1, 0): 10, (2, 1, 0): 25})
        state.next_offset, state.step = 9, 2
        state_store.write_change(conn, "app", state, state.changelog(np.array([2], np.int64)))
        got, changes, from_snapshot = state_store.read_state(conn, "app", 1)
        assert (changes, from_snapshot) == (1, True)
        assert ht.to_dict(got.table) == {(1, 1, 0): 10, (2, 1, 0): 25}
        assert (got.next_offset, got.step, got.incarnation) == (9, 2, "t1")
        # a snapshot replaces the changes it includes
        state.step = 3
        state_store.write_snapshot(conn, "app", state)
        assert conn.execute("SELECT count(*) FROM liquidation_changes").fetchone() == (0,)


def test_a_snapshot_of_before_incarnations_keeps_its_counters_not_its_offsets(fresh_db: str) -> None:
    """A wave-1 snapshot (no incarnation, offsets of a broker long gone) restored on new topics:
    its offsets must not make the worker skip the new topics' first records."""
    rows = _state({(7, 1, 0): 3}, 2, "").table.slots
    old_meta = {"partition": 1, "next_offset": 2, "watermarks": {"0": 1}}
    blob = batch.pack(old_meta, {"rows": rows[rows[:, ht.A] != ht.EMPTY]})
    with db.connect(fresh_db, autocommit=True) as conn:
        conn.execute("INSERT INTO liquidation_snapshots (app_id, partition, changelog_offset, next_offset, entries, state)"
                     " VALUES ('app', 1, 40, 2, 1, %s)", (blob,))
        state, _, _ = state_store.read_state(conn, "app", 1)
    assert state.adopt("new-topics") is True
    assert (state.next_offset, state.watermarks) == (0, {})
    assert ht.to_dict(state.table) == {(7, 1, 0): 3}
