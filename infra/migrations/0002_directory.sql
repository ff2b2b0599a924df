-- The beneficiary rights table and the PS directory: every column of beneficiaries.csv and
-- professionals.csv, plus row_id = the row's place in the kernels' arrays. The kernels key
-- their counter state by row, so a row never moves: loading appends new people at the end
-- (row_id max + 1 ...) and updates known ones in place.

CREATE TABLE beneficiaries (
    row_id       bigint PRIMARY KEY,
    nir          text NOT NULL,
    key          text,
    rang         text,
    birth_date   date,
    birth_rank   smallint NOT NULL,
    sex          smallint NOT NULL,
    quality      smallint NOT NULL,
    rights_start date,
    rights_end   date,
    ald_start    date,
    ald_end      date,
    c2s_start    date,
    c2s_end      date,
    sig_start    date,
    sig_end      date,
    death_date   date,
    iban         text
);
-- one person = the kernels' index key (nir, birth date, birth rank, quality)
CREATE UNIQUE INDEX beneficiaries_person ON beneficiaries (nir, birth_date, birth_rank, quality) NULLS NOT DISTINCT;

-- codes stay text: leading zeros (ps_number, rpps, speciality, tariff zone) and Corsica's 2A/2B
CREATE TABLE professionals (
    row_id      bigint PRIMARY KEY,
    ps_number   text NOT NULL,
    rpps        text NOT NULL,
    speciality  text NOT NULL,
    convention  smallint NOT NULL,
    department  text,
    tariff_zone text NOT NULL,
    iban        text,
    name        text
);
CREATE UNIQUE INDEX professionals_pair ON professionals (ps_number, rpps);
