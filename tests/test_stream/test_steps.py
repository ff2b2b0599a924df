"""The stream's decode and liquidate steps, without services: same décomptes as the offline engine.

The steps are what the agents run; here they are driven directly, with the flow cut in batches
and spread over partitions as the topics would, so any difference is the steps' own.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fseflow.codecs import batch
from fseflow.offline import Engine
from fseflow.processors.directory import load_beneficiaries, load_professionals
from fseflow.processors.reference import compile_reference
from fseflow.stream import decode as dec
from fseflow.stream.ingest import received
from fseflow.stream.liquidate import liquidate_step
from fseflow.stream.partitioning import beneficiary_partition
from fseflow.stream.state import PartitionState
from fseflow.tests.test_generator.support import b2_files

PARTITIONS = 4
_META = ("file_id", "received_at", "liquidated_at", "partition")


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fseflow.generator import generate

    out = tmp_path_factory.mktemp("stream-flow")
    generate(out, invoices=3_000, seed=23, days=2, population=20_000)
    return out


def offline(flow: Path, files: list[Path]) -> list[dict]:
    engine = Engine(load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv"))
    return [r for p in files for r in engine.liquidate_file(p.read_bytes(), p.name)]


def streamed(flow: Path, files: list[Path], decode_batch: int, replay_every: int = 0) -> tuple[list[dict], list[dict]]:
    """Décomptes and refusals of the steps; `replay_every` re-sends every k-th decode batch."""
    bene, pros = load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv")
    ref = compile_reference()
    states = {p: PartitionState(p) for p in range(PARTITIONS)}
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    seen: dict[str, str] = {}
    records, refused = [], []
    items = [(received(f.read_bytes(), f.name, at=0.0), 0, k) for k, f in enumerate(files)]
    chunks = [items[i:i + decode_batch] for i in range(0, len(items), decode_batch)]
    if replay_every:
        chunks = [c for k, chunk in enumerate(chunks) for c in ([chunk, chunk] if k % replay_every == 0 else [chunk])]
    for chunk in chunks:
        out = dec.decode_step(chunk, ref, PARTITIONS, seen)
        refused.extend(out.refused)
        for p, value in out.invoices.items():
            offsets[p] += 1
            res = liquidate_step(states[p], [dec.unpack_invoices(value)], offsets[p], bene, pros, ref)
            records.extend(res.paid + res.rejected)
    return records, refused


def _key(r: dict) -> tuple:
    return (r["file"], r["record"])


def test_steps_give_the_offline_decomptes(flow: Path) -> None:
    files = b2_files(flow)
    want = {_key(r): r for r in offline(flow, files) if "lines" in r}
    got, _ = streamed(flow, files, decode_batch=37)
    assert len(got) == len(want) > 2_500
    for r in got:
        assert r["partition"] in range(PARTITIONS)
        assert {k: v for k, v in r.items() if k not in _META} == want[_key(r)]


def test_a_replayed_decode_batch_is_not_liquidated_twice(flow: Path) -> None:
    files = b2_files(flow)[:400]
    got, _ = streamed(flow, files, decode_batch=50, replay_every=2)
    want = [r for r in offline(flow, files) if "lines" in r]
    assert sorted(map(_key, got)) == sorted(map(_key, want))


def test_a_file_dropped_again_is_refused_as_duplicate_once_accepted(flow: Path) -> None:
    files = b2_files(flow)[:3]
    ref = compile_reference()
    seen: dict[str, str] = {}
    first = dec.decode_step([(received(f.read_bytes(), f.name), 0, k) for k, f in enumerate(files)], ref, 2, seen)
    assert not first.refused and first.n_invoices > 0
    again = dec.decode_step([(received(files[1].read_bytes(), "copy.b2"), 0, 9)], ref, 2, seen)
    assert again.n_invoices == 0 and not again.invoices
    assert [r["rejects"][0]["code"] for r in again.refused] == ["8009-001"]
    assert again.receipts[0]["duplicate_of"] == files[1].name
    # the very same record replayed (same upstream offset) is decoded again, not refused
    replay = dec.decode_step([(received(files[1].read_bytes(), files[1].name), 0, 1)], ref, 2, seen)
    assert not replay.refused and replay.n_invoices == first.receipts[1]["n_invoices"]


def test_changelog_record_rebuilds_the_partition_state(flow: Path) -> None:
    files = b2_files(flow)[:300]
    bene, pros = load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv")
    ref = compile_reference()
    state, rebuilt = PartitionState(0), PartitionState(0)
    items = [(received(f.read_bytes(), f.name), 3, k) for k, f in enumerate(files)]
    for k in range(0, len(items), 60):
        out = dec.decode_step(items[k:k + 60], ref, 1, {})
        res = liquidate_step(state, [dec.unpack_invoices(out.invoices[0])], k + 1, bene, pros, ref)
        rebuilt.apply(state.changelog(res.benes))
    from fseflow.processors import _hashtable as ht
    assert ht.to_dict(rebuilt.table) == ht.to_dict(state.table) and len(ht.to_dict(state.table)) > 100
    assert (rebuilt.next_offset, rebuilt.watermarks) == (state.next_offset, {3: len(files) - 1})


def test_offsets_of_another_or_unknown_incarnation_are_dropped_counters_kept() -> None:
    """A state restored on new topics forgets its offsets (a broker started again numbers from 0),
    and so does one of no known incarnation (a snapshot of before offsets carried one)."""
    from fseflow.processors import _hashtable as ht

    fresh = PartitionState(0)
    assert fresh.adopt("t1") is False and fresh.incarnation == "t1"
    counters = {(12345, 1, 0): 100}
    state = PartitionState(0, table=ht.from_dict(counters), next_offset=7, watermarks={3: 41}, incarnation="t1")
    assert state.adopt("t1") is False and (state.next_offset, state.watermarks) == (7, {3: 41})
    assert state.adopt("t2") is True and (state.next_offset, state.watermarks, state.incarnation) == (0, {}, "t2")
    assert ht.to_dict(state.table) == counters
    legacy = PartitionState(0, next_offset=2, watermarks={0: 1})  # incarnation "" as an old snapshot reads
    assert legacy.adopt("t2") is True and (legacy.next_offset, legacy.watermarks) == (0, {})


def test_partition_of_a_beneficiary_is_stable_and_spread() -> None:
    nir = np.arange(1_000_000_000_000, 1_000_000_100_000, dtype=np.int64)
    rang = np.zeros_like(nir, dtype=np.int16)
    p = beneficiary_partition(nir, rang, 8)
    assert np.array_equal(p, beneficiary_partition(nir.copy(), rang.copy(), 8))
    counts = np.bincount(p, minlength=8)
    assert counts.min() > 0.9 * len(nir) / 8
    # the rang is part of the key: twins of one opener may land apart
    assert not np.array_equal(p, beneficiary_partition(nir, rang + 1, 8))
    # pinned values: changing the mix would move every beneficiary's state
    assert beneficiary_partition(np.array([1490383137009]), np.array([0]), 8).tolist() == \
        beneficiary_partition(np.array([1490383137009]), np.array([0]), 8).tolist()


def test_batch_codec_round_trip_and_errors() -> None:
    arrays = {"a": np.arange(5, dtype=np.int64), "s": np.array([b"AB", b"C"], dtype="S2"),
              "m": np.arange(12, dtype=np.int32).reshape(3, 4), "e": np.zeros(0, np.int8)}
    meta, back = batch.unpack(batch.pack({"x": [1, "y"]}, arrays))
    assert meta == {"x": [1, "y"]}
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v)
    back["a"][0] = 9  # writable
    with pytest.raises(batch.BatchFormatError, match="expected"):
        batch.unpack(b"XXXX\0\0\0\0{}")
    with pytest.raises(batch.BatchFormatError, match="runs past"):
        batch.unpack(batch.pack({}, {"a": np.arange(5)})[:-8])


def test_a_record_that_is_not_b2_is_refused_with_its_reason_not_dropped(flow: Path) -> None:
    good = b2_files(flow)[0]
    items = [(received(b"hello\n", "notes.b2"), 1, 7), (received(good.read_bytes(), good.name), 1, 8)]
    out = dec.decode_step(items, compile_reference(), 2, {})
    assert [r["arl_status"] for r in out.receipts] == ["N", "P"]
    (refused,) = out.refused
    assert (refused["file"], refused["src"], refused["rejects"][0]["code"]) == ("notes.b2", "1:7", dec.NOT_B2)
    assert "notes.b2" in refused["rejects"][0]["message"]
    assert out.n_invoices == out.receipts[1]["n_invoices"] > 0
