"""Running the pipeline end to end: workers as processes, intake, and waiting for the flow to drain.

Used by `fseflow demo`, the integration tests and the stream benchmark: they all start real
workers (`fseflow worker` processes) on real services and watch PostgreSQL fill up. The flow is
drained when every ingested file has its receipt in `files` and every invoice those receipts
sent on has its décompte in `decomptes`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fseflow.exceptions import FseflowError
from fseflow.infra.services import die_with_parent
from fseflow.stream.settings import Settings


class PipelineError(FseflowError):
    """The pipeline did not drain (a worker died, or the time ran out)."""


@dataclass
class Progress:
    files: int = 0          # receipts written
    expected_invoices: int = 0
    decomptes: int = 0
    refused: int = 0


class Workers:
    """`fseflow worker` processes on the given settings, stopped on exit."""

    def __init__(self, settings: Settings, workdir: Path, count: int = 1, loglevel: str = "warn",
                 roles: list[str] | None = None) -> None:
        """`count` workers running every agent, or one worker per entry of `roles` (e.g.
        ["decode", "liquidate,sink"]: each entry is the agents of one process)."""
        self.settings, self.workdir, self.loglevel = settings, workdir, loglevel
        self.procs: list[subprocess.Popen[bytes]] = []
        self.roles: list[str | None] = []
        for r in roles or [None] * count:  # type: ignore[list-item]
            self.start(r)

    def start(self, roles: str | None = None, slot: int | None = None) -> subprocess.Popen[bytes]:
        """Start a worker (in `slot`: again in the place of one that stopped, with its log)."""
        k = len(self.procs) if slot is None else slot
        log = open(self.workdir / f"worker-{k}.log", "ab")
        ready = self.workdir / f"worker-{k}.ready"
        ready.unlink(missing_ok=True)
        env = {**os.environ, **self.settings.env(), "FSEFLOW_READY_FILE": str(ready)}
        if self.settings.metrics_port:
            env["FSEFLOW_METRICS_PORT"] = str(self.metrics_port(k))
        args = ["--roles", roles] if roles else []
        proc = subprocess.Popen([sys.executable, "-m", "fseflow.cli", "worker", "--loglevel", self.loglevel, *args],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                preexec_fn=die_with_parent)
        log.close()  # the child has its own descriptor
        if slot is None:
            self.procs.append(proc)
            self.roles.append(roles)
        else:
            self.procs[slot] = proc
        return proc

    def metrics_port(self, k: int) -> int:
        """The /metrics port of the k-th worker started."""
        return self.settings.metrics_port + k if self.settings.metrics_port else 0

    def stop(self, proc: subprocess.Popen[bytes], kill: bool = False, timeout: float = 30.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Block until every running worker has joined the group (directory loaded); seconds waited."""
        t0 = time.monotonic()
        while True:
            pending = [k for k, p in enumerate(self.procs)
                       if p.poll() is None and not (self.workdir / f"worker-{k}.ready").exists()]
            if not pending:
                if not self.alive():
                    raise PipelineError("every worker has stopped:\n" + self.log_tail())
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise PipelineError(f"workers {pending} not ready after {timeout:.0f} s:\n" + self.log_tail())
            time.sleep(0.1)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for k in range(len(self.procs)):
            path = self.workdir / f"worker-{k}.log"
            if path.exists():
                out.append(f"--- worker-{k}.log\n" + "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:]))
        return "\n".join(out)

    def kill(self) -> None:
        """SIGKILL every worker and reap it (their effects are idempotent in PostgreSQL)."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()

    def close(self, timeout: float = 30.0) -> None:
        """SIGTERM to every worker at once, then SIGKILL to those still running after `timeout`."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def progress(conn: Any) -> Progress:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(sum(n_invoices), 0) FROM files")
        files, expected = cur.fetchone()
        cur.execute("SELECT count(*) FROM decomptes")
        (decomptes,) = cur.fetchone()
        cur.execute("SELECT count(*) FROM lots_refused")
        (refused,) = cur.fetchone()
    conn.commit()
    return Progress(int(files), int(expected), int(decomptes), int(refused))


def fraud_lag(conn: Any) -> int:
    """Décompte lines the fraud side stream has not counted yet."""
    row = conn.execute("SELECT (SELECT count(*) FROM decompte_lines)"
                       " - (SELECT coalesce(sum(lines), 0) FROM fraud_practitioner_days)").fetchone()
    conn.commit()
    return int(row[0])


def wait_drained(conn: Any, files: int, workers: Workers | None = None, timeout: float = 600.0,
                 on_progress: Callable[[Progress], None] | None = None, poll: float = 0.2,
                 require_alive: bool = True, ledger: bool = False, fraud: bool = False) -> Progress:
    """Block until `files` receipts are written and every invoice they sent on has a décompte
    (and, with `ledger`, until every paid décompte line has its ledger entries; with `fraud`,
    until the fraud side stream has counted every décompte line)."""
    from fseflow.infra.ledger import missing_entries

    deadline = time.monotonic() + timeout
    while True:
        p = progress(conn)
        if on_progress is not None:
            on_progress(p)
        if p.files >= files and p.decomptes >= p.expected_invoices and (not ledger or missing_entries(conn) <= 0) \
                and (not fraud or fraud_lag(conn) <= 0):
            return p
        if workers is not None and require_alive and not workers.alive():
            raise PipelineError("every worker has stopped before the flow drained:\n" + workers.log_tail())
        if time.monotonic() > deadline:
            raise PipelineError(f"flow not drained after {timeout:.0f} s: {p}\n"
                                + (workers.log_tail() if workers else ""))
        time.sleep(poll)
