-- Fraud scoring side stream (fraud.md): the practitioner-day aggregates the fraud agent adds
-- up, the offsets and upstream watermarks it consumed (in the same transaction, so a replay
-- adds nothing), and the alerts.

CREATE TABLE fraud_practitioner_days (
    practitioner        bigint NOT NULL,    -- executor RPPS, or the billing number when it is zeros
    day                 date NOT NULL,      -- care date
    ps                  bigint NOT NULL,    -- billing number (the first seen that day)
    speciality          smallint NOT NULL,
    minutes_hundredths  bigint NOT NULL,    -- F01: standard minutes (act_minutes.csv) × 100
    lines               bigint NOT NULL,
    amo_cents           bigint NOT NULL,
    at_stake_cents      bigint NOT NULL,    -- AMO paid, or declared on rejected lines
    majorations         bigint NOT NULL,    -- F05 numerator
    f03                 bigint NOT NULL,    -- lines with C45 (same act, same day, another PS)
    f04                 bigint NOT NULL,    -- lines after death (C18) or during a stay (C46)
    max_identical       bigint NOT NULL,    -- F06: most identical lines (beneficiary, act) in one batch
    score               double precision NOT NULL DEFAULT 0,
    top                 jsonb NOT NULL DEFAULT '[]',
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (practitioner, day)
);
CREATE INDEX fraud_days_by_score ON fraud_practitioner_days (day, score DESC);

CREATE TABLE fraud_offsets (
    app_id      text NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint NOT NULL,            -- next fse.lines offset to read
    watermarks  jsonb NOT NULL,             -- "<liquidate partition>:<lots partition>" → last lots offset
    PRIMARY KEY (app_id, partition)
);

CREATE TABLE fraud_alerts (
    practitioner   bigint NOT NULL,
    day            date NOT NULL,
    ps             bigint NOT NULL,
    speciality     smallint NOT NULL,
    score          double precision NOT NULL,
    at_stake_cents bigint NOT NULL,
    explanation    jsonb NOT NULL,          -- the top indicators with their contribution and value
    alerted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (practitioner, day)
);
