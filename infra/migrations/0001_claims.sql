-- Claims: received files, lots and files refused by the ARL, décomptes with their lines,
-- rejects and signals (codecs/decompte.schema.json). Amounts are integer cents (bigint).
-- Every key is deterministic from the file's bytes, so a replayed batch inserts nothing twice.
-- No foreign keys: children are written in the same statement as their décompte, and a
-- per-row FK check would double the cost of the sink's one insert per table.

CREATE TABLE files (
    file_id        text NOT NULL CHECK (file_id ~ '^[0-9a-f]{64}$'),  -- SHA-256 of the bytes
    name           text NOT NULL,
    size           bigint NOT NULL,
    emitter        bigint,            -- emitter PS number of the 000 header, NULL when unreadable
    file_sequence  integer,
    creation_date  date,
    received_at    timestamptz NOT NULL,
    arl_status     char(1) NOT NULL CHECK (arl_status IN ('P', 'L', 'N')),
    arl_reasons    jsonb NOT NULL DEFAULT '[]',
    n_lots         integer NOT NULL,
    n_lots_refused integer NOT NULL,
    n_invoices     integer NOT NULL,  -- invoices sent on to liquidation
    decoded_at     timestamptz,
    duplicate_of   text,              -- C09: name of the file first received with this identity
    -- the stream record that carried it ("partition:offset"): one row per reception, so a file
    -- dropped twice is two rows (the second with duplicate_of), and a replayed record is one
    src            text NOT NULL DEFAULT '',
    PRIMARY KEY (file_id, src)
);
-- not unique: a file sent again under a new sequence (or the same one) is detected in code (C09)
CREATE INDEX files_emitter_sequence ON files (emitter, file_sequence);

-- A lot (or, lot < 0, a whole file or a lot whose number is unreadable) refused by the ARL:
-- kept, never dropped. Unknown lots of one file are numbered -1, -2, ... in record order.
CREATE TABLE lots_refused (
    file_id    text NOT NULL,
    lot        integer NOT NULL,
    file       text NOT NULL,
    reasons    jsonb NOT NULL,        -- [{code, line, field, record, message}]
    written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    src        text NOT NULL DEFAULT '',   -- the reception (files.src) that was refused
    PRIMARY KEY (file_id, src, lot)
);

-- One row per invoice. The key is (file_id, record): `record` (the invoice's record ordinal)
-- is unique in a file, whereas (lot, invoice, ps) is not — an invoice sent twice in one lot
-- is two décomptes, the second one rejected by C28.
CREATE TABLE decomptes (
    file_id             text NOT NULL,
    record              integer NOT NULL,
    file                text NOT NULL,
    lot                 integer NOT NULL,
    invoice             text NOT NULL,
    ps                  text NOT NULL,
    nir                 text NOT NULL,
    rang                text NOT NULL,
    status              text NOT NULL CHECK (status IN ('paid', 'rejected')),
    payee               text CHECK (payee IN ('ps', 'insured')),
    nature              text,
    reception_date      date,
    liquidation_date    date,
    -- totals over the lines
    billed_cents        bigint NOT NULL,
    tariff_cents        bigint NOT NULL,
    base_cents          bigint NOT NULL,
    excess_cents        bigint NOT NULL,
    flat_share_cents    bigint NOT NULL,
    amo_cents           bigint NOT NULL,
    c2s_cents           bigint NOT NULL,
    pf_cents            bigint NOT NULL,
    franchise_cents     bigint NOT NULL,
    net_cents           bigint NOT NULL,
    paid_cents          bigint NOT NULL,
    debt_cents          bigint NOT NULL,
    patient_share_cents bigint NOT NULL,
    received_at         timestamptz,
    liquidated_at       timestamptz,
    -- the row's own insert time (clock_timestamp, not the transaction's start: write latency)
    written_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    partition           integer,
    PRIMARY KEY (file_id, record)
);

CREATE TABLE decompte_lines (
    file_id             text NOT NULL,
    record              integer NOT NULL,
    line                smallint NOT NULL,
    type                text NOT NULL,
    act                 text NOT NULL,
    care_date           date,
    qty                 integer NOT NULL,
    coef_hundredths     integer NOT NULL,
    status              text NOT NULL CHECK (status IN ('paid', 'rejected')),
    reject              text,
    billed_cents        bigint NOT NULL,
    tariff_cents        bigint NOT NULL,
    base_cents          bigint NOT NULL,
    excess_cents        bigint NOT NULL,
    rate_pct            smallint NOT NULL,
    flat_share_cents    bigint NOT NULL,
    amo_cents           bigint NOT NULL,
    c2s_cents           bigint NOT NULL,
    pf_cents            bigint NOT NULL,
    franchise_cents     bigint NOT NULL,
    net_cents           bigint NOT NULL,
    paid_cents          bigint NOT NULL,
    debt_cents          bigint NOT NULL,
    patient_share_cents bigint NOT NULL,
    budget              text NOT NULL,
    PRIMARY KEY (file_id, record, line)
);

-- rejects and signals of an invoice, in the décompte's order (ordinal from 0)
CREATE TABLE decompte_rejects (
    file_id    text NOT NULL,
    record     integer NOT NULL,
    ordinal    smallint NOT NULL,
    code       text NOT NULL,
    line       smallint,
    field      text,
    at_record  integer,   -- a reject's own `record` (ARL reasons only)
    message    text,
    PRIMARY KEY (file_id, record, ordinal)
);

CREATE TABLE decompte_signals (
    file_id text NOT NULL,
    record  integer NOT NULL,
    ordinal smallint NOT NULL,
    code    text NOT NULL,
    line    smallint,
    PRIMARY KEY (file_id, record, ordinal)
);
