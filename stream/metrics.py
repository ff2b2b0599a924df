"""Prometheus metrics of a worker: latency per stage, volumes by outcome, lag, batch sizes.

Naming follows Prometheus rules: one `fseflow_` prefix, base units (seconds, bytes), counters end
in `_total` (prometheus-client adds it), and labels never hold a NIR, a PS number or an invoice
id, only bounded sets (ARL status, outcome, budget, reject code, topic, partition). Amounts are
counted in integer cents (`_cents_total`): money has no Prometheus base unit, and cents stay exact.

Each worker process serves its own registry on `/metrics` (`FSEFLOW_METRICS_PORT`; workers never
fork, so no multiprocess mode is needed). The agents call the `record_*` helpers once per batch.
"""
from __future__ import annotations

import logging
import time
from importlib import metadata
from typing import Any, Iterable

import numpy as np
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics,
                               start_http_server)

# no `*_created` series: they double the exposition and nothing here reads them
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)

#: from 1 ms to 10 days: intake hops are milliseconds, a backlog drains in hours, payment in days
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 2 * 86400.0, 7 * 86400.0, 10 * 86400.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)

BUILD = Info("fseflow_build", "fseflow version and the Python it runs on", registry=REGISTRY)
RECEPTION_TO_DECODED = Histogram("fseflow_reception_to_decoded_seconds",
                                 "time from a file's reception to its decoding (ARL)", buckets=LATENCY_BUCKETS,
                                 registry=REGISTRY)
DECODED_TO_LIQUIDATED = Histogram("fseflow_decoded_to_liquidated_seconds",
                                  "time from an invoice's decoding to its liquidation", buckets=LATENCY_BUCKETS,
                                  registry=REGISTRY)
RECEPTION_TO_DECOMPTE = Histogram("fseflow_reception_to_decompte_seconds",
                                  "time from an invoice's reception to its décompte written in PostgreSQL",
                                  buckets=LATENCY_BUCKETS, registry=REGISTRY)
#: observed by the payment cut-off (issue 4): liquidation → payment file, in seconds and in working days
LIQUIDATION_TO_PAYMENT = Histogram("fseflow_liquidation_to_payment_seconds",
                                   "time from an invoice's liquidation to its payment file", ["budget"],
                                   buckets=LATENCY_BUCKETS, registry=REGISTRY)
WORKING_DAY_BUCKETS = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 20.0, 30.0)
RECEPTION_TO_PAYMENT_WORKING_DAYS = Histogram(
    "fseflow_reception_to_payment_working_days",
    "working days (French public holidays excluded) from reception to payment file, tiers payant invoices",
    ["budget"], buckets=WORKING_DAY_BUCKETS, registry=REGISTRY)
FILES = Counter("fseflow_files", "received files decoded, by ARL status (P, L, N)", ["arl_status"],
                registry=REGISTRY)
FILE_BYTES = Counter("fseflow_file_bytes", "bytes of received files decoded", registry=REGISTRY)
LOTS = Counter("fseflow_lots", "lots decoded, by outcome (accepted, refused)", ["outcome"], registry=REGISTRY)
INVOICES = Counter("fseflow_invoices", "invoices liquidated, by outcome (paid, rejected)", ["outcome"],
                   registry=REGISTRY)
LINES = Counter("fseflow_lines", "invoice lines liquidated, by outcome and budget", ["outcome", "budget"],
                registry=REGISTRY)
REJECTS = Counter("fseflow_rejects", "rejects (invoice and line), by reject code", ["code"], registry=REGISTRY)
PAID = Counter("fseflow_paid_cents", "amounts paid, in cents, by budget", ["budget"], registry=REGISTRY)
DECOMPTES_WRITTEN = Counter("fseflow_decomptes_written", "décomptes inserted in PostgreSQL (replays excluded)",
                            registry=REGISTRY)
BATCH = Histogram("fseflow_batch_records", "records per batch taken by an agent", ["agent"],
                  buckets=BATCH_BUCKETS, registry=REGISTRY)
AGENT_SECONDS = Counter("fseflow_agent_seconds", "time spent processing batches, by agent", ["agent"],
                        registry=REGISTRY)
KERNEL_SECONDS = Counter("fseflow_kernel_seconds", "time in the control and liquidation kernels",
                         registry=REGISTRY)
STATE_ENTRIES = Gauge("fseflow_state_entries", "entries of the liquidation state, by partition", ["partition"],
                      registry=REGISTRY)
STATE_BYTES = Gauge("fseflow_state_bytes", "memory of the liquidation state tables, by partition", ["partition"],
                    registry=REGISTRY)
LAG_SECONDS = Gauge("fseflow_consumer_lag_seconds",
                    "age of the last record taken (now − its timestamp), by topic and partition",
                    ["topic", "partition"], registry=REGISTRY)
LAG_MESSAGES = Gauge("fseflow_consumer_lag_messages", "records behind the partition's high watermark",
                     ["topic", "partition"], registry=REGISTRY)
DEAD_LETTERS = Counter("fseflow_dead_letters", "records a stage could not process, kept in dead_letters, by stage",
                       ["stage"], registry=REGISTRY)
UP = Gauge("fseflow_up", "1 while a component of the pipeline answers (serve's supervision), by component",
           ["component"], registry=REGISTRY)
JOURNAL_PENDING = Gauge("fseflow_journal_pending_files", "received files journaled and not complete yet",
                        registry=REGISTRY)
RESTARTS = Counter("fseflow_restarts", "components restarted by serve's supervision, by component", ["component"],
                   registry=REGISTRY)
LAST_COMMIT = Gauge("fseflow_last_batch_timestamp_seconds", "when an agent last finished a batch (Unix time)",
                    ["agent"], registry=REGISTRY)


def serve(port: int) -> bool:
    """Expose /metrics on `port` (all interfaces: Prometheus scrapes from another host).

    A port already taken is logged and skipped: metrics never stop liquidation."""
    try:
        version = metadata.version("fseflow")
    except metadata.PackageNotFoundError:
        version = "unknown"
    import platform

    BUILD.info({"version": version, "python": platform.python_version()})
    try:
        start_http_server(port, registry=REGISTRY)
    except OSError as e:
        logging.getLogger("fseflow.stream").warning("metrics not served on port %d: %s", port, e.strerror)
        return False
    return True


def record_batch(agent: str, events: list[Any], seconds: float, highwater: Any = None) -> None:
    """Batch size, agent time and consumer lag of one batch of faust events (and, every 10 s,
    one log line of where this worker's time went)."""
    now = time.time()
    BATCH.labels(agent).observe(len(events))
    AGENT_SECONDS.labels(agent).inc(seconds)
    LAST_COMMIT.labels(agent).set(now)
    last: dict[tuple[str, int], Any] = {}
    for e in events:
        last[(e.message.topic, e.message.partition)] = e.message
    for (topic, partition), m in last.items():
        if m.timestamp:
            LAG_SECONDS.labels(topic, str(partition)).set(max(0.0, now - m.timestamp))
        if highwater is not None:
            hw = highwater(m.tp)
            if hw is not None:
                LAG_MESSAGES.labels(topic, str(partition)).set(max(0, hw - m.offset - 1))
    if now - _last_log[0] > 10:
        _last_log[0] = now
        logging.getLogger("fseflow.stream").info("agents: %s", summary())


def record_side_step(agent: str, topic: str, records: int, seconds: float, handed_at: dict[int, float]) -> None:
    """One step of an in-process side stream (the fraud step): records counted, time spent, and
    per partition how long its oldest record waited since it was handed over (the lag)."""
    now = time.time()
    BATCH.labels(agent).observe(records)
    AGENT_SECONDS.labels(agent).inc(seconds)
    LAST_COMMIT.labels(agent).set(now)
    for partition, at in handed_at.items():
        LAG_SECONDS.labels(topic, str(partition)).set(max(0.0, now - at))


_last_log = [time.time()]


def summary() -> str:
    """Seconds per agent, kernel seconds and volumes so far, from this registry."""
    value = REGISTRY.get_sample_value
    parts = [f"{a} {value('fseflow_agent_seconds_total', {'agent': a}) or 0:,.1f} s"
             for a in ("decode", "liquidate", "sink", "fraud")]
    parts.append(f"kernels {value('fseflow_kernel_seconds_total') or 0:,.1f} s")
    files = sum(value("fseflow_files_total", {"arl_status": s}) or 0 for s in "PLN")
    invoices = sum(value("fseflow_invoices_total", {"outcome": o}) or 0 for o in ("paid", "rejected"))
    parts.append(f"files {files:,.0f}, invoices {invoices:,.0f}, "
                 f"décomptes written {value('fseflow_decomptes_written_total') or 0:,.0f}")
    return ", ".join(parts)


def record_receipts(receipts: Iterable[dict[str, Any]]) -> None:
    for r in receipts:
        FILES.labels(r["arl_status"]).inc()
        FILE_BYTES.inc(r.get("size", 0))
        RECEPTION_TO_DECODED.observe(max(0.0, r["decoded_at"] - r["received_at"]))
        refused = r.get("n_lots_refused", 0)
        LOTS.labels("refused").inc(refused)
        LOTS.labels("accepted").inc(max(0, r.get("n_lots", 0) - refused))


def record_liquidated(records: Iterable[dict[str, Any]], decoded_at: np.ndarray | None = None,
                      liquidated_at: float | None = None) -> None:
    """Volumes of liquidated décomptes (outcome, budget, codes, cents) and decoded → liquidated."""
    if decoded_at is not None and liquidated_at is not None:
        for t in decoded_at.tolist():
            DECODED_TO_LIQUIDATED.observe(max(0.0, liquidated_at - t))
    invoices = {"paid": 0, "rejected": 0}
    lines: dict[tuple[str, str], int] = {}
    paid: dict[str, int] = {}
    codes: dict[str, int] = {}
    for rec in records:
        invoices[rec["status"]] += 1
        for r in rec["rejects"]:
            codes[r["code"]] = codes.get(r["code"], 0) + 1
        for line in rec["lines"]:
            key = (line["status"], line["budget"])
            lines[key] = lines.get(key, 0) + 1
            if line["paid_cents"]:
                paid[line["budget"]] = paid.get(line["budget"], 0) + line["paid_cents"]
    for outcome, n in invoices.items():
        if n:
            INVOICES.labels(outcome).inc(n)
    for (outcome, budget), n in lines.items():
        LINES.labels(outcome, budget).inc(n)
    for budget, cents in paid.items():
        PAID.labels(budget).inc(cents)
    for code, n in codes.items():
        REJECTS.labels(code).inc(n)


def record_written(records: Iterable[dict[str, Any]], inserted: int, written_at: float) -> None:
    for rec in records:
        RECEPTION_TO_DECOMPTE.observe(max(0.0, written_at - rec["received_at"]))
    DECOMPTES_WRITTEN.inc(inserted)


def record_state(partition: int, entries: int, nbytes: int) -> None:
    STATE_ENTRIES.labels(str(partition)).set(entries)
    STATE_BYTES.labels(str(partition)).set(nbytes)
