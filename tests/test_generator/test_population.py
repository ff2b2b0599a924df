"""The population matches population.md: exact at full scale, within the stated tolerances at any scale."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fseflow.days import NO_DATE, OPEN_END, parse_iso
from fseflow.generator import _shares as S
from fseflow.generator._ids import iban_valid, nir_key
from fseflow.generator.population import BENEFICIARY_COLUMNS, Population, scaled, write_beneficiaries
from fseflow.tests.test_generator.support import AS_OF

TABLE = np.array(S.AGE_STATUS_COUNTS)


def _age_band(pop: Population) -> np.ndarray:
    """Band of each person from its age at as_of (recomputed, not the stored band)."""
    edges = np.array([b[1] for b in S.BANDS])
    return np.searchsorted(edges, pop.age, side="right") - 1


def test_full_scale_counts_are_exact(full_population: Population) -> None:
    pop = full_population
    cells = np.zeros_like(TABLE)
    np.add.at(cells, (_age_band(pop), pop.status), 1)
    assert (cells == TABLE).all()
    assert int((pop.sex == 1).sum()) == S.MEN
    assert int((pop.ald_start != NO_DATE).sum()) == S.ALD
    assert int((pop.c2s_start != NO_DATE).sum()) == S.C2S
    assert int(pop.c2s_free.sum()) == S.C2S_FREE
    assert int((pop.apias_event != NO_DATE).sum()) == S.APIAS_INSURED
    assert int((pop.sig_start != NO_DATE).sum()) == S.SIG_HOLDERS
    assert int(pop.sig_consumer.sum()) == S.SIG_CONSUMERS


def test_shares_within_tolerance(population: Population) -> None:
    pop = population
    n = len(pop)
    assert n >= 100_000
    band_share = np.bincount(_age_band(pop), minlength=len(S.BANDS)) / n
    assert np.abs(band_share - TABLE.sum(axis=1) / S.FULL_SCALE).max() <= 0.005
    status_share = np.bincount(pop.status, minlength=4) / n
    assert np.abs(status_share - TABLE.sum(axis=0) / S.FULL_SCALE).max() <= 0.005
    assert abs((pop.sex == 1).mean() - 0.701) <= 0.005
    ald = int((pop.ald_start != NO_DATE).sum())
    assert abs(ald - S.ALD * n / S.FULL_SCALE) <= 0.01 * S.ALD * n / S.FULL_SCALE
    assert abs((pop.c2s_start != NO_DATE).mean() - S.C2S / S.FULL_SCALE) <= 0.001


def test_ald_prevalence_rises_with_age(population: Population) -> None:
    pop = population
    band = _age_band(pop)
    rate = np.array([(pop.ald_start[band == b] != NO_DATE).mean() for b in range(len(S.BANDS))])
    assert (np.diff(rate[[0, 4, 8, 12, 16]]) > 0).all()


def test_households(population: Population) -> None:
    pop = population
    opener = pop.opener
    assert (pop.quality[opener] == 1).all() and (pop.status[opener] < S.FAMILY).all()
    insured = pop.status < S.FAMILY
    assert (opener[insured] == np.flatnonzero(insured)).all() and (pop.quality[insured] == 1).all()
    family = ~insured
    assert (pop.quality[family & (pop.age < 18)] == 3).all()
    assert set(np.unique(pop.quality[family]).tolist()) <= {2, 3, 4}
    assert np.bincount(opener[pop.quality == 2]).max() == 1  # one spouse per opener
    # C2S is granted by whole household
    c2s = pop.c2s_start != NO_DATE
    assert (c2s == c2s[opener]).all()


def test_sig_and_apias_holders(population: Population) -> None:
    pop = population
    sig = pop.sig_start != NO_DATE
    assert (pop.status[sig] == S.RETIRED).all() and (pop.age[sig] >= 60).all()
    assert (pop.sig_end[sig] == OPEN_END).all()
    apias = pop.apias_event != NO_DATE
    assert (pop.status[apias] == S.ACTIVE).all()
    assert int(apias.sum()) == scaled(S.APIAS_INSURED, len(pop))


@pytest.fixture(scope="module")
def csv_rows(population: Population, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    path: Path = tmp_path_factory.mktemp("pop") / "beneficiaries.csv"
    write_beneficiaries(population, path)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == BENEFICIARY_COLUMNS
        return list(reader)


def test_csv_identifiers_are_valid(csv_rows: list[dict[str, str]], population: Population) -> None:
    assert len(csv_rows) == len(population)
    for r in csv_rows:
        assert len(r["nir"]) == 13 and nir_key(r["nir"]) == int(r["key"]) and len(r["key"]) == 2
        assert r["nir"][0] in "12" and r["sex"] in "12" and len(r["rang"]) == 3
        if r["iban"]:
            assert iban_valid(r["iban"]) and r["quality"] == "1"
    corsica = sum(r["nir"][5:7] in ("2A", "2B") for r in csv_rows)
    assert corsica > 0
    without = sum(r["quality"] == "1" and not r["iban"] for r in csv_rows)
    insured = sum(r["quality"] == "1" for r in csv_rows)
    assert 0 < without < 0.05 * insured


def test_csv_keys_are_unique_and_dates_coherent(csv_rows: list[dict[str, str]]) -> None:
    keys = {(r["nir"], r["birth_date"], r["birth_rank"], r["quality"]) for r in csv_rows}
    assert len(keys) == len(csv_rows)
    assert len({(r["nir"], r["birth_date"], r["birth_rank"]) for r in csv_rows}) == len(csv_rows)
    assert any(r["birth_rank"] == "2" for r in csv_rows)  # twins
    for r in csv_rows:
        birth = parse_iso(r["birth_date"])
        start = parse_iso(r["rights_start"])
        assert birth <= start and r["rights_start"]
        if r["rights_end"]:
            assert start <= parse_iso(r["rights_end"])
        if r["death_date"]:
            assert r["rights_end"] == r["death_date"]
        for p in ("ald", "c2s", "sig"):
            if r[f"{p}_start"] and r[f"{p}_end"]:
                assert parse_iso(r[f"{p}_start"]) <= parse_iso(r[f"{p}_end"])
        # B2 birth dates are AAMMJJ: no one may be 100 years older than a file (b2-profile.md §1)
        assert int(r["birth_date"][:4]) > 2026 - 100


def test_same_seed_same_population() -> None:
    from fseflow.generator.population import build_population

    a, b = (build_population(20_000, AS_OF, np.random.default_rng(3)) for _ in range(2))
    c = build_population(20_000, AS_OF, np.random.default_rng(4))
    assert all((getattr(a, f) == getattr(b, f)).all() for f in ("own_nir", "birth", "opener", "ald_start", "iban"))
    assert not (a.own_nir == c.own_nir).all()
