"""Counter state carried across invoices (liquidation.md §3), as one hash table.

Every counter and index is an entry keyed `(kind << 40 | beneficiary, b, c)`:

| kind | b | c | value |
|---|---|---|---|
| PF_DAY | practitioner | care date | PF cents taken (L10) |
| PF_YEAR | care year | 0 | PF cents taken (L10) |
| FR_DAY | franchise kind | care date | franchise cents taken (L11) |
| FR_YEAR | liquidation year | 0 | franchise cents taken (L11) |
| INVOICE | PS billing n° | invoice n° | liquidation date of the paid invoice (C28) |
| ONCE | practitioner | care date | consultations/visits paid (C37) |
| B17 | 0 | care date | B 17 fees paid (C37) |
| ACT_DAY | act id | care date | billing n° of the first PS paid for it (C45) |
| STAY | 0 | day | 1 inside a paid hospital stay (C46) |

A practitioner is the line's executor RPPS, or minus the lot's billing number when the RPPS is
zeros, so the two can never collide (liquidation.md terms: they count as two practitioners).
"""
from __future__ import annotations

from typing import Final

from numba import njit

from fseflow.config import NJIT_OPTIONS

PF_DAY, PF_YEAR, FR_DAY, FR_YEAR, INVOICE, ONCE, B17, ACT_DAY, STAY = range(1, 10)
KIND_SHIFT: Final = 40
#: upper bound of the entries one line can add: ONCE or B17, PF_DAY, PF_YEAR, FR_DAY, FR_YEAR, ACT_DAY
MAX_NEW_KEYS_PER_LINE: Final = 6


@njit(**NJIT_OPTIONS)
def key_a(kind: int, bene: int) -> int:
    return (kind << KIND_SHIFT) | bene
