-- Nothing lost when anything fails: PostgreSQL is the system of record.
--
-- intake_journal: every received file, written before the file is acknowledged (ARL, archive,
-- .dup), and followed to completion. A file not complete is sent again whenever the pipeline
-- starts or finds its broker new (stream/spool.py). `seq` is the reception's identity on the
-- topics (`src` = 'r<seq>' in files and lots_refused), stable across re-sends and brokers.
CREATE TABLE intake_journal (
    seq            bigserial UNIQUE,
    file_id        text PRIMARY KEY CHECK (file_id ~ '^[0-9a-f]{64}$'),  -- SHA-256 of the bytes
    name           text NOT NULL,
    size           bigint NOT NULL,
    received_at    timestamptz NOT NULL,
    reception_date integer,           -- liquidation day number (days since 1970-01-01); NULL: creation date
    stored_at      text NOT NULL,     -- where the bytes are kept until complete (path)
    sends          integer NOT NULL DEFAULT 0,
    sent_at        timestamptz,       -- last acknowledged send
    completed_at   timestamptz,       -- decoded and every décompte written, or refused
    outcome        text CHECK (outcome IN ('complete', 'refused', 'dead-letter')),
    reason         text               -- why a dead letter (dead_letters holds the record)
);
CREATE INDEX intake_journal_pending ON intake_journal (seq) WHERE completed_at IS NULL;

-- A record a stage could not process (bad key, a constraint refused by PostgreSQL, bad
-- encoding): kept with where it came from and why, and the stage goes on.
CREATE TABLE dead_letters (
    id         bigserial PRIMARY KEY,
    topic      text NOT NULL,
    partition  integer NOT NULL,
    "offset"   bigint NOT NULL,
    incarnation text NOT NULL,        -- the topics' identity (their ids): offsets mean nothing elsewhere
    stage      text NOT NULL,
    reason     text NOT NULL,         -- names file, record and field, never a personal value
    file_id    text,
    value      bytea,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (incarnation, topic, partition, "offset", stage)
);

-- The liquidation state lives in PostgreSQL, written in the transaction that writes the
-- décomptes it reflects: a snapshot (liquidation_snapshots, `changelog_offset` = the last step
-- it includes) and one change per step after it. Restore = snapshot + changes in step order.
CREATE TABLE liquidation_changes (
    app_id    text    NOT NULL,
    partition integer NOT NULL,
    step      bigint  NOT NULL,
    state     bytea   NOT NULL,   -- stream/state.py changelog record: rows of the beneficiaries touched
    PRIMARY KEY (app_id, partition, step)
);
