-- Month-level fraud scoring (fraud.md §3-§4, stream/fraud_month.py): the sums the fraud agent
-- adds per batch beside the practitioner-days (in the same transaction as its offsets), and the
-- practitioner-month scores of the periodic peer pass.

ALTER TABLE ref_fraud_weights ADD COLUMN min_volume text;

ALTER TABLE fraud_practitioner_days
    ADD COLUMN billed_cents bigint NOT NULL DEFAULT 0,
    ADD COLUMN base_cents   bigint NOT NULL DEFAULT 0,
    ADD COLUMN tp_lines     bigint NOT NULL DEFAULT 0,  -- lines of tiers-payant invoices
    ADD COLUMN coef_sum     bigint NOT NULL DEFAULT 0,  -- Σ coefficients (hundredths)
    ADD COLUMN coef_lines   bigint NOT NULL DEFAULT 0,  -- lines with a coefficient
    ADD COLUMN invoices     bigint NOT NULL DEFAULT 0;
CREATE INDEX fraud_days_by_ps ON fraud_practitioner_days (ps, day);

-- who treated whom: patients, patient-days (bit d-1 of `days` = care on day d of the month),
-- re-billed patient-days (F06) and ghost patients (F10)
CREATE TABLE fraud_links (
    practitioner bigint NOT NULL,
    month        date NOT NULL,
    bene         bigint NOT NULL,          -- row of the loaded beneficiary directory (pseudonymous, no NIR)
    lines        bigint NOT NULL,
    invoices     bigint NOT NULL,
    days         integer NOT NULL,
    PRIMARY KEY (practitioner, month, bene)
);
CREATE INDEX fraud_links_by_bene ON fraud_links (bene, month);

-- F08: supplier (billing number) x prescriber x month, supply families only
CREATE TABLE fraud_prescriptions (
    ps           bigint NOT NULL,
    prescriber   bigint NOT NULL,
    month        date NOT NULL,
    invoices     bigint NOT NULL,
    billed_cents bigint NOT NULL,
    PRIMARY KEY (ps, month, prescriber)
);

CREATE TABLE fraud_month_scores (
    practitioner   bigint NOT NULL,
    month          date NOT NULL,
    ps             bigint NOT NULL,
    speciality     smallint NOT NULL,
    score          double precision NOT NULL,
    at_stake_cents bigint NOT NULL,            -- AMO at stake of the practitioner's month
    explanation    jsonb NOT NULL,
    scored_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (practitioner, month)
);
CREATE INDEX fraud_month_by_score ON fraud_month_scores (month, score DESC);

-- F07: when each billing number first billed the fund (earliest liquidation date seen); the
-- earliest of all is where the fraud history starts
CREATE TABLE fraud_billers (
    ps           bigint PRIMARY KEY,
    first_billed date NOT NULL
);
