"""Offline engine: decode → controls → liquidation of B2 files in one process, in file order.

The counter state (caps, duplicate indexes) is carried across files, so the outcome equals a
stream run over the same files in the same order. Each file is liquidated on its reception
date: `as_of` when given, else the file's creation date (so results are reproducible).
The caller gets décompte records (codecs/decompte.py) and a running `Summary`.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from fseflow.codecs import b2, decompte
from fseflow.codecs.b2 import ArlReason, Decoded
from fseflow.exceptions import InputError
from fseflow.processors import _hashtable as ht
from fseflow.processors.claims import prepare
from fseflow.processors.directory import Beneficiaries, Professionals
from fseflow.processors.engine import run_kernel
from fseflow.processors.reference import compile_reference

DUPLICATE_FILE = "8009-001"


def duplicate_reason(first: str) -> ArlReason:
    """C09's ARL reason for a file already received (as `first`): acknowledged, not liquidated."""
    return ArlReason(DUPLICATE_FILE, 0, 0, 1, "000", 67, 5, "file_sequence",
                     f"file already received as {first}: acknowledged, not liquidated again")


@dataclass
class Summary:
    """What a run did, for the printed summary and for tests."""

    files: int = 0
    files_refused: int = 0
    lots: int = 0
    lots_refused: int = 0
    invoices: int = 0
    invoices_paid: int = 0
    invoices_rejected: int = 0
    lines: int = 0
    bytes: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    signals: Counter[str] = field(default_factory=Counter)
    paid_by_budget: Counter[str] = field(default_factory=Counter)
    paid_by_payee: Counter[str] = field(default_factory=Counter)
    debt_cents: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: Counter())

    def add(self, record: dict[str, Any]) -> None:
        if "lines" not in record:
            return
        self.invoices += 1
        self.lines += len(record["lines"])
        if record["status"] == "paid":
            self.invoices_paid += 1
        else:
            self.invoices_rejected += 1
        for r in record["rejects"]:
            self.rejects[r["code"]] += 1
        for s in record["signals"]:
            self.signals[s["code"]] += 1
        for line in record["lines"]:
            if line["paid_cents"]:
                self.paid_by_budget[line["budget"]] += line["paid_cents"]
                self.paid_by_payee[record["payee"] or "?"] += line["paid_cents"]
        self.debt_cents += record["totals"]["debt_cents"]


class Engine:
    """Liquidates files one after the other, carrying the counter state."""

    def __init__(self, beneficiaries: Beneficiaries, professionals: Professionals, *, production: bool = True) -> None:
        self.bene = beneficiaries
        self.pros = professionals
        self.production = production
        self.ref = compile_reference()
        self.state = ht.new_table(1 << 16)
        self.received: dict[str, str] = {}            # SHA-256 → name of the file first accepted
        self.sequences: dict[tuple[int, int], str] = {}  # (emitter, file_sequence) → name
        self.summary = Summary()

    def liquidate_file(self, data: bytes, name: str, as_of: int | None = None) -> Iterator[dict[str, Any]]:
        """Décompte records of one file (refused lots and files included), in record order."""
        s = self.summary
        t0 = time.perf_counter()
        decoded = b2.decode(data, name, reception_date=as_of, production=self.production)
        t1 = time.perf_counter()
        s.seconds["decode"] += t1 - t0
        s.files += 1
        s.bytes += len(data)
        info = decoded.file
        duplicate = self._duplicate(decoded)
        if duplicate is not None:
            s.files_refused += 1
            yield decompte.refused(name, None, [duplicate])
            return
        s.lots += len(decoded.lots)
        if decoded.status == "N":
            s.files_refused += 1
            s.lots_refused += len(decoded.lots)
            yield decompte.refused(name, None, decoded.reasons)
            return
        self.received[info.sha256] = name
        self.sequences[(info.emitter_ps_number, info.file_sequence)] = name
        liq = as_of if as_of is not None else info.creation_date
        ic, lc = prepare(decoded.invoices, decoded.lines, decoded.lots, liq, self.ref)
        out, self.state = run_kernel(ic, lc, self.bene, self.pros, self.state, self.ref.arrays)
        t2 = time.perf_counter()
        s.seconds["kernels"] += t2 - t1
        records = decompte.from_outcome(name, decoded.invoices, decoded.lines, decoded.lots, ic, lc, out,
                                        decoded.c14_field, liq)
        yield from self._merge_refused_lots(decoded, records)
        s.seconds["records"] += time.perf_counter() - t2

    def _duplicate(self, d: Decoded) -> ArlReason | None:
        """C09: the same bytes, or the same (emitter, sequence), already accepted."""
        info = d.file
        first = self.received.get(info.sha256) or self.sequences.get((info.emitter_ps_number, info.file_sequence))
        if first is None or d.status == "N":
            return None
        return duplicate_reason(first)

    def _merge_refused_lots(self, d: Decoded, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Invoice records with each refused lot's record at its place in lot order."""
        refused = [lot for lot in d.lots if lot.status == "R"]
        self.summary.lots_refused += len(refused)
        pending = sorted(refused, key=lambda lot: lot.record_ordinal)
        for rec in records:
            while pending and pending[0].record_ordinal < rec["record"]:
                lot = pending.pop(0)
                yield decompte.refused(d.file.name, lot.lot_number if lot.lot_number >= 0 else None, lot.reasons)
            self.summary.add(rec)
            yield rec
        for lot in pending:
            yield decompte.refused(d.file.name, lot.lot_number if lot.lot_number >= 0 else None, lot.reasons)


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a B2 file") from None


def liquidate_paths(engine: Engine, paths: list[Path], as_of: int | None,
                    on_file: Callable[[Path], None] | None = None) -> Iterator[dict[str, Any]]:
    """Décompte records of every file, in the order given."""
    for p in paths:
        yield from engine.liquidate_file(read_file(p), p.name, as_of)
        if on_file is not None:
            on_file(p)


__all__ = ["DUPLICATE_FILE", "Engine", "Summary", "duplicate_reason", "liquidate_paths", "read_file"]
