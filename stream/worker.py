"""Running a worker process: the faust app of stream/app.py on the configured services."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from fseflow.stream.settings import Settings


def run_worker(settings: Settings, loglevel: str = "warn", datadir: Path | None = None,
               roles: tuple[str, ...] | None = None) -> None:
    """Block running the agents until the process is told to stop (SIGTERM / SIGINT)."""
    from faust.worker import Worker

    from fseflow.stream.app import build_app

    if settings.metrics_port:
        from fseflow.stream import metrics

        metrics.serve(settings.metrics_port)
    app = build_app(settings, datadir or Path(tempfile.mkdtemp(prefix="fseflow-worker-")), preload=True,
                    **({"roles": roles} if roles else {}))
    logging.getLogger("fseflow").setLevel(logging.INFO)
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()
