-- Payments (payments.md): the ledger per payer budget and payee, the daily cut-offs, their SEPA
-- files and transfers, the carried balances, and each tiers-payant invoice's payment delay.
--
-- A ledger entry is settled in exactly one place (P2): inside one transfer (settled_by = its
-- EndToEndId) or, while settled_by is NULL, inside the carried balance of its payee. A payee's
-- carried balance is therefore the signed sum of its unsettled entries.

-- The décompte records gained the invoice's payee code (35 and 36 both pay the PS) and the
-- patient's identity as the B2 gives it: the returns to professionals report them.
ALTER TABLE decomptes ADD COLUMN payee_code smallint, ADD COLUMN birth_date date, ADD COLUMN birth_rank smallint,
    ADD COLUMN quality smallint;

CREATE TABLE ledger_entries (
    -- the décompte line it comes from: (file_id, record) is the décompte key, line from 1;
    -- a penalty has line 0, -1 or -2 (its budget); a write-off has file_id = its tag WO<budget><day><payee>
    file_id          text NOT NULL,
    record           integer NOT NULL,
    line             smallint NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('credit', 'debit', 'penalty', 'write_off')),
    budget           text NOT NULL CHECK (budget IN ('AMO', 'APIAS', 'SIG')),
    payee_kind       char(1) NOT NULL CHECK (payee_kind IN ('P', 'A')),  -- P: PS, A: insured
    -- the PS billing number, or the opener's beneficiaries.row_id (never a NIR)
    payee_id         text NOT NULL,
    amount_cents     bigint NOT NULL CHECK (amount_cents > 0),   -- debits are subtracted by kind
    lot              integer NOT NULL,
    invoice          text NOT NULL,
    liquidation_date date NOT NULL,
    entered_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    settled_by       text,            -- EndToEndId of the transfer that paid it; NULL while carried
    PRIMARY KEY (file_id, record, line, kind)
);
CREATE INDEX ledger_unsettled ON ledger_entries (budget, payee_kind, payee_id) WHERE settled_by IS NULL;
CREATE INDEX ledger_by_transfer ON ledger_entries (settled_by) WHERE settled_by IS NOT NULL;
CREATE INDEX ledger_by_day ON ledger_entries (liquidation_date);

-- One cut-off per (budget, day); run_no counts re-runs that found new entries (01 first).
CREATE TABLE payment_runs (
    budget         text NOT NULL,
    day            date NOT NULL,
    msg_id         text NOT NULL UNIQUE,
    created        timestamp NOT NULL,       -- CreDtTm: the cut-off, Europe/Paris wall time
    execution_date date NOT NULL,
    n_tx           integer NOT NULL,
    ctrl_sum_cents bigint NOT NULL,
    file_name      text,                     -- NULL when nothing was to be paid (no file)
    sha256         text,
    written_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (budget, day)
);

CREATE TABLE transfers (
    end_to_end_id  text PRIMARY KEY,
    msg_id         text NOT NULL REFERENCES payment_runs (msg_id),
    budget         text NOT NULL,
    payee_kind     char(1) NOT NULL,
    payee_id       text NOT NULL,
    amount_cents   bigint NOT NULL CHECK (amount_cents > 0),
    execution_date date NOT NULL,
    creditor_name  text NOT NULL,
    creditor_iban  text NOT NULL,
    remittance     text NOT NULL,
    n_items        integer NOT NULL           -- invoices (PS) or décomptes (insured) in the transfer
);
CREATE INDEX transfers_by_run ON transfers (msg_id);

-- The balances carried at each cut-off: debts (< 0) and held payments (> 0, with the reason).
CREATE TABLE carried_balances (
    budget        text NOT NULL,
    day           date NOT NULL,
    payee_kind    char(1) NOT NULL,
    payee_id      text NOT NULL,
    balance_cents bigint NOT NULL CHECK (balance_cents <> 0),
    reason        text NOT NULL,             -- 'debt' or the hold reason ('no valid IBAN')
    since         date NOT NULL,             -- oldest unsettled entry: the write-off clock
    PRIMARY KEY (budget, day, payee_kind, payee_id)
);

-- Each tiers-payant invoice once its PS has been paid: the deadline of payments.md §5.
CREATE TABLE invoice_payments (
    file_id          text NOT NULL,
    record           integer NOT NULL,
    budget           text NOT NULL,
    ps               text NOT NULL,
    reception_date   date NOT NULL,
    liquidation_date date NOT NULL,
    msg_id           text NOT NULL,
    execution_date   date NOT NULL,
    delay_wd         integer NOT NULL,        -- French working days after reception, to execution
    penalty_cents    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (file_id, record, budget)
);

-- The NOEMIE-style return sent to each PS for a liquidation day (returns.md §2).
CREATE TABLE ps_returns (
    ps         text NOT NULL,
    day        date NOT NULL,
    sequence   integer NOT NULL,            -- per PS, from 1
    file_name  text NOT NULL,
    sha256     text NOT NULL,
    invoices   integer NOT NULL,
    paid_cents bigint NOT NULL,             -- Σ 250 type 01: the day's transfers to this PS
    written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (ps, day),
    UNIQUE (ps, sequence)
);
