"""Supervision behind `fseflow serve`: the services and workers kept running, and a health view.

One loop in `serve`'s main thread (children started from it die with it: stream/runner.py,
infra/services.py `die_with_parent`):

- a worker that exits is started again, after 1 s doubling to 30 s while it keeps dying, with
  one log line each time;
- the embedded PostgreSQL, when its postmaster dies, is started again on its data (the workers
  and the spool back off meanwhile and go on by themselves);
- the embedded broker, when it dies, is started again on the same port; its records are lost,
  so the workers are ended before it starts (none may carry the old topics' offsets to the new
  ones) and started again after (their state comes back from PostgreSQL, offsets of the old
  topics dropped), and the spool's next poll sends the journal's pending files again;
- every 2 s the journal marks the receptions that became complete;
- `status.json` in the work folder (written atomically) and `fseflow_up{component}` say what
  is up; `fseflow status` prints it.

The pids of everything started are kept in `serve.pids`: a `serve` SIGKILLed on a system
without PR_SET_PDEATHSIG leaves orphans the next start ends by those pids (checked against
their command line, never by name).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fseflow.infra import journal
from fseflow.infra.services import EmbeddedKafka, EmbeddedPostgres
from fseflow.stream import metrics
from fseflow.stream.runner import Workers

log = logging.getLogger("fseflow.serve")

STATUS = "status.json"
PIDS = "serve.pids"
#: seconds between two journal sweeps (receptions that became complete)
SWEEP_EVERY = 2.0


@dataclass
class _Restart:
    delay: float = 1.0
    at: float = 0.0          # when the next start is due (monotonic); 0: running
    count: int = 0


@dataclass
class Supervisor:
    workdir: Path
    workers: Workers
    kafka: EmbeddedKafka | None = None
    postgres: EmbeddedPostgres | None = None
    spool: Any = None
    _restarts: dict[str, _Restart] = field(default_factory=dict)
    _swept: float = 0.0
    pending: int | None = None
    started: float = field(default_factory=time.time)

    def check(self) -> None:
        """One round: what died is started again (with backoff), the journal swept, the status written."""
        now = time.monotonic()
        if self.kafka is not None and not self.kafka.alive():
            self._restart("broker", now, self._broker_again)
        if self.postgres is not None and not self.postgres.alive():
            self._restart("postgres", now, self._postgres_again)
        for k, proc in enumerate(self.workers.procs):
            code = proc.poll()
            if code is not None:
                self._restart(f"worker-{k}", now, lambda k=k: self.workers.start(self.workers.roles[k], slot=k),
                              f"exited with status {code}")
            else:
                self._restarts.pop(f"worker-{k}", None)
        if now - self._swept >= SWEEP_EVERY and self.spool is not None and self.up("postgres"):
            self._swept = now
            try:
                conn = self.spool.conn()
                journal.sweep(conn)
                self.pending = journal.count_pending(conn)
                metrics.JOURNAL_PENDING.set(self.pending)
            except Exception as e:  # PostgreSQL away between two checks: said by the spool
                log.debug("journal sweep skipped: %s", type(e).__name__)
        self.write_status()

    def restarts(self) -> int:
        """How many times a component was started again."""
        return sum(r.count for r in self._restarts.values())

    def _restart(self, name: str, now: float, start: Any, why: str = "died") -> None:
        r = self._restarts.setdefault(name, _Restart())
        if r.at == 0.0:
            r.at = now + r.delay
            log.warning("%s %s: starting it again in %.0f s", name, why, r.delay)
            metrics.UP.labels(name).set(0)
            return
        if now < r.at:
            return
        try:
            start()
        except Exception as e:
            r.delay = min(r.delay * 2, 30.0)
            r.at = now + r.delay
            log.warning("%s did not start again (%s): next try in %.0f s", name, type(e).__name__, r.delay)
            return
        r.count += 1
        r.delay = min(r.delay * 2, 30.0)
        r.at = 0.0
        metrics.RESTARTS.labels(name).inc()
        log.warning("%s started again (restart %d)", name, r.count)
        self.record_pids()

    def _broker_again(self) -> None:
        assert self.kafka is not None
        # the broker lost every record. No worker of the lost broker may meet the new one: it
        # would rejoin the group and commit its offsets of the old topics to the new ones, and
        # the new workers would skip the first records of the new topics (measured: 2,475 of
        # 10,000 invoices never liquidated). So the workers are ended first, then the broker
        # starts, then the workers start again on the new topics, their state from PostgreSQL;
        # the spool sends the pending files again at its next poll
        self.workers.kill()
        self.kafka.start()
        log.warning("broker: its records are lost; workers started again, the journal sends the pending files again")
        for k in range(len(self.workers.procs)):
            self.workers.start(self.workers.roles[k], slot=k)

    def _postgres_again(self) -> None:
        assert self.postgres is not None
        self.postgres.start()

    def up(self, component: str) -> bool:
        if component == "broker":
            return self.kafka is None or self.kafka.alive()
        if component == "postgres":
            return self.postgres is None or self.postgres.alive()
        k = int(component.split("-")[1])
        return self.workers.procs[k].poll() is None

    def pid(self, component: str) -> int | None:
        """The pid of a component this `serve` started (None for an external service)."""
        if component == "broker":
            return self.kafka.proc.pid if self.kafka is not None and self.kafka.proc is not None else None
        if component == "postgres":
            return self.postgres.postmaster() if self.postgres is not None else None
        return self.workers.procs[int(component.split("-")[1])].pid

    def components(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        names = ["broker", "postgres", *(f"worker-{k}" for k in range(len(self.workers.procs)))]
        for name in names:
            up = self.up(name)
            metrics.UP.labels(name).set(1 if up else 0)
            r = self._restarts.get(name)
            out[name] = {"up": up, "restarts": r.count if r else 0, "pid": self.pid(name) if up else None,
                         "embedded": (self.kafka is not None) if name == "broker" else
                         (self.postgres is not None) if name == "postgres" else None}
        if self.spool is not None:
            away = getattr(self.spool, "_away", None)
            out["spool"] = {"up": away is None, "waiting_for": away, "restarts": 0, "embedded": None}
            metrics.UP.labels("spool").set(1 if away is None else 0)
        return out

    def write_status(self) -> None:
        status = {"pid": os.getpid(), "started_at": self.started, "updated_at": time.time(),
                  "components": self.components(), "journal_pending": self.pending,
                  "spool": str(self.spool.folder) if self.spool is not None else None,
                  # the embedded services' addresses, for tools on this machine (an external
                  # DATABASE_URL may hold a password: never written here)
                  "kafka": self.kafka.bootstrap if self.kafka is not None else None,
                  "database": self.postgres.url if self.postgres is not None else None}
        tmp = self.workdir / f".{STATUS}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(status, indent=1))
        os.replace(tmp, self.workdir / STATUS)

    def record_pids(self) -> None:
        pids = [os.getpid(), *(p.pid for p in self.workers.procs if p.poll() is None)]
        if self.kafka is not None and self.kafka.alive():
            assert self.kafka.proc is not None
            pids.append(self.kafka.proc.pid)
        record_pids(self.workdir, pids)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def record_pids(workdir: Path, pids: list[int]) -> None:
    """Keep the pids (with their command lines) of what this `serve` started."""
    entries = [{"pid": p, "cmdline": _cmdline(p).hex()} for p in pids]
    tmp = workdir / f".{PIDS}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(entries))
    os.replace(tmp, workdir / PIDS)


def end_orphans(workdir: Path, timeout: float = 5.0) -> list[int]:
    """End what a SIGKILLed `serve` left running, by its recorded pids (a pid now used by another
    program, whose command line differs, is left alone); returns the pids ended."""
    path = workdir / PIDS
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    ended = []
    for e in entries:
        pid = int(e["pid"])
        if pid == os.getpid() or not e.get("cmdline") or _cmdline(pid).hex() != e["cmdline"]:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
            ended.append(pid)
        except OSError:
            continue
    deadline = time.monotonic() + timeout
    for pid in ended:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    if ended:
        log.warning("ended %d process(es) a previous serve left running (pids %s)", len(ended),
                    ", ".join(map(str, ended)))
    path.unlink(missing_ok=True)
    return ended


def read_status(workdir: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((workdir / STATUS).read_text()))
    except (OSError, ValueError):
        return None


__all__ = ["Supervisor", "end_orphans", "record_pids", "read_status", "STATUS", "PIDS"]
