"""The decode step: received files → ARL receipts, refused lots, invoice batches per partition.

Pure functions over the received records (the agent in stream/app.py does the I/O). One step
decodes a batch of files, checks C09 (the same bytes, or the same emitter and file sequence,
already accepted), prepares the kernel columns of the accepted lots, and splits the invoices by
beneficiary partition into one columnar record per partition (codecs/batch.py).

Each invoice row carries its upstream (partition, offset) so the liquidate step can drop rows it
has already liquidated when a restarted decode step sends them again (stream/state.py).
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any, MutableMapping

import numpy as np

from fseflow.codecs import b2, batch, decompte
from fseflow.codecs.b2_layouts import LAYOUTS
from fseflow.exceptions import InputError
from fseflow.offline import duplicate_reason
from fseflow.processors.claims import InvoiceCols, LineCols, concat, prepare
from fseflow.processors.reference import CompiledReference
from fseflow.stream.partitioning import beneficiary_partition

#: a record that is not a B2 file at all (C03: no file header first)
NOT_B2 = "8003-001"
_EMITTER = LAYOUTS["000"]["emitter_ps_number"]


@dataclass(frozen=True)
class Received:
    """One record of `fse.lots`: a received file and how it came in."""

    file_id: str            # SHA-256 of the bytes: the file's identity
    name: str
    received_at: float      # epoch seconds at intake
    reception_date: int | None  # liquidation day; None = the file's creation date (replays)
    data: bytes
    #: the reception's number in the intake journal (infra/journal.py): its identity on every
    #: broker, so a file sent again after a failure is the same reception, not a duplicate
    seq: int | None = None
    #: sent again from the journal: some of its invoices may already have their décompte
    resent: bool = False

    @property
    def src(self) -> str | None:
        """The reception as `files.src` names it: 'r<seq>' for a journaled file."""
        return None if self.seq is None else f"r{self.seq}"

    def pack(self) -> bytes:
        meta = {"file_id": self.file_id, "name": self.name, "received_at": self.received_at,
                "reception_date": self.reception_date, "seq": self.seq, "resent": self.resent}
        return batch.pack(meta, {"data": np.frombuffer(self.data, dtype=np.uint8)})

    @classmethod
    def unpack(cls, value: bytes) -> "Received":
        """The record of an `fse.lots` value; a value that is not one is a BatchFormatError naming
        the field that is wrong (never its value)."""
        meta, arrays = batch.unpack(value)
        try:
            rec = cls(str(meta["file_id"]), str(meta["name"]), float(meta["received_at"]), meta["reception_date"],
                      arrays["data"].tobytes(), meta.get("seq"), bool(meta.get("resent", False)))
        except (KeyError, TypeError, ValueError) as e:
            raise batch.BatchFormatError(f"intake record: field {e} missing or of the wrong type") from None
        check_record(rec)
        return rec


_SHA256 = re.compile(r"[0-9a-f]{64}")
#: the longest file name taken (the ARL and the `files` table keep it)
MAX_NAME = 255


def check_record(rec: Received) -> None:
    """Refuse, at the edge, an intake record a later stage could not store: its reason names the
    field, never the value."""
    if not _SHA256.fullmatch(rec.file_id):
        raise batch.BatchFormatError("intake record: field file_id is not a SHA-256 (64 lowercase hex digits)")
    if hashlib.sha256(rec.data).hexdigest() != rec.file_id:
        raise batch.BatchFormatError("intake record: field file_id is not the SHA-256 of the bytes")
    if not rec.name or len(rec.name) > MAX_NAME or not rec.name.isprintable() or "/" in rec.name:
        raise batch.BatchFormatError("intake record: field name is empty, too long, or holds a control character"
                                     " or a slash")
    if rec.reception_date is not None and not isinstance(rec.reception_date, int):
        raise batch.BatchFormatError("intake record: field reception_date is not a day number")
    if rec.seq is not None and (not isinstance(rec.seq, int) or rec.seq < 0):
        raise batch.BatchFormatError("intake record: field seq is not a journal number")


def emitter_key(data: bytes) -> bytes:
    """Key of a file on `fse.lots`: its emitter's PS number as written in the header.

    Every file of one emitter lands in one partition, so both C09 checks are local to it."""
    return bytes(data[_EMITTER.start - 1:_EMITTER.start - 1 + _EMITTER.length])


def unreadable_receipt(rec: "Received | None", src: str, code: str, message: str,
                       file_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    """The `files` row of a record that could not be decoded at all."""
    return {"file_id": file_id or rec.file_id, "name": name or rec.name, "size": len(rec.data) if rec else 0,
            "emitter": None, "file_sequence": None, "creation_date": None,
            "received_at": rec.received_at if rec else time.time(), "arl_status": "N",
            "arl_reasons": [{"code": code, "lot": 0, "record": 1, "field": None, "message": message}],
            "n_lots": 0, "n_lots_refused": 0, "n_invoices": 0, "decoded_at": time.time(), "duplicate_of": None,
            "src": src}


def unreadable_refusal(name: str, file_id: str, src: str, code: str, message: str) -> dict[str, Any]:
    return {"file": name, "lot": None, "status": "rejected", "file_id": file_id, "src": src,
            "rejects": [{"code": code, "line": None, "field": None, "record": 1, "message": message}]}


def emitter_number(data: bytes) -> int:
    """The emitter's PS number from the header, -1 when unreadable (looked up for C09)."""
    raw = emitter_key(data)
    return int(raw) if raw.isdigit() else -1


@dataclass
class DecodeOutput:
    receipts: list[dict[str, Any]] = field(default_factory=list)   # rows of `files`
    refused: list[dict[str, Any]] = field(default_factory=list)    # refused files/lots, with file_id
    invoices: dict[int, bytes] = field(default_factory=dict)       # partition → packed batch
    n_invoices: int = 0


#: per-invoice columns of an invoices record beside InvoiceCols/META_COLUMNS
_EXTRA = (("received_at", "f8"), ("src_partition", "i4"), ("src_offset", "i8"))


def _c14_map(fields: list[str | None], base: int) -> dict[int, str]:
    return {base + i: f for i, f in enumerate(fields) if f}


def decode_step(items: list[tuple[Received, int, int]], ref: CompiledReference, partitions: int,
                seen: MutableMapping[str, str], production: bool = True) -> DecodeOutput:
    """Decode `(record, upstream partition, upstream offset)` items, in order.

    `seen` maps `sha:<id>` and `seq:<emitter>:<sequence>` to `<name>|<partition>:<offset>` of the
    record that was accepted first (a faust Table in the agent): a later record with the same
    identity is a duplicate (C09, acknowledged, not liquidated); the same record replayed is not.
    """
    out = DecodeOutput()
    parts: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Any], int]] = []
    metas: list[dict[str, np.ndarray]] = []
    acts: list[np.ndarray] = []
    cips: list[np.ndarray] = []
    files: list[list[str]] = []
    c14: dict[int, str] = {}
    n = 0
    for rec, src_p, src_o in items:
        src = rec.src or f"{src_p}:{src_o}"
        try:
            d = b2.decode(rec.data, rec.name, reception_date=rec.reception_date, production=production)
        except InputError as e:
            # not B2 at all: refused with its reason and kept, like a negative ARL (never dropped)
            out.receipts.append(unreadable_receipt(rec, src, NOT_B2, str(e)))
            out.refused.append(unreadable_refusal(rec.name, rec.file_id, src, NOT_B2, str(e)))
            continue
        info = d.file
        marker = f"{rec.name}|{src}"
        keys = (f"sha:{rec.file_id}", f"seq:{info.emitter_ps_number}:{info.file_sequence}")
        first = next((seen[k] for k in keys if k in seen and seen[k].split("|")[-1] != marker.split("|")[-1]), None)
        receipt = {"file_id": rec.file_id, "name": rec.name, "size": len(rec.data),
                   "emitter": info.emitter_ps_number, "file_sequence": info.file_sequence,
                   "creation_date": info.creation_date, "received_at": rec.received_at,
                   "arl_status": d.status, "arl_reasons": [reason_record(r) for r in d.reasons],
                   "n_lots": len(d.lots), "n_lots_refused": 0, "n_invoices": 0,
                   "decoded_at": time.time(), "duplicate_of": None, "src": src}
        out.receipts.append(receipt)
        if first is not None and d.status != "N":
            receipt["duplicate_of"] = first.split("|")[0]
            reason = duplicate_reason(receipt["duplicate_of"])
            receipt["arl_status"] = "N"
            receipt["arl_reasons"] = [reason_record(reason)]
            out.refused.append({**decompte.refused(rec.name, None, [reason]), "file_id": rec.file_id, "src": receipt["src"]})
            continue
        if d.status == "N":
            receipt["n_lots_refused"] = len(d.lots)
            out.refused.append({**decompte.refused(rec.name, None, d.reasons), "file_id": rec.file_id, "src": receipt["src"]})
            continue
        for k in keys:
            seen[k] = marker
        for lot in d.lots:
            if lot.status == "R":
                receipt["n_lots_refused"] += 1
                out.refused.append({**decompte.refused(rec.name, lot.lot_number if lot.lot_number >= 0 else None,
                                                       lot.reasons), "file_id": rec.file_id, "src": receipt["src"]})
        k = d.invoices["lot_idx"].shape[0]
        receipt["n_invoices"] = k
        if not k:
            continue
        liq = rec.reception_date if rec.reception_date is not None else info.creation_date
        parts.append((d.invoices, d.lines, d.lots, liq))
        meta = decompte.invoice_meta(d.invoices, d.lots, liq, file_ix=len(files))
        meta["received_at"] = np.full(k, rec.received_at, np.float64)
        meta["decoded_at"] = np.full(k, receipt["decoded_at"], np.float64)
        meta["src_partition"] = np.full(k, src_p, np.int32)
        meta["src_offset"] = np.full(k, src_o, np.int64)
        meta["resent"] = np.full(k, rec.resent, np.bool_)
        metas.append(meta)
        acts.append(d.lines["act_code"])
        cips.append(d.lines["cip13"])
        files.append([rec.file_id, rec.name])
        c14.update(_c14_map(d.c14_field, n))
        n += k
    out.n_invoices = n
    if n:
        ic, lc = _prepare_all(parts, ref)
        meta = {name: np.concatenate([m[name] for m in metas]) for name in metas[0]}
        act = np.concatenate(acts)
        everything = InvoiceBatch(files, ic, lc, meta, act, c14, np.concatenate(cips))
        where = beneficiary_partition(ic.nir_id, meta["rang"], partitions)
        for p in np.unique(where):
            out.invoices[int(p)] = select(everything, where == p).pack()
    return out


def _prepare_all(parts: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[Any], int]],
                 ref: CompiledReference) -> tuple[InvoiceCols, LineCols]:
    """`prepare` once over the files of a step (its code mapping costs per call, not per row):
    columns concatenated, lot and line offsets shifted, each invoice with its file's date."""
    if len(parts) == 1:
        inv, lines, lots, liq = parts[0]
        return prepare(inv, lines, lots, liq, ref)
    invs, all_lots, liqs = [], [], []
    n_lines = 0
    for inv, lines, lots, liq in parts:
        invs.append({**inv, "lot_idx": inv["lot_idx"] + np.int32(len(all_lots)),
                     "line_start": inv["line_start"] + np.int32(n_lines)})
        all_lots.extend(lots)
        liqs.append(np.full(inv["lot_idx"].shape[0], liq, np.int32))
        n_lines += lines["rec_type"].shape[0]
    inv = {k: np.concatenate([x[k] for x in invs]) for k in invs[0]}
    lines = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    ic, lc = prepare(inv, lines, all_lots, 0, ref)
    return ic._replace(liq_date=np.concatenate(liqs)), lc


def reason_record(r: Any) -> dict[str, Any]:
    """An ARL reason as the `files` table keeps it (JSON)."""
    return {"code": r.code, "lot": r.lot, "record": r.record_ordinal, "field": r.field or None,
            "message": r.message}


def _line_rows(ic: InvoiceCols, rows: np.ndarray) -> np.ndarray:
    starts, counts = ic.line_start[rows].astype(np.int64), ic.line_count[rows].astype(np.int64)
    if not counts.sum():
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return offsets + np.arange(counts.sum())


@dataclass
class InvoiceBatch:
    """An unpacked `fse.invoices` value (or several of one partition, concatenated)."""

    files: list[list[str]]     # [file_id, name] per file_ix
    ic: InvoiceCols
    lc: LineCols
    meta: dict[str, np.ndarray]
    act: np.ndarray
    c14: dict[int, str]
    cip13: np.ndarray          # i8 per line: the drug of a pharmacy line (4P), else 0

    @property
    def size(self) -> int:
        return int(self.ic.ps.shape[0])

    def pack(self) -> bytes:
        """The batch as one `fse.invoices` value, listing only the files its invoices come from."""
        used = np.unique(self.meta["file_ix"])
        remap = np.full(len(self.files), -1, np.int32)
        remap[used] = np.arange(used.shape[0], dtype=np.int32)
        arrays: dict[str, np.ndarray] = {}
        for name, col in zip(InvoiceCols._fields, self.ic):
            arrays["i." + name] = col
        for name, col in zip(LineCols._fields, self.lc):
            arrays["l." + name] = col
        for name, col in self.meta.items():
            arrays["m." + name] = remap[col] if name == "file_ix" else col
        arrays["l.act_code"] = self.act
        arrays["l.cip13"] = self.cip13
        return batch.pack({"files": [self.files[i] for i in used],
                           "c14": {str(r): f for r, f in self.c14.items()}}, arrays)


def unpack_invoices(value: bytes) -> InvoiceBatch:
    m, a = batch.unpack(value)
    ic = InvoiceCols(*[a["i." + f] for f in InvoiceCols._fields])
    lc = LineCols(*[a["l." + f] for f in LineCols._fields])
    meta = {k[2:]: v for k, v in a.items() if k.startswith("m.")}
    return InvoiceBatch(m["files"], ic, lc, meta, a["l.act_code"], {int(k): v for k, v in m["c14"].items()},
                        a["l.cip13"])


def merge(batches: list[InvoiceBatch]) -> InvoiceBatch:
    """Several batches of one partition as one, in order (file indexes and C14 rows shifted)."""
    if len(batches) == 1:
        return batches[0]
    files: list[list[str]] = []
    metas, c14 = [], {}
    n = 0
    for b in batches:
        m = dict(b.meta)
        m["file_ix"] = m["file_ix"] + np.int32(len(files))
        metas.append(m)
        c14.update({n + r: f for r, f in b.c14.items()})
        files.extend(b.files)
        n += b.size
    ic, lc = concat([(b.ic, b.lc) for b in batches])
    meta = {k: np.concatenate([m[k] for m in metas]) for k in metas[0]}
    return InvoiceBatch(files, ic, lc, meta, np.concatenate([b.act for b in batches]), c14,
                        np.concatenate([b.cip13 for b in batches]))


def select(b: InvoiceBatch, keep: np.ndarray) -> InvoiceBatch:
    """The rows of `keep` (a mask over invoices) of a batch."""
    if keep.all():
        return b
    rows = np.flatnonzero(keep)
    lrows = _line_rows(b.ic, rows)
    counts = b.ic.line_count[rows]
    ic = InvoiceCols(*[col[rows] for col in b.ic])._replace(
        line_start=(np.cumsum(counts) - counts).astype(b.ic.line_start.dtype))
    lc = LineCols(*[col[lrows] for col in b.lc])
    index = {int(r): k for k, r in enumerate(rows)}
    return InvoiceBatch(b.files, ic, lc, {k: v[rows] for k, v in b.meta.items()}, b.act[lrows],
                        {index[r]: f for r, f in b.c14.items() if r in index}, b.cip13[lrows])
