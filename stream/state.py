"""Liquidation state of one `fse.invoices` partition, and its change records.

The per-beneficiary counters (processors/state.py) of a partition are one numpy hash table.
Each liquidated step writes one change (the table rows of every beneficiary the step touched,
the next input offset the state reflects, and per upstream partition the last upstream offset
it reflects) to PostgreSQL, in the transaction of the step's décomptes (infra/state_store.py).
Replaying a partition's changes in order after its latest snapshot rebuilds the table exactly
(rows are whole current values, never increments), and the two offsets make processing
effectively once:

- input records below `next_offset` are already in the state: a restarted worker skips them;
- invoices re-emitted by a restarted decode step carry their upstream (partition, offset); rows
  at or below `watermarks[partition]` are already liquidated and are dropped.

Both offsets belong to one incarnation of the topics (stream/topics.py `incarnation`): the
state keeps the incarnation it was built on, and `adopt` forgets offsets of another one (the
beneficiaries' counters stay: they are PostgreSQL's, written with the décomptes they reflect).
`step` numbers the changes of the partition.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fseflow.codecs import batch
from fseflow.processors import _hashtable as ht
from fseflow.processors.state import KIND_SHIFT

_BENE_MASK = np.int64((1 << KIND_SHIFT) - 1)


@dataclass
class PartitionState:
    partition: int
    table: ht.Table = field(default_factory=lambda: ht.new_table(1 << 12))
    next_offset: int = 0
    watermarks: dict[int, int] = field(default_factory=dict)
    incarnation: str = ""
    step: int = 0

    def adopt(self, incarnation: str) -> bool:
        """Run on `incarnation` from now on; True when it held offsets of another one (dropped).

        A state of no known incarnation (a snapshot written before offsets carried one) is of
        another one too: its offsets are dropped, never applied to these topics."""
        if self.incarnation == incarnation:
            return False
        dropped = self.next_offset > 0 or bool(self.watermarks)
        self.incarnation, self.next_offset, self.watermarks = incarnation, 0, {}
        return dropped

    def fresh_rows(self, src_partition: np.ndarray, src_offset: np.ndarray) -> np.ndarray:
        """Mask of invoice rows not yet liquidated (above their upstream watermark)."""
        keep = np.ones(src_partition.shape[0], dtype=np.bool_)
        for p, w in self.watermarks.items():
            keep &= ~((src_partition == p) & (src_offset <= w))
        return keep

    def advance(self, next_offset: int, src_partition: np.ndarray, src_offset: np.ndarray) -> None:
        self.next_offset = next_offset
        for p in np.unique(src_partition):
            top = int(src_offset[src_partition == p].max())
            self.watermarks[int(p)] = max(self.watermarks.get(int(p), -1), top)

    def delta(self, benes: np.ndarray) -> np.ndarray:
        """The table rows of the given beneficiary rows (their whole current state)."""
        slots = self.table.slots
        live = slots[slots[:, ht.A] != ht.EMPTY]
        if not benes.size or not live.shape[0]:
            return np.zeros((0, 4), np.int64)
        wanted = np.unique(benes[benes >= 0])
        return live[np.isin(live[:, ht.A] & _BENE_MASK, wanted)]

    def _meta(self) -> dict[str, object]:
        return {"partition": self.partition, "next_offset": self.next_offset,
                "watermarks": {str(k): v for k, v in self.watermarks.items()},
                "incarnation": self.incarnation, "step": self.step}

    def changelog(self, benes: np.ndarray) -> bytes:
        return batch.pack(self._meta(), {"rows": self.delta(benes)})

    def snapshot(self) -> bytes:
        """The whole state as one changelog-format record (all live rows): `apply` rebuilds it."""
        slots = self.table.slots
        return batch.pack(self._meta(), {"rows": slots[slots[:, ht.A] != ht.EMPTY]})

    def apply(self, value: bytes) -> None:
        """Replay one changelog record onto this state."""
        meta, arrays = batch.unpack(value)
        rows = arrays["rows"]
        self.table = ht.grow(self.table, rows.shape[0])
        if rows.shape[0]:
            ht._rehash(rows, self.table.slots, self.table.used)
        self.next_offset = int(meta["next_offset"])
        self.watermarks = {int(k): int(v) for k, v in meta["watermarks"].items()}
        self.incarnation = str(meta.get("incarnation", ""))
        self.step = int(meta.get("step", 0))
