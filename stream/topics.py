"""Topic names of the pipeline and their creation (confluent-kafka admin).

    fse.lots            received B2 files (raw bytes + reception metadata), keyed by emitter PS
    fse.files           one receipt per decoded file (ARL status, counts) → PostgreSQL `files`
    fse.lots.rejected   lots and files refused by the ARL, with their reasons → kept in PostgreSQL
    fse.invoices        columnar invoice batches, partitioned by beneficiary (NIR + rang)
    fse.decomptes       décomptes of paid invoices, per liquidated batch
    fse.rejects         décomptes of rejected invoices, per liquidated batch
    fse.lines           line features for fraud scoring, columnar, one record per liquidate step, in its partition
    fraud.alerts        practitioner-days and beneficiary-days whose fraud score reached the alert threshold

Every topic has the same partition count (co-partitioned with `fse.invoices`). The liquidation
state is not on a topic: it lives in PostgreSQL with the décomptes it reflects (infra/state_store.py).

An offset means something only on the topic it was read from: `incarnation` names the topics
by their ids (a broker started again, or a topic deleted and created again, gives new ids), and
every offset kept outside the broker is stored with it and never applied to another.
"""
from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

NAMES = ("lots", "files", "lots_rejected", "invoices", "decomptes", "rejects", "lines", "alerts")
_BASE = {"lots": "fse.lots", "files": "fse.files", "lots_rejected": "fse.lots.rejected",
         "invoices": "fse.invoices", "decomptes": "fse.decomptes", "rejects": "fse.rejects",
         "lines": "fse.lines", "alerts": "fraud.alerts"}


@dataclass(frozen=True)
class Topics:
    lots: str
    files: str
    lots_rejected: str
    invoices: str
    decomptes: str
    rejects: str
    lines: str
    alerts: str

    @classmethod
    def named(cls, prefix: str = "") -> "Topics":
        return cls(**{k: prefix + v for k, v in _BASE.items()})

    def all(self) -> list[str]:
        return [getattr(self, n) for n in NAMES]


def ensure_topics(bootstrap: str, topics: Topics, partitions: int, timeout: float = 15.0) -> None:
    """Create the missing topics (existing ones are left as they are)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    new = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics.all() if t not in existing]
    if not new:
        return
    for name, fut in admin.create_topics(new, operation_timeout=timeout).items():
        try:
            fut.result()
        except Exception as e:  # a concurrent creator won the race: fine
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise


#: the topics whose offsets are kept outside the broker (liquidation state, fraud offsets)
_IDENTITY = ("lots", "invoices", "lines")


def incarnation(bootstrap: str, topics: Topics, timeout: float = 15.0, admin: AdminClient | None = None) -> str:
    """The identity of the topics' current incarnation: their topic ids, joined.

    A memory-only broker restarted, or a topic deleted and created again, gives new ids, so an
    offset stored with another incarnation is never applied to these topics. `admin`: a client
    kept by a caller that asks often (the spool, every poll)."""
    admin = admin or AdminClient({"bootstrap.servers": bootstrap})
    names = [getattr(topics, n) for n in _IDENTITY]
    futures = admin.describe_topics(TopicCollection(names), request_timeout=timeout)
    ids = {name: str(f.result().topic_id) for name, f in futures.items()}
    return "/".join(ids[n] for n in names)
