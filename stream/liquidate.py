"""The liquidate step: invoice batches of one partition → décomptes, and the new state.

Pure over its inputs except for the partition state it advances (stream/state.py): the agent
in stream/app.py reads the batches, calls `liquidate_step`, and writes the décomptes, their
ledger entries and the state change in one PostgreSQL transaction.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fseflow.codecs import decompte
from fseflow.processors.directory import Beneficiaries, Professionals
from fseflow.processors import fraud_lines
from fseflow.processors.engine import run_kernel
from fseflow.processors.reference import CompiledReference
from fseflow.stream.decode import InvoiceBatch, merge, select
from fseflow.stream.state import PartitionState


@dataclass
class LiquidateOutput:
    paid: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    #: the beneficiaries the step touched: the step's state change is `state.changelog(benes)`,
    #: made once its step number is known (stream/app.py commit_step)
    benes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    skipped: int = 0          # invoice rows already liquidated (replayed upstream)
    kernel_seconds: float = 0.0
    decoded_at: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per liquidated invoice
    liquidated_at: float = 0.0
    # per line: the fraud features (processors/fraud_lines.py) and the upstream record of its
    # invoice (src_partition, src_offset of fse.lots), which the fraud step deduplicates on
    lines: dict[str, np.ndarray] = field(default_factory=dict)


def liquidate_step(state: PartitionState, batches: list[InvoiceBatch], next_offset: int,
                   bene: Beneficiaries, pros: Professionals, ref: CompiledReference,
                   fraud: bool = True, known: set[tuple[str, int]] | frozenset[tuple[str, int]] = frozenset()
                   ) -> LiquidateOutput:
    """Liquidate the batches (in offset order) read up to `next_offset` of the state's partition;
    with `fraud`, also the line features of the fraud side stream (`out.lines`).

    `known` lists invoices (file_id, record) already liquidated on an earlier incarnation of the
    topics (a file sent again from the journal): they are dropped like rows below a watermark, as
    is an invoice met twice in the step (the original and its resent copy in flight together)."""
    out = LiquidateOutput()
    b = merge(batches)
    fresh = state.fresh_rows(b.meta["src_partition"], b.meta["src_offset"])
    resent = b.meta.get("resent")
    if resent is not None and resent.any():
        fresh &= _first_sight(b, known)
    out.skipped = int((~fresh).sum())
    b = select(b, fresh)
    benes = np.zeros(0, np.int64)
    if b.size:
        t0 = time.perf_counter()
        outcome, state.table = run_kernel(b.ic, b.lc, bene, pros, state.table, ref.arrays)
        out.kernel_seconds = time.perf_counter() - t0
        benes = outcome.inv_bene
        now = time.time()
        out.liquidated_at = now
        if "decoded_at" in b.meta:
            out.decoded_at = b.meta["decoded_at"]
        names = [name for _, name in b.files]
        received = b.meta["received_at"]
        for i, rec in enumerate(decompte.records(names, b.meta, b.act, b.ic, b.lc, outcome, b.c14)):
            rec["file_id"] = b.files[int(b.meta["file_ix"][i])][0]
            rec["received_at"] = float(received[i])
            rec["liquidated_at"] = now
            rec["partition"] = state.partition
            (out.paid if rec["status"] == "paid" else out.rejected).append(rec)
        if fraud:
            out.lines = fraud_lines.features(b.ic, b.lc, b.act, b.cip13, outcome, ref.arrays.payee[:, 1], {
                "src_partition": b.meta["src_partition"].astype(np.int32),
                "src_offset": b.meta["src_offset"].astype(np.int64)})
        state.advance(next_offset, b.meta["src_partition"], b.meta["src_offset"])
    else:
        state.next_offset = next_offset
    out.benes = benes
    return out


def _first_sight(b: InvoiceBatch, known: set[tuple[str, int]] | frozenset[tuple[str, int]]) -> np.ndarray:
    """Mask of the invoices neither `known` nor met earlier in the batch (by file_id, record)."""
    keep = np.ones(b.size, np.bool_)
    seen: set[tuple[str, int]] = set(known)
    file_ix, record = b.meta["file_ix"].tolist(), b.meta["record_ordinal"].tolist()
    for i, (f, r) in enumerate(zip(file_ix, record)):
        key = (b.files[f][0], int(r))
        if key in seen:
            keep[i] = False
        else:
            seen.add(key)
    return keep
