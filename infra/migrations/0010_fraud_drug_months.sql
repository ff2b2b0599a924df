-- F09 at its grain (fraud.md §3: beneficiary x CIP13 x month): the boxes of one drug dispensed
-- to a beneficiary in a month and the pharmacies that dispensed it, one row each. Replaces the
-- per-day-and-pharmacy rows of 0009, which cost a month-to-date range read per dispensing.
CREATE TABLE fraud_drug_months (
    bene        bigint NOT NULL,             -- row of the loaded beneficiary directory (pseudonymous)
    cip13       bigint NOT NULL,
    month       date NOT NULL,               -- first day of the care month
    boxes       bigint NOT NULL,
    pharmacies  bigint[] NOT NULL,           -- distinct billing numbers, ascending
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (bene, cip13, month)
);
INSERT INTO fraud_drug_months (bene, cip13, month, boxes, pharmacies)
SELECT bene, cip13, date_trunc('month', day)::date, sum(boxes), array_agg(DISTINCT ps ORDER BY ps)
  FROM fraud_dispensings GROUP BY 1, 2, 3;
DROP TABLE fraud_dispensings;
