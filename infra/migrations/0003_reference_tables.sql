-- The domain code tables of processors/tables/*.csv, one table each (ref_<file name>), replaced
-- whole by `fseflow db load-reference`. Text columns as in the CSV; `ord` keeps the file's row order.

CREATE TABLE ref_act_minutes (
    ord integer PRIMARY KEY,
    code text,
    minutes text,
    per text,
    confidence text,
    note text
);

CREATE TABLE ref_exonerations (
    ord integer PRIMARY KEY,
    exo_mtf text,
    label text,
    exonerating text,
    rate_pct text,
    rights_check text,
    funding_budget text,
    pf_exempt text,
    franchise_exempt text,
    confidence text,
    source text
);

CREATE TABLE ref_letter_keys (
    ord integer PRIMARY KEY,
    code text,
    ps5_code text,
    label text,
    category text,
    value_eur text,
    value_cents text,
    effective_from text,
    base_rate_pct text,
    subject_to_pf text,
    subject_to_franchise text,
    confidence text,
    tariff_zone text,
    billed_by text,
    prescription_required text,
    source text,
    priced_by text
);

CREATE TABLE ref_natures_assurance (
    ord integer PRIMARY KEY,
    snds_code text,
    b2_code text,
    label text,
    default_rate_rule text,
    accepted_in_v1 text,
    lot_family text,
    funding_budget text,
    pf_franchise text,
    confidence text,
    source text
);

CREATE TABLE ref_parameters (
    ord integer PRIMARY KEY,
    name text,
    value text,
    unit text,
    effective_from text,
    confidence text,
    source text
);

CREATE TABLE ref_parcours (
    ord integer PRIMARY KEY,
    qualifier text,
    meaning text,
    in_pathway text,
    accepted_by_cp_subnorm text,
    confidence text
);

CREATE TABLE ref_payees (
    ord integer PRIMARY KEY,
    drg_nat text,
    label text,
    payee text,
    accepted_in_v1 text,
    note text,
    confidence text
);

CREATE TABLE ref_regimes (
    ord integer PRIMARY KEY,
    b2_code text,
    snds_code text,
    label text,
    destination_accepted text,
    confidence text,
    source text
);

CREATE TABLE ref_reject_codes (
    ord integer PRIMARY KEY,
    code text,
    label text,
    controls text,
    level text,
    severity text,
    kind text
);

CREATE TABLE ref_specialities (
    ord integer PRIMARY KEY,
    code text,
    kind text,
    label text,
    billing_family text,
    source text,
    confidence text
);

CREATE TABLE ref_tariff_zones (
    ord integer PRIMARY KEY,
    zone text,
    label text,
    departments text,
    confidence text
);
