"""A worker's /metrics, scraped after a flow: every figure equals what PostgreSQL holds."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fseflow.stream.app import ROLES
from fseflow.tests.services import flow_through_one_worker

pytestmark = pytest.mark.slow


def parse(text: str) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name][tuple(sorted(s.labels.items()))] = s.value
    return out


def total(samples: dict[tuple, float], **match: str) -> float:
    return sum(v for labels, v in samples.items() if all((k, m) in labels for k, m in match.items()))


def by(samples: dict[tuple, float], label: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for labels, v in samples.items():
        out[dict(labels)[label]] += int(v)
    return {k: v for k, v in out.items() if v}


def test_worker_metrics_match_the_database(tmp_path: Path, fresh_db: str, kafka_bootstrap: str) -> None:
    text, p, counts = flow_through_one_worker(tmp_path, fresh_db, kafka_bootstrap, invoices=600, seed=5,
                                              population=8_000)
    m = parse(text)
    prefix = next(dict(k)["topic"] for k in m["fseflow_consumer_lag_seconds"]).split("fse.")[0]

    assert total(m["fseflow_files_total"]) == p.files
    assert by(m["fseflow_invoices_total"], "outcome") == {"paid": counts["decomptes_paid"],
                                                          "rejected": counts["decomptes_rejected"]}
    assert total(m["fseflow_lines_total"]) == counts["lines"]
    assert by(m["fseflow_rejects_total"], "code") == counts["rejects_by_code"]
    assert by(m["fseflow_paid_cents_total"], "budget") == counts["paid_cents_by_budget"]
    assert total(m["fseflow_decomptes_written_total"]) == p.decomptes
    for stage in ("reception_to_decoded", "decoded_to_liquidated", "reception_to_decompte"):
        count = total(m[f"fseflow_{stage}_seconds_count"])
        assert count == (p.files if stage == "reception_to_decoded" else p.decomptes), stage
        assert total(m[f"fseflow_{stage}_seconds_bucket"], le="864000.0") == count  # 10 days: every one
    assert {dict(k)["agent"] for k in m["fseflow_batch_records_count"]} == set(ROLES)
    assert {dict(k)["topic"] for k in m["fseflow_consumer_lag_seconds"]} >= {prefix + "fse.lots",
                                                                           prefix + "fse.invoices"}
    assert total(m["fseflow_state_entries"]) > 0 and total(m["fseflow_kernel_seconds_total"]) > 0
    assert any("version" in dict(k) for k in m["fseflow_build_info"])
    # no personal or identifying value in any label: no NIR, PS number or invoice number
    values = [v for samples in m.values() for labels in samples for _, v in labels]
    assert not [v for v in values if re.search(r"\d{9,}", v)]
