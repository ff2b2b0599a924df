-- The beneficiary side of fraud scoring (fraud.md §4: a score per beneficiary-day): the sums the
-- fraud agent adds per batch, in the same transaction as its offsets, and the alerts. `bene` is
-- the row of the loaded beneficiary directory (pseudonymous: no NIR, no name).

CREATE TABLE fraud_beneficiary_days (
    bene            bigint NOT NULL,
    day             date NOT NULL,          -- care date
    lines           bigint NOT NULL,
    at_stake_cents  bigint NOT NULL,        -- AMO paid, or declared on rejected lines
    f03             bigint NOT NULL,        -- lines with C45 (same act, same day, another PS)
    f04             bigint NOT NULL,        -- lines after death (C18) or during a stay (C46)
    max_identical   bigint NOT NULL,        -- F06: most identical auxiliary lines (practitioner, act) in one batch
    boxes           bigint NOT NULL DEFAULT 0,  -- F09: most boxes of one CIP13 in the month up to this day
    pharmacies      bigint NOT NULL DEFAULT 0,  -- F09: most pharmacies dispensing one CIP13, same window
    score           double precision NOT NULL DEFAULT 0,
    top             jsonb NOT NULL DEFAULT '[]',
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (bene, day)
);
CREATE INDEX fraud_bene_days_by_score ON fraud_beneficiary_days (day, score DESC);

-- F09: boxes of a drug dispensed to a beneficiary, per day and pharmacy
CREATE TABLE fraud_dispensings (
    bene   bigint NOT NULL,
    cip13  bigint NOT NULL,
    day    date NOT NULL,
    ps     bigint NOT NULL,                 -- the pharmacy's billing number
    boxes  bigint NOT NULL,
    PRIMARY KEY (bene, cip13, day, ps)
);

CREATE TABLE fraud_beneficiary_alerts (
    bene           bigint NOT NULL,
    day            date NOT NULL,
    score          double precision NOT NULL,
    at_stake_cents bigint NOT NULL,
    explanation    jsonb NOT NULL,
    alerted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (bene, day)
);
