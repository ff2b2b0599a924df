-- The fraud scoring table (processors/tables/fraud_weights.csv): weights and thresholds of
-- fraud.md §4, loaded like every code table so the database holds the profile in force.
CREATE TABLE ref_fraud_weights (
    ord integer PRIMARY KEY,
    id text,
    weight text,
    op text,
    threshold text,
    min_count text,
    max_count text,
    alt_op text,
    alt_threshold text,
    months text,
    unit text,
    confidence text,
    note text
);
