"""Identifier arithmetic against the worked values of b2-profile.md §4 and public check digits."""
from __future__ import annotations

import numpy as np

from fseflow.generator._ids import (
    ean13_key, ean13_valid, iban_array, iban_valid, luhn_key, luhn_valid, nir_key, nir_key_array, nir_strings,
)


def test_nir_key_of_the_profile_example() -> None:
    assert nir_key("2550814168025") == 38
    assert nir_key("1850483137042") == 29  # worked B2 file, invoice 1


def test_corsica_digits_are_replaced_before_the_modulo() -> None:
    numeric = np.array([1850419137042, 1850418137042])
    text = nir_strings(numeric, np.array([1, 2], dtype=np.int8))
    assert text.tolist() == [b"185042A137042", b"185042B137042"]
    assert nir_key("185042A137042") == int(nir_key_array(numeric)[0])
    assert nir_key("185042B137042") == int(nir_key_array(numeric)[1])


def test_luhn_keys_of_the_profile_examples() -> None:
    assert luhn_key("99103843") == 1 and luhn_key("99078105") == 6
    assert luhn_valid("830004123") and not luhn_valid("830004124")


def test_ean13() -> None:
    assert ean13_valid("4006381333931") and ean13_key("400638133393") == 1
    assert not ean13_valid("4006381333932")


def test_ibans_are_french_with_a_valid_checksum() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    ibans = iban_array(rng.integers(10_000, 99_999, n), rng.integers(0, 100_000, n), rng.integers(0, 10**11, n))
    assert all(i.startswith(b"FR76") and len(i) == 27 and iban_valid(i.decode()) for i in ibans.tolist())
    assert not iban_valid("FR7630004000031234567890144")
