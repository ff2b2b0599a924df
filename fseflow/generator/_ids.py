"""Identifier arithmetic: NIR keys, Luhn keys, French IBANs and EAN-13 (CIP13) check digits.

Scalar forms are for single identifiers and tests; the `*_array` forms work on numpy int64
arrays so a full-scale population is keyed in one pass (b2-profile.md §4).
"""
from __future__ import annotations

from typing import Final

import numpy as np

# the identifier checks are the codec's (b2-profile.md §4); re-exported under the generator's names
from fseflow.codecs.nir import ean13_ok as ean13_valid  # noqa: F401 (re-exported)
from fseflow.codecs.nir import luhn_key, nir_key  # noqa: F401 (re-exported)
from fseflow.codecs.nir import luhn_ok as luhn_valid  # noqa: F401 (re-exported)

#: NIR characters 6–7 of Corsica and the digits that replace them before the modulo
CORSICA: Final = {1: ("2A", 19), 2: ("2B", 18)}
_TEN_POW = [10**k for k in range(20)]


def nir_key_array(nir_numeric: np.ndarray) -> np.ndarray:
    """Keys of 13-digit NIRs already carried as int64 (Corsica digits replaced)."""
    return (97 - nir_numeric % 97).astype(np.int16)


def nir_strings(nir_numeric: np.ndarray, corsica: np.ndarray) -> np.ndarray:
    """13-byte NIR strings (`S13`); 2A/2B written back at characters 6–7."""
    raw = nir_numeric.astype("S13")
    chars = np.frombuffer(raw.tobytes(), dtype=np.uint8).reshape(-1, 13).copy()
    for flag, (text, _) in CORSICA.items():
        rows = corsica == flag
        chars[rows, 5] = ord(text[0])
        chars[rows, 6] = ord(text[1])
    return chars.view("S13").reshape(-1)


def with_luhn(payload: str) -> str:
    return payload + str(luhn_key(payload))


def ean13_key(payload: str) -> int:
    """EAN-13 check digit over 12 digits (weights 1, 3, 1, 3 … from the left)."""
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(payload))
    return (10 - total % 10) % 10


def _mod97_pow(k: int) -> int:
    return _TEN_POW[k] % 97 if k < len(_TEN_POW) else pow(10, k, 97)


def rib_key_array(bank: np.ndarray, branch: np.ndarray, account: np.ndarray) -> np.ndarray:
    """RIB keys: 97 − (bank·10^16 + branch·10^11 + account)·100 mod 97 (numeric accounts)."""
    rest = (bank % 97 * _mod97_pow(18) + branch % 97 * _mod97_pow(13) + account % 97 * _mod97_pow(2)) % 97
    return 97 - rest


def iban_array(bank: np.ndarray, branch: np.ndarray, account: np.ndarray) -> np.ndarray:
    """French IBANs (`S27`). With a valid RIB key the BBAN is 0 mod 97, so the check digits are 76."""
    key = rib_key_array(bank, branch, account)
    bban = (np.char.zfill(bank.astype("S5"), 5) + np.char.zfill(branch.astype("S5"), 5)
            + np.char.zfill(account.astype("S11"), 11) + np.char.zfill(key.astype("S2"), 2))
    return (np.bytes_(b"FR76") + bban).astype("S27")


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: length 27 for FR, rearranged number mod 97 = 1."""
    if len(iban) != 27 or not iban.startswith("FR"):
        return False
    moved = iban[4:] + iban[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1
