"""`fseflow demo`: one working day of flow through the stream pipeline, end to end.

Starts the services (embedded unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL name external ones),
migrates the schema, generates the day's flow, loads the directory, starts the workers, ingests
the files in arrival order and waits for the flow to drain, with progress bars; then prints the
summary from PostgreSQL (files, lots, paid vs rejected by code, amounts by budget and payee,
throughput, reception → décompte latency) and scores the décomptes against the generator's truth.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fseflow.report import console, print_alerts, print_beneficiary_alerts, print_delays, print_payments, print_summary, print_truth


#: the demo gives up when its workers had to be started again this many times
MAX_RESTARTS = 10


@dataclass
class DemoOptions:
    invoices: int = 56_000
    seed: int = 1
    population: int | None = None
    workers: int = 2
    partitions: int = 8
    out: Path | None = None


def run_demo(o: DemoOptions) -> int:
    from fseflow.generator import generate, manifest_files
    from fseflow.generator.fraud import FRAUD_DEFAULT_RATES
    from fseflow.infra import fraud_store
    from fseflow.infra import db, store
    from fseflow.infra.services import services
    from fseflow.offline import Summary
    from fseflow.stream.ingest import ingest
    from fseflow.stream.runner import PipelineError, Workers, wait_drained
    from fseflow.stream.supervisor import Supervisor
    from fseflow.stream.settings import Settings
    from fseflow.truth import TruthChecker

    c = console()
    folder = o.out or Path(tempfile.mkdtemp(prefix="fseflow-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    c.print(f"[bold]fseflow demo[/]: one working day, {o.invoices:,} invoices, {o.workers} worker(s), "
            f"{o.partitions} partitions, in {folder}")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    with services(folder / "services") as svc:
        timings["services"] = time.perf_counter() - t
        kind = lambda embedded: "embedded" if embedded else "external"  # noqa: E731
        c.print(f"services: Kafka {kind(svc.embedded_kafka)} at {svc.kafka_bootstrap}, "
                f"PostgreSQL {kind(svc.embedded_postgres)} ({timings['services']:.1f} s)")
        db.migrate(svc.database_url)
        t = time.perf_counter()
        flow = folder / "flow"
        # the fraud schemes at their realistic low rates, for the fraud side stream to find
        generate(flow, invoices=o.invoices, seed=o.seed, start_date=None, days=1, population=o.population,
                 fraud_rates=FRAUD_DEFAULT_RATES)
        timings["generate"] = time.perf_counter() - t
        c.print(f"generated the flow in {timings['generate']:.1f} s")
        t = time.perf_counter()
        db.load_reference(svc.database_url, flow / "beneficiaries.csv", flow / "professionals.csv")
        timings["load reference"] = time.perf_counter() - t
        c.print(f"loaded the directory into PostgreSQL in {timings['load reference']:.1f} s")
        files = manifest_files(flow)
        settings = Settings.from_env(svc.kafka_bootstrap, svc.database_url)
        settings = Settings(**{**settings.__dict__, "partitions": o.partitions})
        with Workers(settings, folder, count=o.workers, loglevel="info") as workers, db.connect(svc.database_url) as conn:
            bar = Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                           TimeElapsedColumn(), console=c)
            timings["workers ready"] = workers.wait_ready()
            c.print(f"{o.workers} worker(s) ready (directory loaded, group joined) in {timings['workers ready']:.1f} s;"
                    f" logs in {folder}/worker-*.log")
            ports = [workers.metrics_port(k) for k in range(o.workers) if workers.metrics_port(k)]
            if ports:
                c.print("metrics while it runs: " + ", ".join(f"http://127.0.0.1:{p}/metrics" for p in ports))
            with bar:
                sent = bar.add_task("ingested", total=len(files))
                done = bar.add_task("décomptes", total=None)
                t0 = time.perf_counter()
                ingest(files, settings, on_file=lambda _: bar.advance(sent))
                timings["ingest"] = time.perf_counter() - t0

                # a worker that dies is started again, as `serve` does (its state from PostgreSQL)
                sup = Supervisor(folder, workers)

                def show(p: Any) -> None:
                    bar.update(done, completed=p.decomptes, total=max(p.expected_invoices, 1))
                    sup.check()
                    if sup.restarts() > MAX_RESTARTS:
                        raise PipelineError(f"workers started again {sup.restarts()} times: see the logs\n"
                                            + workers.log_tail())

                wait_drained(conn, len(files), workers, timeout=1800, on_progress=show, ledger=True, fraud=True,
                             require_alive=False)
                timings["stream"] = time.perf_counter() - t0
            summary, checker = Summary(), TruthChecker(flow / "truth.jsonl")
            for rec in store.read_decomptes(conn):
                summary.add(rec)
                checker.add(rec)
            for rec in store.read_refused(conn):
                checker.add(rec)
            counts = store.counts(conn)
            lat = store.latency_percentiles(conn)
            lots, lots_refused = conn.execute("SELECT coalesce(sum(n_lots), 0), coalesce(sum(n_lots_refused), 0)"
                                              " FROM files").fetchone()
            # the month pass the workers' leader runs every few minutes, once more on the whole day
            for month in fraud_store.active_months(conn):
                fraud_store.score_month(conn, month)
            months = fraud_store.active_months(conn)
            alerts = fraud_store.top_month(conn, months[-1], 10) if months else []
            bene_alerts = fraud_store.top_beneficiaries(conn, None, 5)
            t = time.perf_counter()
            payments = pay_all(svc.database_url, folder / "payments")
            timings["payments"] = time.perf_counter() - t
    summary.files, summary.files_refused = counts["files"], counts["files_refused"]
    summary.lots, summary.lots_refused = int(lots), int(lots_refused)
    summary.bytes = sum(f.stat().st_size for f in files)
    summary.seconds = {"total": timings["stream"]}
    print_summary(summary)
    print_stream(timings, summary.invoices, lat)
    print_truth(checker.score())
    print_payments(*payments[:3])
    if payments[3] is not None:
        print_delays(payments[3])
    c.print(f"payment files in {folder / 'payments' / 'sepa'}, returns in {folder / 'payments' / 'returns'}")
    print_alerts(alerts, f"{months[-1]:%Y-%m}" if months else None)
    print_beneficiary_alerts(bene_alerts)
    return 0 if all(r.holds for r in payments[2]) else 1


def pay_all(database_url: str, folder: Path) -> tuple[list[Any], list[Any], list[Any], Any]:
    """The cut-off of every liquidation day of the flow, in order, then its reconciliation."""
    from fseflow.cutoff import pay_day
    from fseflow.delays import delay_report
    from fseflow.infra import db
    from fseflow.reconcile import reconcile

    runs, returns, checks = [], [], []
    with db.connect(database_url, autocommit=True) as conn:
        days = [r[0] for r in conn.execute("SELECT DISTINCT liquidation_date FROM decomptes"
                                           " WHERE liquidation_date IS NOT NULL ORDER BY 1")]
        for day in days:
            r, ret = pay_day(conn, day, folder)
            runs.extend(r)
            returns.append(ret)
        checks = [reconcile(conn, day, folder) for day in days]
        delays = delay_report(conn, days[0], days[-1]) if days else None
    return runs, returns, checks, delays


def print_stream(timings: dict[str, float], invoices: int, lat: dict[str, Any]) -> None:
    t = Table(title="stream pipeline", show_header=False)
    for k, v in timings.items():
        t.add_row(f"time: {k}", f"{v:.1f} s")
    t.add_row("throughput (ingest → last décompte)", f"{invoices / max(timings['stream'], 1e-9):,.0f} invoices/s")
    # the demo's day is ingested at once, so these latencies are mostly queueing behind the backlog;
    # `python -m fseflow.benchmarks.stream` measures them at a steady offered rate
    stages = {"liquidation": "reception → liquidated (day sent at once)",
              "written": "reception → décompte in PostgreSQL (day sent at once)"}
    for stage, label in stages.items():
        values = lat.get(stage) or {}
        if all(v is not None for v in values.values()):
            t.add_row(f"latency {label}", "  ".join(f"{k} {v * 1000:,.0f} ms" for k, v in values.items()))
    console().print(t)
