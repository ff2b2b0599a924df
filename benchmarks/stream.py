"""Stream benchmark: end-to-end throughput, latency at an offered rate, and the naive baseline.

    python -m fseflow.benchmarks.stream [--invoices 56000] [--population N] [--workers 2,1]
        [--partitions 8] [--rate 2000] [--latency-seconds 20] [--naive-invoices 3000]
        [--fraud-pairs 3] [--profile] [--quick] [--flow DIR] [--out DIR]

On real services (embedded Tansu and PostgreSQL, or KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL):
generates one working day of flow on the full-scale population, loads the directory once into a
template database, then every run gets a fresh copy of it and its own topic prefix:

1. throughput, for each worker count: start the workers, warm them up (group joined, directory
   and numba loaded, every partition's state restored) on the first files, then ingest the rest
   as fast as possible and wait until PostgreSQL holds every décompte and the fraud side stream
   has counted every décompte line. invoices/s counts from the first file sent to the last of
   those writes; peak RSS per worker is sampled every 0.2 s. Then `--fraud-pairs` pairs of runs
   with the fraud side stream off (FSEFLOW_FRAUD=0) and on: its cost is the median added pipeline
   CPU per invoice (workers, PostgreSQL, broker), beside the added time to the décomptes;
2. latency: warm workers fed at a steady `--rate` invoices/s; p50/p95/p99 of reception →
   liquidated and reception → décompte written, over the paced invoices only;
3. the naive baseline (benchmarks/naive_agent.py: one event per invoice, a faust Table) on the
   first `--naive-invoices` invoices of the same flow, its décomptes checked against the offline
   engine's;
4. with `--profile`, one more throughput run with py-spy attached to every worker: the functions
   by share of the samples (own time, and inclusive time of the project's functions).

Prints a plain table and writes the same figures to `<out>/stream-bench.json`. Not a test: it
reports targets as met or not met, whatever the figures are.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import replace, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

#: figures the pipeline is built for (README)
TARGET_THROUGHPUT = 50_000      # invoices/s end to end
TARGET_NAIVE_RATIO = 20.0       # batched / naive
TARGET_P99 = 0.250              # seconds, reception → décompte, at TARGET_RATE
TARGET_RATE = 2_000             # invoices/s offered
TARGET_RSS = 2 << 30            # bytes per worker with the full-scale directory
TARGET_FRAUD_COST = 0.10        # fraud side stream: added end-to-end time and CPU
IDLE_SAMPLE_S = 5.0             # warm pipeline left idle before a throughput run: its polling CPU
YEAR_INVOICES = 14_000_000
FULL_SCALE = 782_783

QUICK = {"invoices": 8_000, "population": 100_000, "latency_seconds": 10.0, "naive_invoices": 1_000, "workers": "2"}


# --------------------------------------------------------------------------- flow and databases

@dataclass(frozen=True)
class FlowFile:
    path: Path
    invoices: int   # as the generator's manifest counts them


def flow_files(flow: Path) -> list[FlowFile]:
    """The generated files in arrival order, with their invoice counts (manifest.csv)."""
    with open(flow / "manifest.csv", encoding="utf-8", newline="") as fh:
        return [FlowFile(flow / "b2" / row["file"], int(row["invoices"])) for row in csv.DictReader(fh)]


def take(files: list[FlowFile], invoices: float) -> list[FlowFile]:
    """The first files holding about `invoices` invoices (at least one file)."""
    out, n = [], 0
    for f in files:
        if out and n >= invoices:
            break
        out.append(f)
        n += f.invoices
    return out


class Databases:
    """Fresh databases on the server of `server_url`, copied from a template holding the directory."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.server_url, autocommit=True)

    def url(self, name: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self.server_url, dbname=name)

    def create(self, template: str | None = None) -> str:
        """A new database (a copy of `template` if given); returns its name."""
        from psycopg import errors, sql

        name = f"fseflow_bench_{uuid.uuid4().hex[:10]}"
        with self._admin() as conn:
            if template is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            else:
                try:  # FILE_COPY (PostgreSQL 15+) copies the files: much faster than WAL_LOG for 1 GB
                    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                        sql.Identifier(name), sql.Identifier(template)))
                except errors.SyntaxError:
                    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template)))
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            try:
                self.drop(name)
            except Exception as e:  # noqa: BLE001 - cleanup must go on
                print(f"(could not drop database {name}: {type(e).__name__})", file=sys.stderr)


# --------------------------------------------------------------------------- measurement helpers

class RssSampler:
    """Peak resident memory of each worker process (with its children), sampled every `every` s."""

    def __init__(self, workers: Any, every: float = 0.2) -> None:
        self.workers, self.every = workers, every
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        for k, proc in enumerate(list(self.workers.procs)):
            try:
                p = psutil.Process(proc.pid)
                rss = p.memory_info().rss
                for child in p.children(recursive=True):
                    try:
                        rss += child.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                continue
            self.peak[k] = max(self.peak.get(k, 0), rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


class CpuMeter:
    """CPU seconds used on the machine between start() and stop(), by kind of process."""

    def __init__(self, worker_pids: list[int], own_backends: tuple[int, ...] = (), conn: Any = None) -> None:
        self.worker_pids = set(worker_pids)
        # the PostgreSQL backends serving the benchmark's polling: its cost, not the pipeline's
        self.own_backends = set(own_backends)
        self.conn = conn  # to find the fraud side stream's backends (by application_name)
        self.fraud_backends: set[int] = set()
        self.t0 = 0.0
        self.seconds = 0.0
        self.start_times: dict[tuple[int, float], float] = {}
        self.by_kind: dict[str, float] = {}

    def _kind(self, p: Any) -> str:
        name = (p.info.get("name") or "").lower()
        if p.pid in self.worker_pids or (p.info.get("ppid") in self.worker_pids):
            return "workers"
        if p.pid == os.getpid() or p.pid in self.own_backends:
            return "benchmark (ingest, polling)"
        if name.startswith("postgres"):
            return FRAUD_PG if p.pid in self.fraud_backends else "postgresql"
        if "tansu" in name:
            return "broker (tansu)"
        if "py-spy" in name:
            return "profiler (py-spy)"
        return "other"

    def _snapshot(self) -> dict[tuple[int, float], tuple[str, float]]:
        import psutil

        from fseflow.stream.app import FRAUD_THREAD

        if self.conn is not None:
            self.fraud_backends |= {r[0] for r in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (FRAUD_THREAD,))}
            self.conn.commit()
        out = {}
        for p in psutil.process_iter(["name", "ppid", "cpu_times", "create_time"]):
            t = p.info.get("cpu_times")
            if t is None:
                continue
            kind, used = self._kind(p), t.user + t.system
            if p.pid in self.worker_pids:
                # the fraud step's thread (named for the OS by the worker): its own CPU
                fraud = _thread_cpu(p, FRAUD_THREAD)
                out[(p.pid, -p.info["create_time"])] = (FRAUD_THREAD_KIND, fraud)
                used -= fraud
            out[(p.pid, p.info["create_time"])] = (kind, used)
        return out

    def start(self) -> "CpuMeter":
        self.t0 = time.perf_counter()
        self.start_times = {k: v for k, (_, v) in self._snapshot().items()}
        return self

    def stop(self) -> dict[str, Any]:
        self.seconds = time.perf_counter() - self.t0
        used: Counter[str] = Counter()
        for k, (kind, t) in self._snapshot().items():
            used[kind] += t - self.start_times.get(k, 0.0)
        cores = os.cpu_count() or 1
        self.by_kind = {k: round(v, 2) for k, v in used.most_common()}
        return {"wall_s": self.seconds, "cpu_s": self.by_kind,
                "machine_busy": sum(used.values()) / (cores * self.seconds) if self.seconds else None}


def _thread_cpu(p: Any, name: str) -> float:
    """CPU seconds of process p's threads whose OS name is `name` (Linux; 0 elsewhere)."""
    total = 0.0
    try:
        for t in p.threads():
            try:
                comm = Path(f"/proc/{p.pid}/task/{t.id}/comm").read_text().strip()
            except OSError:
                continue
            if comm == name:
                total += t.user_time + t.system_time
    except Exception:  # noqa: BLE001 - a process that ended: nothing to add
        return 0.0
    return total


def drained_since(conn: Any, since: float) -> tuple[int, float]:
    """Décomptes of the files received since `since` (epoch s), and when the last one was written."""
    n, last = conn.execute("SELECT count(*), extract(epoch FROM max(written_at)) FROM decomptes"
                           " WHERE received_at >= to_timestamp(%s)", (since,)).fetchone()
    conn.commit()
    return int(n), float(last or since)


def latency_since(conn: Any, since: float) -> dict[str, Any]:
    """p50/p95/p99/max (s) of reception → liquidated and → written, over décomptes received since `since`.

    `store.latency_percentiles` restricted to the paced files (the warm-up ones are earlier)."""
    row = conn.execute("""
        SELECT count(*),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM liquidated_at - received_at)),
               max(extract(epoch FROM liquidated_at - received_at)),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM written_at - received_at)),
               max(extract(epoch FROM written_at - received_at)),
               extract(epoch FROM max(received_at) - min(received_at))
        FROM decomptes WHERE received_at >= to_timestamp(%s)""", (since,)).fetchone()
    conn.commit()
    n, liq, liq_max, wr, wr_max, span = row

    def named(values: Any, top: Any) -> dict[str, float | None]:
        vals = [float(v) for v in values] if values else [None, None, None]
        return {**dict(zip(("p50", "p95", "p99"), vals)), "max": None if top is None else float(top)}

    hops = conn.execute("""
        SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM f.decoded_at - d.received_at)),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM d.liquidated_at - f.decoded_at)),
               percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM d.written_at - d.liquidated_at))
        FROM decomptes d JOIN files f ON f.file_id = d.file_id AND f.duplicate_of IS NULL
        WHERE d.received_at >= to_timestamp(%s)""", (since,)).fetchone()
    conn.commit()
    names = ("received → decoded", "decoded → liquidated", "liquidated → written")
    return {"n": int(n), "liquidation": named(liq, liq_max), "written": named(wr, wr_max),
            "hops": {k: named(v, None) for k, v in zip(names, hops or (None, None, None))},
            "reception_span_s": None if span is None else float(span)}


# --------------------------------------------------------------------------- profiling (py-spy)

class Profiler:
    """py-spy attached to each worker (raw collapsed stacks), stopped with SIGINT."""

    RATE = 100

    def __init__(self, pids: list[int], out: Path) -> None:
        self.out = out
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.t0 = 0.0
        self.seconds = 0.0
        exe = shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("py-spy not found (pip install py-spy)")
        for k, pid in enumerate(pids):
            path = out / f"worker-{k}.collapsed.txt"
            log = open(out / f"py-spy-{k}.log", "wb")
            cmd = [exe, "record", "--pid", str(pid), "--rate", str(self.RATE), "--format", "raw", "--function",
                   "--nonblocking", "--duration", "3600", "-o", str(path)]
            self.procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), path))
        self.t0 = time.perf_counter()

    def stop(self) -> list[Path]:
        self.seconds = time.perf_counter() - self.t0
        paths = []
        for proc, path in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if path.exists():
                paths.append(path)
        return paths


#: top folders of the repository (py-spy names frames by path relative to sys.path)
_PROJECT = ("fseflow/", "codecs/", "processors/", "stream/", "infra/", "benchmarks/")


def _frame_label(frame: str, root: str) -> tuple[str, bool]:
    """The frame as py-spy names it (`func (path:line)`), and whether it is the project's code."""
    where = frame.rpartition(" (")[2]
    return frame, where.startswith(_PROJECT) or where.startswith(root)


#: the worker's entry frames, above the agents (inclusive share ~100 %: not worth a line)
_ENTRY = ("fseflow/cli.py", "stream/worker.py")
_AGENTS = {"decode_files (stream/app.py": "decode agent", "liquidate (stream/app.py": "liquidate agent",
           "sink (stream/app.py": "sink agent"}


def _agent(stack: str) -> str:
    for frame, name in _AGENTS.items():
        if frame in stack:
            return name
    if "WorkerThread.run" in stack:
        return "consumer thread (aiokafka)"
    return "faust, asyncio and the rest"


def aggregate_profile(paths: list[Path], root: str, top: int = 15, expected_samples: float = 0.0) -> dict[str, Any]:
    """Own-time and inclusive shares by function over the collapsed stacks of every worker."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    agents: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text("utf-8", "replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [_frame_label(f, root) for f in stack.split(";")]
            own[frames[-1][0]] += n
            for label in {label for label, ours in frames if ours and not label.rpartition(" (")[2].startswith(_ENTRY)}:
                incl[label] += n
            agents[_agent(stack)] += n

    def rows(c: Counter[str]) -> list[dict[str, Any]]:
        return [{"function": f, "samples": n, "share": n / total if total else 0.0} for f, n in c.most_common(top)]

    return {"samples": total, "busy_share": total / expected_samples if expected_samples else None,
            "by_agent": {k: n / total for k, n in agents.most_common()} if total else {},
            "own": rows(own), "inclusive_project": rows(incl)}


# --------------------------------------------------------------------------- the runs

@dataclass
class Context:
    settings: Any            # base Settings (services' addresses, partitions)
    dbs: Databases
    template: str
    files: list[FlowFile]
    warm: list[FlowFile]     # warm-up files (the flow's first)
    out: Path


@contextmanager
def pipeline(ctx: Context, name: str, workers: int, fraud: bool = True) -> Iterator[tuple[Any, Any, Any, Path]]:
    """A fresh database and topic prefix, `workers` worker processes warmed up on `ctx.warm`
    (with the fraud side stream, or without it)."""
    from dataclasses import replace

    from fseflow.infra import db
    from fseflow.stream.ingest import ingest
    from fseflow.stream.runner import Workers, wait_drained

    workdir = ctx.out / name
    workdir.mkdir(parents=True, exist_ok=True)
    dbname = ctx.dbs.create(ctx.template)
    settings = replace(ctx.settings, database_url=ctx.dbs.url(dbname), prefix=f"b{uuid.uuid4().hex[:8]}.",
                       fraud=fraud)
    try:
        with Workers(settings, workdir, count=workers) as w, db.connect(settings.database_url) as conn, \
                RssSampler(w) as rss:
            t0 = time.perf_counter()
            if hasattr(w, "wait_ready"):  # every worker has joined the group, its directory loaded
                w.wait_ready(timeout=600)
            t_ready = time.perf_counter() - t0
            # the warm-up files reach every partition: numba loaded, state restored, connections open
            ingest([f.path for f in ctx.warm], settings)
            wait_drained(conn, len(ctx.warm), w, timeout=600, poll=0.1, fraud=fraud)
            time.sleep(1.0)  # the last commits and changelog writes of the warm-up settle
            print(f"  [{name}] {workers} worker(s) ready in {t_ready:.1f} s, warm in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            yield settings, w, conn, rss
    finally:
        ctx.dbs.drop(dbname)
        drop_topics(settings.kafka_bootstrap, settings.prefix)


def drop_topics(bootstrap: str, prefix: str) -> None:
    """Delete a run's topics (faust's changelogs too): the embedded broker keeps every record in
    memory, and runs that follow must not pay for the ones before (best effort)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        for fut in (admin.delete_topics(names, operation_timeout=30).values() if names else ()):
            fut.result()
    except Exception as e:  # noqa: BLE001 - a broker without DeleteTopics keeps them
        print(f"(could not delete the run's topics: {type(e).__name__}: {e})", file=sys.stderr)


def fraud_done_since(conn: Any, since: float) -> float:
    """When the fraud side stream last added to its sums (epoch s; `since` if it did not)."""
    row = conn.execute("SELECT extract(epoch FROM max(updated_at)) FROM fraud_practitioner_days").fetchone()
    conn.commit()
    return max(since, float(row[0] or since))


def run_throughput(ctx: Context, files: list[FlowFile], workers: int, profile: bool = False,
                   collect: Callable[[Any, float], Any] | None = None, fraud: bool = True) -> dict[str, Any]:
    """`collect(conn, since)`, if given, reads the run's database before it is dropped (its result
    is the `series` entry). With `fraud`, the run ends when the fraud side stream has counted
    every décompte line too; without, the workers run no fraud step at all."""
    from fseflow.stream.ingest import ingest
    from fseflow.stream.runner import wait_drained

    name = f"throughput-{workers}w" + ("-profiled" if profile else "") + ("" if fraud else "-nofraud")
    with pipeline(ctx, name, workers, fraud=fraud) as (settings, w, conn, rss):
        # the pipeline polls while it waits (consumers' fetches, the broker answering them): the
        # CPU per second it burns idle, measured first, is paid per second of wall time, not per
        # invoice (fraud_cost compares the work above it)
        idle = CpuMeter([p.pid for p in w.procs], own_backends=(conn.info.backend_pid,)).start()
        time.sleep(IDLE_SAMPLE_S)
        idle_used = idle.stop()
        prof = Profiler([p.pid for p in w.procs], ctx.out / name) if profile else None
        cpu = CpuMeter([p.pid for p in w.procs], own_backends=(conn.info.backend_pid,), conn=conn).start()
        since = time.time()
        t0 = time.perf_counter()
        sent = ingest([f.path for f in files], settings)
        t_ingest = time.perf_counter() - t0
        wait_drained(conn, len(ctx.warm) + len(files), w, timeout=3600, poll=0.25, fraud=fraud)
        wall = time.perf_counter() - t0
        used = cpu.stop()
        paths = prof.stop() if prof else []
        n, last_written = drained_since(conn, since)
        last = max(last_written, fraud_done_since(conn, since)) if fraud else last_written
        elapsed = min(wall, last - since)  # the poll's period is not the pipeline's time
        peak = [rss.peak.get(k, 0) for k in range(workers)]
        series = collect(conn, since) if collect else None
    res: dict[str, Any] = {
        "workers": workers, "fraud": fraud, "files": len(files), "invoices": n, "bytes": sent.bytes,
        "ingest_s": t_ingest, "elapsed_s": elapsed, "decomptes_s": min(wall, last_written - since), "invoices_per_s": n / elapsed, "files_per_s": len(files) / elapsed,
        "year_hours": YEAR_INVOICES / (n / elapsed) / 3600, "peak_rss_bytes": peak, "cpu": used,
        "idle_cpu_per_s": {k: v / idle_used["wall_s"] for k, v in idle_used["cpu_s"].items()},
    }
    if collect:
        res["series"] = series
    if prof:
        import fseflow

        root = str(Path(fseflow.__file__).resolve().parent.parent)
        res["profile"] = aggregate_profile(paths, root, expected_samples=Profiler.RATE * prof.seconds * workers)
        res["profile"]["files"] = [str(p) for p in paths]
    return res


#: the processes of the pipeline in CpuMeter's kinds (not the benchmark's polling nor a profiler)
FRAUD_THREAD_KIND = "workers: fraud thread"
FRAUD_PG = "postgresql: fraud backend"
#: the fraud side stream's own CPU, read from its thread and its PostgreSQL backend
FRAUD_KINDS = (FRAUD_THREAD_KIND, FRAUD_PG)
PIPELINE_KINDS = ("workers", "postgresql", "broker (tansu)") + FRAUD_KINDS


def fraud_cost(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """The fraud side stream's cost: pairs of throughput runs of the same flow, with and without it.

    Per pair, the added pipeline CPU per invoice (the cost), the added time until the décomptes are
    written (does fraud slow liquidation?) and until the fraud sums are complete too. One run on
    this 2-core machine varies by tens of percent, so the verdict is the median over the pairs.
    Steadier, from each 'on' run alone: the side stream's own CPU (its thread, its PostgreSQL
    backend) over the rest of the pipeline's; beside it, the broker CPU it adds, pooled."""
    def view(t: dict[str, Any]) -> dict[str, Any]:
        cpu = sum(t["cpu"]["cpu_s"].get(k, 0.0) for k in PIPELINE_KINDS)
        # after the last décompte the pipeline only polls, but for the fraud side stream's last
        # batching window: that tail is charged at the idle rate, the rest is work (conservative:
        # polling while busy is not subtracted)
        tail = max(0.0, t["cpu"]["wall_s"] - t["decomptes_s"])
        idle = sum(t.get("idle_cpu_per_s", {}).get(k, 0.0) for k in PIPELINE_KINDS) * tail
        return {"elapsed_s": t["elapsed_s"], "decomptes_s": t["decomptes_s"], "invoices": t["invoices"],
                "invoices_per_s": t["invoices_per_s"], "pipeline_cpu_s": cpu, "idle_cpu_s": idle,
                "work_cpu_s": cpu - idle, "cpu_s": t["cpu"]["cpu_s"]}

    def added(v_on: dict[str, Any], v_off: dict[str, Any], key: str) -> float:
        return (v_on[key] / max(v_on["invoices"], 1)) / (v_off[key] / max(v_off["invoices"], 1)) - 1

    rows = []
    for on, off in pairs:
        v_on, v_off = view(on), view(off)
        own = sum(v_on["cpu_s"].get(k, 0.0) for k in FRAUD_KINDS)
        rows.append({"on": v_on, "off": v_off, "cpu_increase": added(v_on, v_off, "pipeline_cpu_s"),
                     # same run, no pairing: the side stream's own thread and backend / the rest
                     "own_cpu_s": own, "own_share": own / max(v_on["pipeline_cpu_s"] - own, 1e-9),
                     "work_increase": added(v_on, v_off, "work_cpu_s"),
                     "time_increase": added(v_on, v_off, "elapsed_s"),
                     "decomptes_increase": added(v_on, v_off, "decomptes_s")})
    med = lambda k: float(statistics.median(r[k] for r in rows))
    broker = lambda side: sum(r[side]["cpu_s"].get("broker (tansu)", 0.0) for r in rows)
    return {"workers": pairs[0][0]["workers"], "pairs": rows, "cpu_increase": med("cpu_increase"),
            "work_increase": med("work_increase"), "own_share": med("own_share"),
            # what the side stream adds outside its thread and backend (fse.lines through the broker),
            # pooled over the pairs, as a share of the pipeline off: noisy
            "broker_increase": (broker("on") - broker("off"))
            / max(sum(r["off"]["pipeline_cpu_s"] for r in rows), 1e-9),
            "time_increase": med("time_increase"), "decomptes_increase": med("decomptes_increase")}


def run_latency(ctx: Context, files: list[FlowFile], workers: int, rate: float,
                collect: Callable[[Any, float], Any] | None = None) -> dict[str, Any]:
    from fseflow.stream.ingest import ingest
    from fseflow.stream.runner import wait_drained

    per_file = sum(f.invoices for f in files) / len(files)
    files_per_s = rate / per_file
    with pipeline(ctx, f"latency-{workers}w", workers) as (settings, w, conn, _):
        since = time.time()
        sent = ingest([f.path for f in files], settings, rate=files_per_s)
        t_sent = time.time()
        wait_drained(conn, len(ctx.warm) + len(files), w, timeout=600, poll=0.25)
        _, last_written = drained_since(conn, since)
        tail = max(0.0, last_written - t_sent)
        lat = latency_since(conn, since)
        series = collect(conn, since) if collect else None
    res = {"workers": workers, "offered_invoices_per_s": rate, "files_per_s": files_per_s,
           "files": len(files), "invoices": lat["n"], "ingest_s": sent.seconds,
           "achieved_invoices_per_s": lat["n"] / sent.seconds if sent.seconds else None,
           "drain_after_last_send_s": tail, **{k: lat[k] for k in ("liquidation", "written", "hops")}}
    if collect:
        res["series"] = series
    return res


def run_naive_bench(ctx: Context, flow: Path, k: int) -> dict[str, Any]:
    from dataclasses import replace

    from fseflow.benchmarks.naive_agent import run_naive
    from fseflow.infra import store
    from fseflow.offline import Engine
    from fseflow.processors.directory import load_beneficiaries, load_professionals
    from fseflow.stream.ingest import received

    chosen = take(ctx.files, k)
    items = [(received(f.path.read_bytes(), f.path.name), 0, i) for i, f in enumerate(chosen)]
    dbname = ctx.dbs.create(ctx.template)
    settings = replace(ctx.settings, database_url=ctx.dbs.url(dbname), prefix=f"n{uuid.uuid4().hex[:8]}.")
    try:
        res = run_naive(settings, items, ctx.out / "naive", limit=k)
    finally:
        ctx.dbs.drop(dbname)
    # the naive agent's décomptes against the offline engine's on the same files, in order
    engine = Engine(load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv"))
    want = {(r["file"], r["record"]): r for rec, _, _ in items
            for r in engine.liquidate_file(rec.data, rec.name) if "lines" in r}
    keys = {(r["file"], r["record"]) for r in res.records}
    differ = sum(1 for r in res.records if store.as_offline(r) != want.get((r["file"], r["record"])))
    return {"invoices": res.invoices, "seconds": res.seconds, "invoices_per_s": res.invoices_per_s,
            "decomptes_on_topic": res.decomptes, "distinct_decomptes": len(keys),
            "changelog_records": res.changelog_records, "table_keys": res.table_keys,
            "state_hits": res.state_hits, "decomptes_differing_from_offline": differ,
            "correct": res.decomptes == res.invoices == len(keys) and differ == 0
                       and res.changelog_records == res.invoices}


# --------------------------------------------------------------------------- report

def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:,.0f} ms"


def _gib(v: float) -> str:
    return f"{v / (1 << 30):.2f} GiB"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def report(r: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    cfg = r["config"]
    add(f"stream benchmark: {cfg['invoices']:,} invoices/day flow, population {cfg['population']:,}, "
        f"{cfg['partitions']} partitions, {r['machine']['cpus']} CPUs")
    add("setup: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["setup_s"].items()))
    add("")
    add("1. throughput, end to end (first file sent → last décompte in PostgreSQL; warm workers)")
    add(f"   {'workers':>7} {'files':>6} {'invoices':>9} {'ingest':>8} {'elapsed':>8} {'invoices/s':>11} "
        f"{'files/s':>8} {'14M (year)':>11}  peak RSS per worker")
    for t in r["throughput"]:
        add(f"   {t['workers']:>7} {t['files']:>6,} {t['invoices']:>9,} {t['ingest_s']:>7.1f}s {t['elapsed_s']:>7.1f}s "
            f"{t['invoices_per_s']:>11,.0f} {t['files_per_s']:>8,.0f} {t['year_hours']:>9.2f} h  "
            + ", ".join(_gib(b) for b in t["peak_rss_bytes"]))
    for t in r["throughput"]:
        c = t["cpu"]
        add(f"   CPU during the {t['workers']}-worker run ({c['wall_s']:.1f} s, machine {c['machine_busy']:.0%} busy): "
            + ", ".join(f"{k} {v:.1f} s" for k, v in c["cpu_s"].items()))
    fc = r.get("fraud_cost")
    if fc:
        add("")
        add(f"   fraud side stream cost ({fc['workers']} worker(s), same flow, {len(fc['pairs'])} pairs of runs "
            "off/on; 'elapsed' ends when the fraud sums hold every décompte line, 'décomptes' when PostgreSQL "
            "holds every décompte)")
        add(f"   {'pair':>4} {'elapsed off → on':>18} {'décomptes off → on':>20} {'pipeline CPU off → on':>23}"
            f" {'idle tail':>13} {'added CPU':>10} {'added work':>11}")
        for k, p in enumerate(fc["pairs"], 1):
            off, on = p["off"], p["on"]
            add(f"   {k:>4} {off['elapsed_s']:>7.1f} → {on['elapsed_s']:>5.1f} s {off['decomptes_s']:>9.1f} → "
                f"{on['decomptes_s']:>5.1f} s {off['pipeline_cpu_s']:>11.1f} → {on['pipeline_cpu_s']:>5.1f} s "
                f"{off['idle_cpu_s']:>5.1f}, {on['idle_cpu_s']:>4.1f} s {p['cpu_increase']:>+10.1%} {p['work_increase']:>+11.1%}")
        add(f"   median: pipeline CPU (workers, PostgreSQL, broker) {fc['cpu_increase']:+.1%}; its work, without the "
            f"idle polling after the last décompte (CPU/s of the warm pipeline idle × those seconds) "
            f"{fc['work_increase']:+.1%}; time "
            f"until the décomptes are written {fc['decomptes_increase']:+.1%}, until the fraud sums are complete "
            f"{fc['time_increase']:+.1%}")
        add(f"   the side stream's own CPU (its thread in the workers, its PostgreSQL backend) over the rest of "
            f"the pipeline's in the same run: " + ", ".join(f"{p['own_share']:+.1%}" for p in fc["pairs"])
            + f"; median {fc['own_share']:+.1%}. Broker CPU added (fse.lines), pooled, as a share of the "
            f"pipeline off: {fc['broker_increase']:+.1%}")
        add("   CPU by process, off → on, summed over the pairs: " + ", ".join(
            f"{k} {sum(p['off']['cpu_s'].get(k, 0.0) for p in fc['pairs']):.1f} → "
            f"{sum(p['on']['cpu_s'].get(k, 0.0) for p in fc['pairs']):.1f} s" for k in PIPELINE_KINDS))
    lat = r.get("latency")
    if lat:
        add("")
        add(f"2. latency at {lat['offered_invoices_per_s']:,.0f} invoices/s offered ({lat['files_per_s']:.0f} files/s, "
            f"{lat['workers']} workers): {lat['invoices']:,} invoices in {lat['ingest_s']:.1f} s, "
            f"achieved {lat['achieved_invoices_per_s']:,.0f} invoices/s; drained {lat['drain_after_last_send_s']:.2f} s "
            "after the last file")
        for key, label in (("liquidation", "reception → liquidated"), ("written", "reception → décompte written")):
            v = lat[key]
            add(f"   {label:<30} p50 {_ms(v['p50']):>9}  p95 {_ms(v['p95']):>9}  p99 {_ms(v['p99']):>9}  "
                f"max {_ms(v['max']):>9}")
        for label, v in lat.get("hops", {}).items():
            add(f"     hop {label:<26} p50 {_ms(v['p50']):>9}  p95 {_ms(v['p95']):>9}  p99 {_ms(v['p99']):>9}")
    nv = r.get("naive")
    if nv:
        add("")
        add("3. naive agent (one event per invoice, faust Table state; liquidation only, no decode, no PostgreSQL):")
        add(f"   {nv['invoices']:,} invoices in {nv['seconds']:.2f} s = {nv['invoices_per_s']:,.0f} invoices/s; "
            f"{nv['decomptes_on_topic']:,} décomptes on its topic ({nv['distinct_decomptes']:,} distinct), "
            f"{nv['changelog_records']:,} Table changelog records, {nv['table_keys']:,} Table keys, "
            f"{nv['state_hits']:,} invoices found state; differing from offline: "
            f"{nv['decomptes_differing_from_offline']} -> {'correct' if nv['correct'] else 'WRONG'}")
        for t in r["throughput"]:
            add(f"   batched ({t['workers']} worker(s), end to end) / naive = "
                f"{t['invoices_per_s'] / nv['invoices_per_s']:.1f} x")
    prof = next((t["profile"] for t in r.get("profiled", []) if "profile" in t), None)
    if prof:
        pt = r["profiled"][0]
        add("")
        busy = f", workers busy {prof['busy_share']:.0%} of the time" if prof["busy_share"] is not None else ""
        add(f"4. profile (py-spy, {pt['workers']} worker(s), run at {pt['invoices_per_s']:,.0f} invoices/s under "
            f"the profiler; {prof['samples']:,} samples{busy})")
        add("   by agent: " + ", ".join(f"{k} {v:.0%}" for k, v in prof["by_agent"].items()))
        add("   own time by function (time in C code — orjson, numba, psycopg — counts in its Python caller):")
        for row in prof["own"]:
            add(f"   {row['share']:>6.1%}  {row['function']}")
        add("   inclusive time, project functions:")
        for row in prof["inclusive_project"]:
            add(f"   {row['share']:>6.1%}  {row['function']}")
    add("")
    add("5. targets")
    for t in r["targets"]:
        add(f"   {t['what']:<52} {t['value']:>22}   target {t['target']:<14} {_met(t['met'])}")
    return "\n".join(lines)


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    first = r["throughput"][0]
    out.append({"what": f"throughput end to end ({first['workers']} workers)", "value": f"{first['invoices_per_s']:,.0f}/s",
                "target": f">= {TARGET_THROUGHPUT:,}/s", "met": first["invoices_per_s"] >= TARGET_THROUGHPUT})
    nv = r.get("naive")
    if nv:
        ratio = first["invoices_per_s"] / nv["invoices_per_s"]
        out.append({"what": "batched / naive agent", "value": f"{ratio:.1f} x", "target": f">= {TARGET_NAIVE_RATIO:.0f} x",
                    "met": ratio >= TARGET_NAIVE_RATIO})
    lat = r.get("latency")
    if lat:
        p99 = lat["written"]["p99"]
        at = lat["offered_invoices_per_s"]
        out.append({"what": f"p99 reception → décompte written at {at:,.0f}/s", "value": _ms(p99),
                    "target": f"<= {TARGET_P99 * 1000:.0f} ms at {TARGET_RATE:,}/s",
                    "met": None if at < TARGET_RATE or p99 is None else p99 <= TARGET_P99})
    fc = r.get("fraud_cost")
    if fc:
        out.append({"what": f"fraud side stream: added pipeline work CPU (median of {len(fc['pairs'])})",
                    "value": f"{fc['work_increase']:+.1%}", "target": f"<= {TARGET_FRAUD_COST:.0%}",
                    "met": fc["work_increase"] <= TARGET_FRAUD_COST})
        out.append({"what": "fraud side stream: added time to the décomptes (median)",
                    "value": f"{fc['decomptes_increase']:+.1%}", "target": f"<= {TARGET_FRAUD_COST:.0%}",
                    "met": fc["decomptes_increase"] <= TARGET_FRAUD_COST})
    peak = max(b for t in r["throughput"] for b in t["peak_rss_bytes"])
    full = r["config"]["population"] >= FULL_SCALE
    out.append({"what": "peak worker RSS" + ("" if full else f" (population {r['config']['population']:,}: not full scale)"),
                "value": _gib(peak), "target": f"<= {_gib(TARGET_RSS)}", "met": (peak <= TARGET_RSS) if full else None})
    return out


# --------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--invoices", type=int, default=56_000, help="invoices of the flow (default one working day)")
    p.add_argument("--population", type=int, default=None, help="protected persons (default full scale, 782,783)")
    p.add_argument("--workers", default="2,1", help="worker counts of the throughput runs, e.g. 2,1 (the first one "
                   "also runs the latency and profile runs)")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--rate", type=float, default=TARGET_RATE, help="offered invoices/s of the latency run")
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--naive-invoices", type=int, default=3_000)
    p.add_argument("--fraud-pairs", type=int, default=3,
                   help="pairs of throughput runs with the fraud side stream off and on (its cost: the median "
                   "over the pairs); 0 skips them")
    p.add_argument("--profile", action="store_true", help="one more throughput run with py-spy on every worker")
    p.add_argument("--quick", action="store_true", help="8,000 invoices, population 100,000, 10 s of latency, "
                   "1,000 naive invoices, 2 workers (a few minutes)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--flow", type=Path, default=None, help="a `fseflow generate` folder to use instead of generating")
    p.add_argument("--out", type=Path, default=Path("out/stream-bench"))
    a = p.parse_args(argv)
    if a.quick:
        given = {arg.split("=")[0].lstrip("-").replace("-", "_") for arg in (argv if argv is not None else sys.argv[1:])
                 if arg.startswith("--")}
        for k, v in QUICK.items():
            if k not in given:
                setattr(a, k, v)
    counts = [int(x) for x in str(a.workers).split(",") if x.strip()]
    population = a.population or FULL_SCALE
    if a.flow is not None and a.population is None:  # the flow's own directory, not the default
        with open(a.flow / "beneficiaries.csv", "rb") as f:
            population = sum(1 for _ in f) - 1
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    from fseflow.generator import generate
    from fseflow.infra import db
    from fseflow.infra.services import services
    from fseflow.stream.settings import Settings

    scratch = Path(tempfile.mkdtemp(prefix="fseflow-stream-bench-"))
    setup: dict[str, float] = {}
    result: dict[str, Any] = {
        "config": {"invoices": a.invoices, "population": population, "workers": counts, "partitions": a.partitions,
                   "rate": a.rate, "latency_seconds": a.latency_seconds, "naive_invoices": a.naive_invoices,
                   "seed": a.seed, "quick": a.quick, "profile": a.profile, "fraud_pairs": a.fraud_pairs},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "setup_s": setup,
    }
    try:
        flow = a.flow
        # the latency run needs rate × seconds invoices of its own: the flow holds at least that many
        need = max(a.invoices, math.ceil(a.rate * a.latency_seconds * 1.05))
        if flow is None:
            flow = scratch / "flow"
            t = time.perf_counter()
            print(f"generating {need:,} invoices (population {population:,}) ...", flush=True)
            generate(flow, invoices=need, seed=a.seed, start_date=None, days=max(1, need // 56_000),
                     population=a.population)
            setup["generate"] = time.perf_counter() - t
        files = flow_files(flow)
        total = sum(f.invoices for f in files)
        warm_n = min(max(48, len(files) // 50), len(files) // 4)
        warm, rest = files[:warm_n], files[warm_n:]
        throughput_files = take(rest, a.invoices - sum(f.invoices for f in warm))
        latency_files = take(rest, a.rate * a.latency_seconds)
        print(f"flow: {len(files):,} files, {total:,} invoices ({total / len(files):.1f} per file); warm-up on "
              f"the first {len(warm)} files", flush=True)
        t = time.perf_counter()
        with services(scratch / "services") as svc:
            setup["services"] = time.perf_counter() - t
            dbs = Databases(svc.database_url)
            try:
                t = time.perf_counter()
                template = dbs.create()
                db.migrate(dbs.url(template))
                db.load_reference(dbs.url(template), flow / "beneficiaries.csv", flow / "professionals.csv")
                setup["load reference"] = time.perf_counter() - t
                # FSEFLOW_* tuning variables (batch sizes, waits) apply, as they do to `fseflow worker`
                base = replace(Settings.from_env(svc.kafka_bootstrap, ""), partitions=a.partitions)
                ctx = Context(base, dbs, template, files, warm, out)
                print(f"services up ({'embedded' if svc.embedded_kafka else 'external'} Kafka, "
                      f"{'embedded' if svc.embedded_postgres else 'external'} PostgreSQL); directory loaded in "
                      f"{setup['load reference']:.1f} s", flush=True)
                result["throughput"] = []
                for w in counts:
                    r = run_throughput(ctx, throughput_files, w)
                    print(f"  throughput, {w} worker(s): {r['invoices_per_s']:,.0f} invoices/s", flush=True)
                    result["throughput"].append(r)
                if a.fraud_pairs > 0:
                    # the first pair reuses the throughput run; then the order alternates so a drift of
                    # the machine (page cache, a busy neighbour) weighs on both sides alike
                    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
                    for k in range(a.fraud_pairs):
                        if k == 0:
                            on = result["throughput"][0]
                            off = run_throughput(ctx, throughput_files, counts[0], fraud=False)
                        elif k % 2:
                            off = run_throughput(ctx, throughput_files, counts[0], fraud=False)
                            on = run_throughput(ctx, throughput_files, counts[0])
                        else:
                            on = run_throughput(ctx, throughput_files, counts[0])
                            off = run_throughput(ctx, throughput_files, counts[0], fraud=False)
                        pairs.append((on, off))
                        one = fraud_cost([(on, off)])
                        print(f"  fraud side stream, pair {k + 1}/{a.fraud_pairs}: {one['cpu_increase']:+.1%} "
                              f"pipeline CPU ({one['work_increase']:+.1%} above idle polling), {one['decomptes_increase']:+.1%} time to the décomptes", flush=True)
                    result["fraud_cost"] = fraud_cost(pairs)
                    print(f"  fraud side stream, median of {len(pairs)}: "
                          f"{result['fraud_cost']['cpu_increase']:+.1%} pipeline CPU, "
                          f"{result['fraud_cost']['work_increase']:+.1%} above idle polling", flush=True)
                if a.latency_seconds > 0 and a.rate > 0:
                    result["latency"] = run_latency(ctx, latency_files, counts[0], a.rate)
                    print(f"  latency: p99 written {_ms(result['latency']['written']['p99'])}", flush=True)
                if a.naive_invoices > 0:
                    result["naive"] = run_naive_bench(ctx, flow, a.naive_invoices)
                    print(f"  naive: {result['naive']['invoices_per_s']:,.0f} invoices/s", flush=True)
                if a.profile:
                    result["profiled"] = [run_throughput(ctx, throughput_files, counts[0], profile=True)]
            finally:
                dbs.drop_all()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["targets"] = targets(result)
    text = report(result)
    print()
    print(text)
    (out / "stream-bench.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nfigures written to {out / 'stream-bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
