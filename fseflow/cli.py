"""The `fseflow` command: generate, liquidate, demo, db, worker, ingest, serve, pay, reconcile, report.

Errors the user can act on (unreadable input) print one line naming the file, record and
field, and exit 2; they never print a personal value.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson

from fseflow.days import to_days
from fseflow.exceptions import FseflowError, InputError

EXIT_INPUT = 2


def _date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {s!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fseflow", description="Claims processor of the military health-insurance fund (régime 08).")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a synthetic flow: B2 files, beneficiaries, professionals, truth")
    g.add_argument("--invoices", type=int, required=True, help="invoices to generate")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", type=Path, required=True, help="output folder")
    g.add_argument("--start-date", type=_date, default=None, help="first reception day (default: a recent Monday)")
    g.add_argument("--days", type=int, default=1, help="working days of flow")
    g.add_argument("--population", type=int, default=None, help="protected persons (default: full scale, 782,783)")
    g.add_argument("--fraud", action="store_true",
                   help="inject the fraud schemes at their default low rates (fraud_truth.jsonl)")

    lq = sub.add_parser("liquidate", help="decode, control and liquidate B2 files; write one décompte per invoice")
    lq.add_argument("files", nargs="+", type=Path, metavar="FILE.b2")
    lq.add_argument("--beneficiaries", type=Path, required=True)
    lq.add_argument("--professionals", type=Path, required=True)
    lq.add_argument("--out", type=Path, required=True, help="décomptes, JSON lines")
    lq.add_argument("--as-of", type=_date, default=None,
                    help="reception and liquidation date (default: each file's creation date)")
    lq.add_argument("--quiet", action="store_true", help="no progress bar")

    d = sub.add_parser("demo", help="one realistic working day through the stream pipeline, on embedded services")
    d.add_argument("--invoices", type=int, default=56_000, help="invoices (default: one working day, ~56,000)")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--population", type=int, default=None)
    d.add_argument("--workers", type=int, default=2, help="worker processes (default 2: one per core here)")
    d.add_argument("--partitions", type=int, default=8, help="partitions per topic (default 8)")
    d.add_argument("--out", type=Path, default=None, help="keep the flow, logs and services here (default: a temp folder)")
    d.add_argument("--offline", action="store_true", help="liquidate in this process, without Kafka and PostgreSQL")

    w = sub.add_parser("worker", help="run the stream agents (needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL)")
    w.add_argument("--loglevel", default="warn", choices=("crit", "error", "warn", "info", "debug"))
    w.add_argument("--roles", default="decode,liquidate,sink,fraud",
                   help="agents this worker runs, comma-separated (default all: decode,liquidate,sink,fraud; liquidate writes the ledger entries with the décomptes); "
                        "a worker per stage lets the stages use separate cores")

    ig = sub.add_parser("ingest", help="send B2 files to the pipeline (needs KAFKA_BOOTSTRAP_SERVERS)")
    ig.add_argument("files", nargs="+", type=Path, metavar="FILE.b2")
    ig.add_argument("--as-of", type=_date, default=None,
                    help="reception and liquidation date (default: each file's creation date)")

    sv = sub.add_parser("serve", help="intake from a drop folder, workers and services, until stopped")
    sv.add_argument("--spool", type=Path, required=True, help="drop folder (archive/ and quarantine/ inside)")
    sv.add_argument("--workers", type=int, default=1)
    sv.add_argument("--settle", type=float, default=1.0, help="seconds a file's size must stay still (default 1)")
    sv.add_argument("--payments", type=Path, default=None,
                    help="folder of the daily cut-off's sepa/ and returns/ (default ./.fseflow/payments)")
    sub.add_parser("status", help="what the `fseflow serve` of this folder says is up, and the files pending")

    bn = sub.add_parser("bench", help="every benchmark on embedded services; report.md and plots against "
                        "benchmarks/targets.toml")
    from fseflow.benchmarks.harness import parser as bench_parser

    bench_parser(bn)
    py = sub.add_parser("pay", help="daily cut-off: SEPA files per budget, returns per PS (DATABASE_URL, else ./.fseflow/)")
    py.add_argument("--date", type=_date, required=True, help="the liquidation day to cut off (YYYY-MM-DD)")
    py.add_argument("--out", type=Path, default=None, help="folder for sepa/ and returns/ (default ./.fseflow/payments)")
    rc = sub.add_parser("reconcile", help="check a cut-off to the cent (payments.md §6); exit 1 on a discrepancy")
    rc.add_argument("--date", type=_date, required=True)
    rc.add_argument("--out", type=Path, default=None, help="the folder `fseflow pay` wrote to")
    rp = sub.add_parser("report", help="reports from PostgreSQL")
    rp_sub = rp.add_subparsers(dest="report_command", required=True)
    dl = rp_sub.add_parser("delays", help="tiers-payant payment delays in working days (target 7)")
    dl.add_argument("--from", dest="start", type=_date, required=True)
    dl.add_argument("--to", dest="end", type=_date, required=True)

    fr = sub.add_parser("fraud", help="fraud side stream (DATABASE_URL, else ./.fseflow/)")
    fr_sub = fr.add_subparsers(dest="fraud_command", required=True)
    ft = fr_sub.add_parser("top", help="the alerted practitioners of a month (at most 1 %%), with their explanation "
                                       "and amount at stake")
    ft.add_argument("--date", type=_date, default=None, help="a care date of the month (default: the latest month)")
    ft.add_argument("--n", type=int, default=20)
    ft.add_argument("--days", action="store_true", help="the day alerts of the date (F01, F03, F04, F05, F06 rules) "
                                                       "instead of the month's")
    ft.add_argument("--beneficiaries", action="store_true", help="the beneficiary-day alerts (F03, F04, F06, F09; "
                                                                "pseudonymous beneficiary rows) of the date, else of every day")
    fs = fr_sub.add_parser("score", help="score the practitioner-months against their peers now (the workers' "
                                         "leader does it every FSEFLOW_FRAUD_MONTH_EVERY s)")
    fs.add_argument("--date", type=_date, default=None, help="a date of the month (default: every month)")

    db = sub.add_parser("db", help="the PostgreSQL database: DATABASE_URL, else an embedded server in ./.fseflow/")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="apply the pending schema migrations").set_defaults(db_cmd=cmd_db_migrate)
    lr = db_sub.add_parser("load-reference", help="load beneficiaries, PS directory and code tables (idempotent)")
    lr.add_argument("beneficiaries", type=Path, metavar="B.csv")
    lr.add_argument("professionals", type=Path, metavar="P.csv")
    lr.set_defaults(db_cmd=cmd_db_load_reference)
    return p


def cmd_generate(a: argparse.Namespace) -> int:
    from fseflow.generator import generate
    from fseflow.generator.fraud import FRAUD_DEFAULT_RATES

    t0 = time.perf_counter()
    summary = generate(a.out, invoices=a.invoices, seed=a.seed, start_date=a.start_date, days=a.days,
                       population=a.population, fraud_rates=FRAUD_DEFAULT_RATES if a.fraud else None)
    print(f"generated {summary.get('invoices', a.invoices):,} invoices in {summary.get('files', '?'):,} files "
          f"into {a.out} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


def _liquidate(files: list[Path], bene: Path, pros: Path, out: Path, as_of: dt.date | None, progress: bool,
               on_record=None):
    from fseflow.offline import Engine, liquidate_paths
    from fseflow.processors.directory import load_beneficiaries, load_professionals
    from fseflow.report import Progress

    t0 = time.perf_counter()
    engine = Engine(load_beneficiaries(bene), load_professionals(pros))
    load_s = time.perf_counter() - t0
    with Progress(len(files), enabled=progress) as bar, open(out, "wb") as fh:
        for rec in liquidate_paths(engine, files, None if as_of is None else to_days(as_of), on_file=bar.advance):
            fh.write(orjson.dumps(rec))
            fh.write(b"\n")
            if on_record is not None:
                on_record(rec)
    engine.summary.seconds["load"] = load_s
    engine.summary.seconds["total"] = time.perf_counter() - t0
    return engine.summary


def cmd_liquidate(a: argparse.Namespace) -> int:
    from fseflow.report import print_summary

    summary = _liquidate(list(a.files), a.beneficiaries, a.professionals, a.out, a.as_of, progress=not a.quiet)
    print_summary(summary, out=a.out)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    if a.offline:
        return _offline_demo(a)
    from fseflow.stream.demo import DemoOptions, run_demo

    return run_demo(DemoOptions(invoices=a.invoices, seed=a.seed, population=a.population, workers=a.workers,
                                partitions=a.partitions, out=a.out))


def _offline_demo(a: argparse.Namespace) -> int:
    from fseflow.generator import generate, manifest_files
    from fseflow.report import console, print_summary, print_truth
    from fseflow.truth import TruthChecker

    folder = a.out or Path(tempfile.mkdtemp(prefix="fseflow-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    console().print(f"[bold]fseflow demo --offline[/]: one working day, {a.invoices:,} invoices, in {folder}")
    t0 = time.perf_counter()
    flow = folder / "flow"
    generate(flow, invoices=a.invoices, seed=a.seed, start_date=None, days=1, population=a.population)
    console().print(f"generated the flow in {time.perf_counter() - t0:.1f} s")
    files = manifest_files(flow)
    checker = TruthChecker(flow / "truth.jsonl")
    summary = _liquidate(files, flow / "beneficiaries.csv", flow / "professionals.csv", folder / "decomptes.jsonl",
                         None, progress=True, on_record=checker.add)
    print_summary(summary, out=folder / "decomptes.jsonl")
    print_truth(checker.score())
    return 0


def _stream_settings(need_db: bool = True):  # type: ignore[no-untyped-def]
    from fseflow.stream.settings import Settings

    s = Settings.from_env()
    missing = [v for v, ok in (("KAFKA_BOOTSTRAP_SERVERS", s.kafka_bootstrap), ("DATABASE_URL", s.database_url or not need_db))
               if not ok]
    if missing:
        raise FseflowError(f"{' and '.join(missing)} not set: a worker joins running services "
                           "(`fseflow serve` and `fseflow demo` start embedded ones)")
    return s


def cmd_worker(a: argparse.Namespace) -> int:
    from fseflow.stream.worker import run_worker

    run_worker(_stream_settings(), loglevel=a.loglevel, roles=tuple(r.strip() for r in a.roles.split(",") if r.strip()))
    return 0


def cmd_ingest(a: argparse.Namespace) -> int:
    from fseflow.stream.ingest import ingest

    done = ingest(list(a.files), _stream_settings(need_db=False), None if a.as_of is None else to_days(a.as_of))
    print(f"ingested {done.files:,} files ({done.bytes / 1e6:.1f} MB) in {done.seconds:.1f} s", file=sys.stderr)
    return 0


#: seconds after SIGTERM past which `serve` ends its processes itself and exits (issue: within 10 s)
EXIT_DEADLINE = 9.0


def cmd_serve(a: argparse.Namespace) -> int:
    import contextlib
    import logging
    import os
    import signal
    import threading

    from fseflow.cutoff import DailyCutoff
    from fseflow.infra import db
    from fseflow.infra.services import DATABASE_ENV, DEFAULT_WORKDIR, KAFKA_ENV, EmbeddedKafka, EmbeddedPostgres
    from fseflow.report import console
    from fseflow.stream.runner import Workers
    from fseflow.stream.settings import Settings
    from fseflow.stream.spool import Spool
    from fseflow.stream.supervisor import Supervisor, end_orphans

    stop = threading.Event()
    started: list[Any] = []   # what a last-resort exit must end: workers, broker

    def deadline() -> None:
        # a call blocked on a frozen service must not hold SIGTERM past 10 s: end what was
        # started (every effect is idempotent in PostgreSQL) and exit
        time.sleep(EXIT_DEADLINE)
        logging.getLogger("fseflow.serve").error("serve: not stopped %.0f s after the signal: ending its processes",
                                                 EXIT_DEADLINE)
        for proc in started:
            with contextlib.suppress(Exception):
                proc.kill()
        os._exit(1)

    def on_signal(*_: Any) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=deadline, name="exit-deadline", daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    work = DEFAULT_WORKDIR.resolve()
    work.mkdir(parents=True, exist_ok=True)
    end_orphans(work)
    kafka = None if os.environ.get(KAFKA_ENV) else EmbeddedKafka(work)
    postgres = None if os.environ.get(DATABASE_ENV) else EmbeddedPostgres(work)
    workers: Workers | None = None
    try:
        bootstrap = kafka.start() if kafka else os.environ[KAFKA_ENV]
        url = postgres.start() if postgres else os.environ[DATABASE_ENV]
        db.migrate(url)
        settings = Settings.from_env(bootstrap, url)
        # serve's own registry (fseflow_up, restarts, journal), beside the workers' ports
        serve_port = int(os.environ.get("FSEFLOW_SERVE_METRICS_PORT", "9463"))
        if serve_port:
            from fseflow.stream import metrics

            metrics.serve(serve_port)
        workers = Workers(settings, work, count=a.workers)
        started.append(workers)
        if kafka is not None:
            started.append(kafka)
        with Spool(a.spool, settings, settle=a.settle) as spool:
            sup = Supervisor(work, workers, kafka, postgres, spool)
            sup.record_pids()
            # the daily cut-off (20:00 Europe/Paris) pays the day and reconciles it, beside the intake
            cutoffs = DailyCutoff(url, _payments_folder(a.payments))
            threading.Thread(target=cutoffs.run, args=(stop,), name="cut-off", daemon=True).start()
            console().print(f"serving {a.spool} with {a.workers} worker(s); Kafka {bootstrap}; "
                            f"next cut-off {cutoffs.due:%Y-%m-%d %H:%M %Z}; Ctrl-C to stop")
            while not stop.is_set():
                sup.check()
                if sup.up("broker") and sup.up("postgres"):
                    spool.poll()
                stop.wait(0.5)
    finally:
        # within 10 s in every state: workers get 6 s to stop, then SIGKILL (every effect is
        # idempotent in PostgreSQL, so a killed worker loses nothing)
        if workers is not None:
            workers.close(timeout=6.0)
        if kafka is not None:
            kafka.stop()
        if postgres is not None:
            postgres.stop()
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    """What a running `serve` says of its components, and what PostgreSQL says of the journal."""
    from fseflow.infra.services import DEFAULT_WORKDIR
    from fseflow.report import console
    from fseflow.stream.supervisor import read_status

    status = read_status(DEFAULT_WORKDIR.resolve())
    if status is None:
        print(f"no fseflow serve has run in {DEFAULT_WORKDIR.resolve()} (no status.json): start one with"
              " `fseflow serve --spool DIR`", file=sys.stderr)
        return 2
    age = time.time() - float(status["updated_at"])
    out = console()
    running = age < 5 and Path(f"/proc/{status['pid']}").exists()
    out.print(f"serve pid {status['pid']}: {'running' if running else f'not running (last seen {age:.0f} s ago)'};"
              f" spool {status['spool']}")
    for name, c in status["components"].items():
        state = "up" if c["up"] else ("waiting for " + c["waiting_for"] if c.get("waiting_for") else "DOWN")
        out.print(f"  {name:<10} {state:<24} restarts {c['restarts']}")
    pending = status.get("journal_pending")
    out.print(f"  journal: {'?' if pending is None else pending} file(s) received and not complete")
    return 0 if running and all(c["up"] for c in status["components"].values()) else 1


def _payments_folder(out: Path | None) -> Path:
    from fseflow.infra.services import DEFAULT_WORKDIR

    return out if out is not None else DEFAULT_WORKDIR / "payments"


@contextmanager
def _connection(migrate: bool = False) -> Iterator[Any]:
    """An autocommit connection to DATABASE_URL, else to the embedded server of ./.fseflow/."""
    from fseflow.infra import db, services

    with services.database(services.DEFAULT_WORKDIR) as url:
        if migrate:
            db.migrate(url)
        with db.connect(url, autocommit=True) as conn:
            yield conn


def cmd_pay(a: argparse.Namespace) -> int:
    from fseflow.cutoff import pay_day
    from fseflow.report import print_payments

    with _connection(migrate=True) as conn:
        runs, returns = pay_day(conn, a.date, _payments_folder(a.out))
    print_payments(runs, [returns])
    return 0


def cmd_reconcile(a: argparse.Namespace) -> int:
    from fseflow.reconcile import reconcile
    from fseflow.report import print_payments

    with _connection() as conn:
        result = reconcile(conn, a.date, _payments_folder(a.out))
    print_payments([], [], [result])
    return 0 if result.holds else 1


def cmd_report(a: argparse.Namespace) -> int:
    from fseflow.delays import delay_report
    from fseflow.report import print_delays

    with _connection() as conn:
        print_delays(delay_report(conn, a.start, a.end))
    return 0


def cmd_fraud(a: argparse.Namespace) -> int:
    from fseflow.infra import fraud_store
    from fseflow.report import print_alerts, print_beneficiary_alerts

    with _connection() as conn:
        if a.fraud_command == "score":
            months = [a.date.replace(day=1)] if a.date else fraud_store.active_months(conn)
            for m in months:
                print(f"{m:%Y-%m}: {fraud_store.score_month(conn, m):,} practitioners scored")
        elif a.beneficiaries:
            print_beneficiary_alerts(fraud_store.top_beneficiaries(conn, a.date, a.n), a.date)
        elif a.days:
            print_alerts(fraud_store.top_alerts(conn, a.date, a.n), a.date)
        else:
            months = fraud_store.active_months(conn)
            month = a.date.replace(day=1) if a.date else (months[-1] if months else None)
            print_alerts(fraud_store.top_month(conn, month, a.n) if month else [], month and f"{month:%Y-%m}")
    return 0


def cmd_db_migrate(a: argparse.Namespace) -> int:
    from fseflow.infra import db, services

    with services.database(services.DEFAULT_WORKDIR) as url:
        applied = db.migrate(url)
    print(f"applied {', '.join(applied)}" if applied else "database schema up to date")
    return 0


def cmd_db_load_reference(a: argparse.Namespace) -> int:
    from fseflow.infra import db, services

    t0 = time.perf_counter()
    with services.database(services.DEFAULT_WORKDIR) as url:
        db.migrate(url)  # idempotent: loading into a new database needs no separate step
        counts = db.load_reference(url, a.beneficiaries, a.professionals)
    for table in ("beneficiaries", "professionals"):
        print(f"{table}: {counts.pop(table):,} added, {counts.pop(table + '_changed'):,} changed")
    replaced = {t: n for t, n in counts.items() if n}
    print(f"code tables: {len(replaced)} of {len(counts)} replaced ({sum(replaced.values()):,} rows)")
    print(f"loaded in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from fseflow.benchmarks.harness import MissingMatplotlib, run

    try:
        return run(a)
    except MissingMatplotlib as e:
        print(f"fseflow bench: {e}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        return {"generate": cmd_generate, "liquidate": cmd_liquidate, "demo": cmd_demo,
                "db": lambda a: a.db_cmd(a), "worker": cmd_worker, "ingest": cmd_ingest,
                "serve": cmd_serve, "status": cmd_status, "bench": cmd_bench, "pay": cmd_pay, "reconcile": cmd_reconcile,
                "report": cmd_report, "fraud": cmd_fraud}[a.command](a)
    except InputError as e:
        print(f"fseflow: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except FseflowError as e:
        print(f"fseflow: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
