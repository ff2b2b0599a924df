"""Settings of the stream pipeline, read once from the environment.

`KAFKA_BOOTSTRAP_SERVERS` and `DATABASE_URL` name external services; when they are unset the
caller starts embedded ones (infra/services.py) and passes their addresses here. The other
variables tune the topology; their defaults are what a single 2-core machine runs well with.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str
    database_url: str
    #: partitions of every topic (beneficiary-keyed state is split this way across workers)
    partitions: int = 8
    #: prefix of topic names and of the consumer group, so several pipelines share one broker
    prefix: str = ""
    app_id: str = "fseflow"
    #: files decoded together: one decode step emits one invoices record per target partition
    decode_batch: int = 256
    #: invoices records liquidated together per partition
    liquidate_batch: int = 64
    #: décompte records written to PostgreSQL per transaction
    sink_batch: int = 64
    #: longest wait for a batch to fill (seconds): bounds the latency added by batching
    batch_within: float = 0.05
    #: longest wait of a fetch at the broker (ms): each hop's latency floor when the flow is light
    fetch_wait_ms: int = 20
    #: port of a worker's /metrics (the k-th worker a runner starts takes port + k); 0: not served
    metrics_port: int = 9464
    #: seconds between snapshots of a partition's state to PostgreSQL (recovery reads the snapshot
    #: and the changelog after it); 0: after every step; negative: never (the changelog alone)
    snapshot_every: float = 60.0
    #: consumer session timeout (s): group joins take ~3 s instead of ~23 s with 6 s here
    session_timeout: float = 6.0
    #: a state restore that reads nothing for this long below the changelog's high watermark
    #: fails the worker (with the offsets in the log) rather than liquidate on a partial state
    restore_timeout: float = 30.0
    #: seconds between two passes of the fraud month scoring (peers span every partition, so
    #: the leader worker scores the months whose sums changed); 0 or less: never
    fraud_month_every: float = 300.0
    #: the fraud side stream (features sent by liquidate, the fraud step, the month pass); off,
    #: liquidation runs exactly as before: fraud is a side stream, never on the payment path
    fraud: bool = True
    #: `fse.lines` records per partition the fraud step keeps in memory (past it they are read
    #: back from the broker; a scoring-only worker takes this many per faust batch), and the
    #: seconds between two fraud steps: a side stream trades latency for fewer PostgreSQL
    #: transactions per line
    fraud_batch: int = 2048
    fraud_within: float = 2.0

    @classmethod
    def from_env(cls, kafka_bootstrap: str | None = None, database_url: str | None = None) -> "Settings":
        env = os.environ
        s = cls(kafka_bootstrap=kafka_bootstrap or env.get("KAFKA_BOOTSTRAP_SERVERS", ""),
                database_url=database_url or env.get("DATABASE_URL", ""))
        ints = {"partitions": "FSEFLOW_PARTITIONS", "decode_batch": "FSEFLOW_DECODE_BATCH",
                "liquidate_batch": "FSEFLOW_LIQUIDATE_BATCH", "sink_batch": "FSEFLOW_SINK_BATCH",
                "fetch_wait_ms": "FSEFLOW_FETCH_WAIT_MS", "metrics_port": "FSEFLOW_METRICS_PORT",
                "fraud_batch": "FSEFLOW_FRAUD_BATCH"}
        floats = {"snapshot_every": "FSEFLOW_SNAPSHOT_EVERY", "fraud_month_every": "FSEFLOW_FRAUD_MONTH_EVERY",
                  "fraud_within": "FSEFLOW_FRAUD_WITHIN", "batch_within": "FSEFLOW_BATCH_WITHIN"}
        changes: dict[str, object] = {k: int(env[v]) for k, v in ints.items() if env.get(v)}
        changes.update({k: float(env[v]) for k, v in floats.items() if env.get(v)})
        if env.get("FSEFLOW_TOPIC_PREFIX"):
            changes["prefix"] = env["FSEFLOW_TOPIC_PREFIX"]
        if env.get("FSEFLOW_APP_ID"):
            changes["app_id"] = env["FSEFLOW_APP_ID"]
        if env.get("FSEFLOW_FRAUD"):
            changes["fraud"] = env["FSEFLOW_FRAUD"].strip().lower() not in ("0", "false", "no", "off")
        return replace(s, **changes)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        """The environment that makes a worker process read these settings back."""
        return {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap, "DATABASE_URL": self.database_url,
                "FSEFLOW_PARTITIONS": str(self.partitions), "FSEFLOW_TOPIC_PREFIX": self.prefix,
                "FSEFLOW_APP_ID": self.app_id, "FSEFLOW_DECODE_BATCH": str(self.decode_batch),
                "FSEFLOW_LIQUIDATE_BATCH": str(self.liquidate_batch), "FSEFLOW_SINK_BATCH": str(self.sink_batch),
                "FSEFLOW_BATCH_WITHIN": str(self.batch_within), "FSEFLOW_FETCH_WAIT_MS": str(self.fetch_wait_ms),
                "FSEFLOW_METRICS_PORT": str(self.metrics_port), "FSEFLOW_SNAPSHOT_EVERY": str(self.snapshot_every),
                "FSEFLOW_FRAUD": "1" if self.fraud else "0", "FSEFLOW_FRAUD_BATCH": str(self.fraud_batch),
                "FSEFLOW_FRAUD_WITHIN": str(self.fraud_within),
                "FSEFLOW_FRAUD_MONTH_EVERY": str(self.fraud_month_every)}
