"""The naive baseline of the stream benchmark (benchmarks/naive_agent.py) really liquidates.

One event per invoice through a real faust worker on the real broker: every invoice gives one
décompte on its topic, every event updates the faust Table (one changelog record each), and the
décomptes are the offline engine's on the same files in the same order.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from fseflow.benchmarks.naive_agent import run_naive
from fseflow.infra import db, store
from fseflow.offline import Engine
from fseflow.processors.directory import load_beneficiaries, load_professionals
from fseflow.stream.ingest import received
from fseflow.stream.settings import Settings
from fseflow.tests.test_generator.support import b2_files

pytestmark = pytest.mark.slow


def test_naive_agent_liquidates_every_invoice_with_table_state(tmp_path: Path, fresh_db: str,
                                                                kafka_bootstrap: str) -> None:
    from fseflow.generator import generate

    flow = tmp_path / "flow"
    generate(flow, invoices=400, seed=5, days=1, population=3_000)
    db.load_reference(fresh_db, flow / "beneficiaries.csv", flow / "professionals.csv")
    settings = Settings(kafka_bootstrap=kafka_bootstrap, database_url=fresh_db, partitions=2,
                        prefix=f"n{uuid.uuid4().hex[:8]}.")
    items = [(received(p.read_bytes(), p.name), 0, i) for i, p in enumerate(b2_files(flow))]
    limit = 250
    res = run_naive(settings, items, tmp_path / "naive", limit=limit, timeout=180)

    assert res.invoices == res.decomptes == len(res.records) == limit
    assert len({(r["file"], r["record"]) for r in res.records}) == limit
    assert res.changelog_records == limit          # the Table was written once per event
    assert 0 < res.table_keys <= limit
    # a beneficiary met again found its counters in the Table (seeded flow: some do)
    assert 0 < res.state_hits <= limit - res.table_keys

    engine = Engine(load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv"))
    want = {(r["file"], r["record"]): r for rec, _, _ in items
            for r in engine.liquidate_file(rec.data, rec.name) if "lines" in r}
    for r in res.records:
        assert store.as_offline(r) == want[(r["file"], r["record"])]
