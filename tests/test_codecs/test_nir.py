"""Identifier checks of b2-profile.md §4."""
from __future__ import annotations

import numpy as np
import pytest

from fseflow.codecs import nir


def test_nir_keys_of_the_profile() -> None:
    assert nir.nir_key("2550814168025") == 38
    assert nir.nir_key("1850483137042") == 29 and nir.nir_key("1490383137009") == 64
    assert nir.nir_key("2521113055118") == 65
    assert nir.nir_key_ok("1850483137042", "29") and not nir.nir_key_ok("1850483137042", 28)
    assert not nir.nir_key_ok("1850483137042", "2 ")


def test_corsica() -> None:
    assert nir.nir_id("185042A123456") == 10**13 + 1850419123456
    assert nir.nir_id("185042B123456") == 2 * 10**13 + 1850418123456
    assert nir.nir_key("185042A123456") == 97 - 1850419123456 % 97
    assert nir.nir_id("185042A123456") != nir.nir_id("1850419123456")


@pytest.mark.parametrize("bad", ["", "185048313704", "18504831370422", "1850X83137042", "18504A2137042", "1850482A37042"])
def test_malformed_nir(bad: str) -> None:
    assert nir.nir_id(bad) == -1 and nir.nir_key(bad) == -1


def test_vectorised_nir_ids_equal_the_scalar() -> None:
    values = ["1850483137042", "185042A123456", "185042B123456", "1850X83137042", "             "]
    ids = nir.nir_ids(np.array([v.encode() for v in values], dtype="S13"))
    assert ids.tolist() == [nir.nir_id(v) for v in values]
    assert nir.nir_keys(ids).tolist() == [nir.nir_key(v) for v in values]
    with pytest.raises(TypeError, match="astype"):
        nir.nir_ids(np.array(["x"]))


def test_ps_billing_number_luhn() -> None:
    assert nir.luhn_key("99103843") == 1 and nir.luhn_key("99078105") == 6
    assert nir.ps_number_ok("830004123") and nir.ps_number_ok("991038431")
    assert not nir.ps_number_ok("830004124") and not nir.ps_number_ok("83000412")
    buf = np.frombuffer(b"xx830004123", np.uint8)
    assert nir.luhn_ok_at(buf, 2, 9) and not nir.luhn_ok_at(buf, 1, 9)


def test_finess_and_cip13() -> None:
    assert nir.finess_ok("830012340") and not nir.finess_ok("830012341") and not nir.finess_ok("2A0012340")
    assert nir.ean13_ok("3400930000120") and not nir.ean13_ok("3400930000121")
    assert nir.ean13_ok_at(np.frombuffer(b"3400930000120", np.uint8), 0)
