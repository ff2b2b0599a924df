"""The fault rig: a flow through `fseflow serve` with a fault injected mid-flow, checked to the cent.

    python -m fseflow.benchmarks.faults [--invoices 10000] [--faults all|name,name] [--workers 2]
        [--out DIR] [--timeout 600]

For each fault, in a folder of its own: the directory loaded into a fresh embedded PostgreSQL
(`fseflow db load-reference`), then `fseflow serve --spool` started as a new user would (embedded
broker and PostgreSQL, its own process), the first half of the generated files dropped in
arrival order; once a quarter of the décomptes are written the fault is injected by pid, the rest
of the files dropped, and the rig waits until the journal holds every file complete. Then:

- the décomptes equal the offline engine's (`fseflow liquidate --as-of <reception day>` on the
  files in the order the stream decoded them), invoice for invoice, every field and cent;
- none doubled (an invoice twice, a ledger entry twice, an EndToEndId twice), every refusal kept
  (the refused lots and files the offline engine finds);
- the ledger holds exactly the entries of the décomptes, and the day's cut-off reconciles;
- `serve` exits within 10 s of SIGTERM and leaves no process of its own running.

Faults: `sigterm` (SIGTERM `serve`, start it again), `kill-worker`, `kill-workers`, `kill-broker`,
`kill-postgres`, `kill-serve` (SIGKILL, start it again), `stop-postgres` (every PostgreSQL
process SIGSTOPped for `--freeze` seconds under load, then SIGCONT). Prints one row per fault:
recovery time (from the fault's end until every component is up and décomptes are written
again), lost, doubled, differing, and the checks; writes `<out>/faults.json`. Exit status 1 when
a fault did not end exact.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

#: what `serve` is given to exit after SIGTERM, whatever its state (issue 16)
EXIT_WITHIN = 10.0


@dataclass
class Result:
    fault: str
    invoices: int = 0           # décomptes the offline engine makes
    written: int = 0            # décomptes in PostgreSQL
    lost: int = 0
    doubled: int = 0
    differ: int = 0
    refusals_lost: int = 0
    ledger_exact: bool = False
    reconciled: bool = False
    recovery_s: float | None = None
    drain_s: float = 0.0
    exit_s: float | None = None
    leftovers: int = 0          # processes of a serve still running after it was stopped
    dead_letters: int = 0
    personal_data: int = 0      # NIR, IBAN or name of the directory found in a log or error
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return (self.error is None and self.lost == self.doubled == self.differ == self.refusals_lost == 0
                and self.ledger_exact and self.reconciled and self.leftovers == 0 and self.personal_data == 0
                and self.exit_s is not None and self.exit_s <= EXIT_WITHIN)


class Serve:
    """One `fseflow serve` of a work folder, started and ended by pid."""

    def __init__(self, work: Path, workers: int) -> None:
        self.work, self.workers = work, workers
        self.spool = work / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 120.0) -> None:
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
        env.setdefault("FSEFLOW_PARTITIONS", "4")
        log = open(self.work / f"serve-{self.starts}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "fseflow.cli", "serve", "--spool", str(self.spool),
                                      "--workers", str(self.workers), "--settle", "0.1"],
                                     cwd=self.work, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        self.wait_up(timeout)

    def status(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.work / ".fseflow" / "status.json").read_text()))
        except (OSError, ValueError):
            return None

    def all_up(self) -> bool:
        s = self.status()
        return (s is not None and self.proc is not None and s.get("pid") == self.proc.pid
                and time.time() - float(s["updated_at"]) < 3 and all(c["up"] for c in s["components"].values()))

    def wait_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.all_up():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with status {self.proc.returncode}: see {self.work}/serve-{self.starts}.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve not up within {timeout:.0f} s: see {self.work}/serve-{self.starts}.log")
            time.sleep(0.2)

    def pid(self, component: str) -> int:
        s = self.status()
        assert s is not None
        pid = s["components"][component]["pid"]
        if pid is None:
            raise RuntimeError(f"{component} has no pid in status.json")
        return int(pid)

    def database(self) -> str:
        s = self.status()
        assert s is not None and s["database"]
        return str(s["database"])

    def children(self) -> list[int]:
        """The pids this serve recorded (itself, its workers, the broker)."""
        try:
            return [int(e["pid"]) for e in json.loads((self.work / ".fseflow" / "serve.pids").read_text())]
        except (OSError, ValueError):
            return []

    def stop(self) -> float:
        """SIGTERM, and the seconds it took to exit (SIGKILL after 30 s)."""
        assert self.proc is not None
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return 30.0
        return time.monotonic() - t

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _postgres_pids(work: Path) -> list[int]:
    import psutil

    try:
        pid = int((work / ".fseflow" / "pgdata" / "postmaster.pid").read_text().split()[0])
        p = psutil.Process(pid)
        return [pid, *(c.pid for c in p.children(recursive=True))]
    except (OSError, ValueError, IndexError, psutil.Error):
        return []


# -- faults: each gets the running serve and returns when the fault is over ----------------------

def _sigterm(s: Serve, r: Result, o: argparse.Namespace) -> list[str]:
    r.exit_s = s.stop()
    r.notes.append(f"SIGTERM mid-flow: exited in {r.exit_s:.1f} s")
    s.start()
    return []


def _kill_worker(s: Serve, r: Result, o: argparse.Namespace) -> list[str]:
    os.kill(s.pid("worker-0"), signal.SIGKILL)
    return ["worker-0"]


def _kill_workers(s: Serve, r: Result, o: argparse.Namespace) -> list[str]:
    names = [f"worker-{k}" for k in range(s.workers)]
    for n in names:
        os.kill(s.pid(n), signal.SIGKILL)
    return names


def _kill_broker(s: Serve, r: Result, o: argparse.Namespace) -> list[str]:
    os.kill(s.pid("broker"), signal.SIGKILL)
    # the supervisor starts the workers again too: they had the lost broker's offsets
    return ["broker", *(f"worker-{k}" for k in range(s.workers))]


def _kill_postgres(s: Serve, r: Result, o: argparse.Namespace) -> list[str]:
    os.kill(s.pid("postgres"), signal.SIGKILL)
    return ["postgres"]


def _kill_serve(s: Serve, r: Result, o: argparse.Namespace) -> list[str]:
    pids = [p for p in s.children() if p != (s.proc.pid if s.proc else None)]
    s.kill()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = sum(_alive(p) for p in pids)
    r.notes.append(f"SIGKILL serve: {left} of its {len(pids)} children still running 5 s later"
                   + (" (the next start ends them by pid)" if left else ""))
    s.start()
    return []


def _stop_postgres(s: Serve, r: Result, o: argparse.Namespace) -> list[str]:
    pids = _postgres_pids(s.work)
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        time.sleep(o.freeze)
    finally:
        for p in pids:
            try:
                os.kill(p, signal.SIGCONT)
            except OSError:
                pass
    return []


FAULTS: dict[str, Callable[[Serve, Result, argparse.Namespace], list[str]]] = {
    "sigterm": _sigterm, "kill-worker": _kill_worker, "kill-workers": _kill_workers, "kill-broker": _kill_broker,
    "kill-postgres": _kill_postgres, "kill-serve": _kill_serve, "stop-postgres": _stop_postgres,
}


# -- the run ------------------------------------------------------------------------------------

def drop(spool: Path, path: Path) -> None:
    """As a transfer client does: written under a temporary name, then renamed."""
    part = spool / f"{path.name}.part"
    part.write_bytes(path.read_bytes())
    part.rename(spool / path.name)


def _query(url: str, sql: str) -> list[tuple[Any, ...]] | None:
    """One short-lived query; None while PostgreSQL is away."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as conn:
            return conn.execute(sql).fetchall()
    except psycopg.Error:
        return None


def _written(s: Serve) -> int | None:
    rows = _query(s.database(), "SELECT count(*) FROM decomptes")
    return None if rows is None else int(rows[0][0])


def run_fault(name: str, flow: Path, work: Path, o: argparse.Namespace) -> Result:
    from fseflow.generator import manifest_files

    r = Result(name)
    files = manifest_files(flow)
    receptions = len({hashlib.sha256(p.read_bytes()).hexdigest() for p in files})  # the same bytes twice: one
    work.mkdir(parents=True, exist_ok=True)
    # the directory, loaded as a new user would, into this folder's embedded PostgreSQL
    subprocess.run([sys.executable, "-m", "fseflow.cli", "db", "load-reference", str(flow / "beneficiaries.csv"),
                    str(flow / "professionals.csv")], cwd=work, check=True, capture_output=True,
                   env={k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")})
    s = Serve(work, o.workers)
    try:
        s.start()
        half = len(files) // 2
        for p in files[:half]:
            drop(s.spool, p)
        expected = o.expected
        deadline = time.monotonic() + o.timeout
        while (_written(s) or 0) < expected // 4:
            if time.monotonic() > deadline:
                raise RuntimeError("a quarter of the décomptes not written before the fault")
            time.sleep(0.1)
        t0 = time.monotonic()
        pids = {n: c.get("pid") for n, c in (s.status() or {"components": {}})["components"].items()}
        killed = FAULTS[name](s, r, o)
        t_end, wall_end = time.monotonic(), time.time()
        for p in files[half:]:
            drop(s.spool, p)
        # recovered: a status written after the fault says every component is up, the killed
        # ones with new pids, and a décompte is written after that moment
        resumed_from: int | None = None
        while True:
            # one query a round: the journal's receptions, those complete, the décomptes written
            got = _query(s.database(), "SELECT (SELECT count(*) FROM intake_journal),"
                         " (SELECT count(*) FROM intake_journal WHERE completed_at IS NOT NULL),"
                         " (SELECT count(*) FROM decomptes)")
            journaled, complete, written = got[0] if got else (0, 0, None)
            if journaled == complete == receptions and (written or 0) >= expected:
                break
            now = time.monotonic()
            if r.recovery_s is None and written is not None:
                st = s.status()
                if resumed_from is None and st is not None and float(st["updated_at"]) > wall_end + 0.5 \
                        and s.all_up() and all(st["components"][n]["pid"] != pids.get(n) for n in killed):
                    resumed_from = written
                elif resumed_from is not None and written > resumed_from:
                    r.recovery_s = now - t_end
            if now > deadline:
                r.error = f"not complete within {o.timeout:.0f} s"
                break
            time.sleep(0.1)
        if r.recovery_s is None and r.error is None:
            r.recovery_s = time.monotonic() - t_end
        r.drain_s = time.monotonic() - t0
        check(flow, s.database(), work, r)
    except Exception as e:  # noqa: BLE001 - one fault's failure is its row, the others still run
        r.error = f"{type(e).__name__}: {e}"
    finally:
        pids = s.children()
        if s.proc is not None and s.proc.poll() is None:
            exit_s = s.stop()
            r.exit_s = exit_s if r.exit_s is None else max(r.exit_s, exit_s)
        time.sleep(0.5)
        r.leftovers = sum(_alive(p) for p in pids)
        hits = personal_data_in(logs_of(work), flow)
        r.personal_data = len(hits)
        r.notes += [f"personal data ({kind}) in {path} line {line}" for path, line, kind in hits[:5]]
    return r


def check(flow: Path, url: str, work: Path, r: Result) -> None:
    """The stream's décomptes, ledger, refusals and cut-off against the offline engine."""
    from fseflow.infra import db, store
    from fseflow.offline import Engine
    from fseflow.processors.directory import load_beneficiaries, load_professionals
    from fseflow.processors.payments import entries
    from fseflow.stream.demo import pay_all

    with db.connect(url, autocommit=True) as conn:
        # the files in the order the stream first decoded them, each liquidated as of its reception day
        order = conn.execute("SELECT j.name, j.reception_date FROM files f JOIN intake_journal j USING (file_id)"
                             " WHERE f.duplicate_of IS NULL GROUP BY j.name, j.reception_date"
                             " ORDER BY min(f.decoded_at), j.name").fetchall()
        engine = Engine(load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv"))
        want: dict[tuple[str, int], dict[str, Any]] = {}
        refused_want: Counter[tuple[str, Any]] = Counter()
        for name, day in order:
            for rec in engine.liquidate_file((flow / "b2" / name).read_bytes(), name, day):
                if "lines" in rec:
                    want[(rec["file"], rec["record"])] = rec
                else:
                    refused_want[(rec["file"], rec.get("lot"))] += 1
        got = store.read_decomptes(conn)
        keys = Counter((g["file"], g["record"]) for g in got)
        r.invoices, r.written = len(want), len(got)
        r.lost = len(set(want) - set(keys))
        r.doubled = sum(n - 1 for n in keys.values() if n > 1)
        r.differ = sum(1 for g in got if (g["file"], g["record"]) in want and
                       store.as_offline(g) != want[(g["file"], g["record"])])
        refused_got = Counter((x["file"], x["lot"]) for x in store.read_refused(conn))
        r.refusals_lost = sum((refused_want - refused_got).values())
        r.doubled += sum((refused_got - refused_want).values())
        # the ledger: exactly the entries of the décomptes, none twice
        ids = {(f, rec): fid for fid, f, rec in conn.execute("SELECT file_id, file, record FROM decomptes")}
        ledger_want = sorted((e.file_id, e.record, e.line, e.kind, e.budget, e.payee_kind, e.amount_cents)
                             for e in entries([{**g, "file_id": ids[(g["file"], g["record"])]} for g in got]))
        ledger_got = sorted(tuple(x) for x in conn.execute(
            "SELECT file_id, record, line, kind, budget, payee_kind, amount_cents FROM ledger_entries"))
        r.ledger_exact = ledger_got == ledger_want
        r.doubled += max(0, len(ledger_got) - len(ledger_want))
        r.dead_letters = int(conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])  # type: ignore[index]
    runs, _returns, checks, _delays = pay_all(url, work / "payments")
    r.reconciled = bool(checks) and all(c.holds for c in checks)
    with db.connect(url, autocommit=True) as conn:
        twice = conn.execute("SELECT count(*) FROM (SELECT end_to_end_id FROM transfers GROUP BY 1"
                             " HAVING count(*) > 1) t").fetchone()[0]  # type: ignore[index]
    r.doubled += int(twice)
    if not runs:
        r.notes.append("no payment run")


def personal_data_in(paths: list[Path], flow: Path) -> list[tuple[str, int, str]]:
    """NIR-, IBAN- and name-shaped values of the generated directory found in `paths`:
    (file, line number, kind), never the value itself."""
    import csv
    import re

    nirs, ibans, names = set(), set(), set()
    with open(flow / "beneficiaries.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            nirs.add(row["nir"])
            if row["iban"]:
                ibans.add(row["iban"])
    with open(flow / "professionals.csv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["iban"]:
                ibans.add(row["iban"])
            if len(row["name"]) >= 5:
                names.add(row["name"])
    digits = re.compile(rb"(?<![0-9])[0-9]{13}(?![0-9])")
    iban = re.compile(rb"\b[A-Z]{2}[0-9]{2}[0-9A-Z]{11,30}\b")
    name = re.compile(b"|".join(re.escape(n.encode()) for n in sorted(names, key=len, reverse=True)))
    nir_b, iban_b = {n.encode() for n in nirs}, {i.encode() for i in ibans}
    hits = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for k, line in enumerate(data.splitlines(), 1):
            if any(m.group() in nir_b for m in digits.finditer(line)):
                hits.append((str(path), k, "NIR"))
            if any(m.group() in iban_b for m in iban.finditer(line)):
                hits.append((str(path), k, "IBAN"))
            if names and name.search(line):
                hits.append((str(path), k, "name"))
    return hits


def logs_of(folder: Path) -> list[Path]:
    """Every log and error a run left under `folder`: serve, workers, broker, PostgreSQL, reasons."""
    found = []
    for pattern in ("*.log", "*.reason", "log", "*.err", "faults.json", "status.json"):
        found += [p for p in folder.rglob(pattern) if p.is_file() and "flow" not in p.relative_to(folder).parts[:1]]
    return sorted(set(found))


def expected_invoices(flow: Path) -> int:
    from fseflow.generator import manifest_files
    from fseflow.offline import Engine
    from fseflow.processors.directory import load_beneficiaries, load_professionals

    engine = Engine(load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv"))
    today = (dt.date.today() - dt.date(1970, 1, 1)).days
    return sum(1 for p in manifest_files(flow) for rec in engine.liquidate_file(p.read_bytes(), p.name, today)
               if "lines" in rec)


def print_table(results: list[Result]) -> None:
    head = f"{'fault':<14} {'invoices':>8} {'lost':>5} {'doubled':>7} {'differ':>6} {'refusals lost':>13} " \
           f"{'ledger':>6} {'recon.':>6} {'recovery s':>10} {'drain s':>7} {'exit s':>6} {'left':>4} {'PII':>4}  verdict"
    print(head)
    print("-" * len(head))
    for r in results:
        rec = "-" if r.recovery_s is None else f"{r.recovery_s:.1f}"
        ex = "-" if r.exit_s is None else f"{r.exit_s:.1f}"
        print(f"{r.fault:<14} {r.invoices:>8,} {r.lost:>5} {r.doubled:>7} {r.differ:>6} {r.refusals_lost:>13} "
              f"{'exact' if r.ledger_exact else 'NO':>6} {'holds' if r.reconciled else 'NO':>6} {rec:>10} "
              f"{r.drain_s:>7.1f} {ex:>6} {r.leftovers:>4} {r.personal_data:>4}  {'exact' if r.exact else 'FAILED ' + (r.error or '')}")
        for n in r.notes:
            print(f"{'':<14} {n}")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m fseflow.benchmarks.faults", description=__doc__.split("\n")[0])
    ap.add_argument("--invoices", type=int, default=10_000)
    ap.add_argument("--population", type=int, default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--faults", default="all", help="comma-separated among: " + ", ".join(FAULTS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--freeze", type=float, default=30.0, help="seconds PostgreSQL stays stopped (stop-postgres)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds for one fault's flow to complete")
    ap.add_argument("--out", type=Path, default=None)
    return ap


def prepare(flow: Path, o: argparse.Namespace) -> None:
    """The flow of the rig (generated once), and the décomptes it must end with."""
    from fseflow.generator import generate

    if not (flow / "manifest.csv").exists():
        generate(flow, invoices=o.invoices, seed=o.seed, start_date=None, days=1, population=o.population)
    o.expected = expected_invoices(flow)


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    o = ap.parse_args(argv)

    names = list(FAULTS) if o.faults == "all" else [n.strip() for n in o.faults.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        ap.error(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    out = o.out or Path(tempfile.mkdtemp(prefix="fseflow-faults-"))
    out.mkdir(parents=True, exist_ok=True)
    flow = out / "flow"
    prepare(flow, o)
    print(f"fault rig: {o.expected:,} invoices in {len(list((flow / 'b2').iterdir()))} files, {o.workers} workers,"
          f" in {out}", flush=True)
    results = []
    for n in names:
        t = time.monotonic()
        r = run_fault(n, flow, out / n, o)
        results.append(r)
        print(f"  {n}: {'exact' if r.exact else 'FAILED'} in {time.monotonic() - t:.0f} s", flush=True)
    print_table(results)
    (out / "faults.json").write_text(json.dumps([{**asdict(r), "exact": r.exact} for r in results], indent=1))
    return 0 if all(r.exact for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
