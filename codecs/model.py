"""Object model of a B2 profile v1 file, the form the encoder takes and `b2.parse` gives back.

Each record is a plain mapping from the field names of b2-profile.md §3 to Python values:

| layout kind | Python value |
|---|---|
| `N` n, `N(i+d)`, `M(i+d)` | int (coefficients in their smallest unit, amounts in cents) |
| `A` n | str, without its padding |
| `D` | `datetime.date`, or None for `000000` |

The encoder fills what it can derive: `record_type`, `lot_number`, `record_seq`, the repeated
identification (bytes 12–38) of invoice records, and every count and total of types 5, 9 and
999 that the given record does not set. A test that needs a wrong total sets it explicitly.
Fillers are never carried.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Fields = dict[str, Any]


@dataclass
class Detail:
    """A detail record (`3H`, `3F`, `4M`, `4B`, `4P`) of its parent line."""

    kind: str
    fields: Fields = field(default_factory=dict)


@dataclass
class Line:
    """A `3` (hospital) or `4` (fee) line and its detail records, in record order."""

    kind: str
    fields: Fields = field(default_factory=dict)
    details: list[Detail] = field(default_factory=list)


@dataclass
class Invoice:
    """Type 2 (`head`), type 2S (`complement`), its lines, and type 5 (`end`, derived if empty)."""

    head: Fields = field(default_factory=dict)
    complement: Fields = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    end: Fields = field(default_factory=dict)


@dataclass
class Lot:
    """Lot header (type 1), invoices, and lot end (type 9, derived where not set)."""

    header: Fields = field(default_factory=dict)
    invoices: list[Invoice] = field(default_factory=list)
    end: Fields = field(default_factory=dict)


@dataclass
class B2File:
    """File header (000), lots, and file end (999, derived where not set)."""

    header: Fields = field(default_factory=dict)
    lots: list[Lot] = field(default_factory=list)
    end: Fields = field(default_factory=dict)
