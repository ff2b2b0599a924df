"""The PS software's view of the reference tables: tariffs and rates in force at a care date.

The generator prices and rates its lines the way certified PS software would (liquidation.md
L03–L08), from the same CSVs the engine reads, but with its own code: the engine's figures
are then an independent check of the declared ones (C40/C41 signals).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from fseflow.processors.tables import read_table

_START = dt.date(1900, 1, 1)


@dataclass(frozen=True)
class Key:
    """One letter_keys.csv row in force."""

    code: str
    value_cents: int | None
    base_rate_pct: int | None
    category: str
    billed_by: tuple[str, ...]
    prescription_required: bool
    priced_by_unit: bool


def _date(s: str) -> dt.date:
    return dt.date.fromisoformat(s) if s else _START


class Tariffs:
    """Lookups by date over letter_keys, parameters, specialities, exonerations and parcours."""

    def __init__(self) -> None:
        self._keys: dict[tuple[str, str], list[tuple[dt.date, Key]]] = {}
        for r in read_table("letter_keys"):
            key = Key(r["code"], int(r["value_cents"]) if r["value_cents"] else None,
                      int(r["base_rate_pct"]) if r["base_rate_pct"] else None, r["category"],
                      tuple(r["billed_by"].split("|")), r["prescription_required"] == "yes",
                      r["priced_by"] == "unit")
            self._keys.setdefault((r["code"], r["tariff_zone"]), []).append((_date(r["effective_from"]), key))
        for key_rows in self._keys.values():
            key_rows.sort(key=lambda t: t[0])
        self._params: dict[str, list[tuple[dt.date, int | None]]] = {}
        for r in read_table("parameters"):
            value = int(r["value"]) if r["value"].lstrip("-").isdigit() else None
            self._params.setdefault(r["name"], []).append((_date(r["effective_from"]), value))
        for param_rows in self._params.values():
            param_rows.sort(key=lambda t: t[0])
        self.families = {r["code"]: tuple(r["billing_family"].split("|")) for r in read_table("specialities")}
        self.exonerations = {int(r["exo_mtf"]): r for r in read_table("exonerations")}
        self.in_pathway = {(" " if r["qualifier"] == "(space)" else r["qualifier"]): r["in_pathway"] == "yes"
                           for r in read_table("parcours")}

    @lru_cache(maxsize=None)
    def key(self, code: str, zone: str, day: dt.date) -> Key | None:
        """Row in force at `day` for the zone, else zone 00 (L03); None when none is (C34)."""
        for z in (zone, "00"):
            best = None
            for start, key in self._keys.get((code, z), ()):
                if start <= day:
                    best = key
            if best is not None:
                return best
        return None

    @lru_cache(maxsize=None)
    def param(self, name: str, day: dt.date) -> int:
        best: int | None = None
        for start, value in self._params[name]:
            if start <= day and value is not None:
                best = value
        if best is None:
            raise KeyError(f"parameter {name} has no value at {day.isoformat()}")
        return best

    @lru_cache(maxsize=None)
    def family(self, speciality: str, key: Key) -> str | None:
        """Billing family of a line: the first family of the speciality that the code names (C35)."""
        return next((f for f in self.families[speciality] if f in key.billed_by), None)


FAMILY_RATE_PARAM = {
    "physician": "RATE_FAMILY_PHYSICIAN", "midwife": "RATE_FAMILY_MIDWIFE", "dentist": "RATE_FAMILY_DENTIST",
    "nurse": "RATE_FAMILY_AUXILIARY", "physio": "RATE_FAMILY_AUXILIARY", "speech": "RATE_FAMILY_AUXILIARY",
    "orthoptist": "RATE_FAMILY_AUXILIARY", "podiatrist": "RATE_FAMILY_AUXILIARY", "lab": "RATE_FAMILY_LAB",
    "supplier": "RATE_FAMILY_SUPPLIER", "transporter": "RATE_FAMILY_TRANSPORTER",
}
#: natures liquidated at 100 % (natures_assurance.csv "100 % of base")
FULL_RATE_NATURES = frozenset(r["b2_code"] for r in read_table("natures_assurance")
                              if r["default_rate_rule"].startswith("100 %"))
OUT_OF_PATHWAY_CATEGORIES = ("consultation", "visit", "technical", "majoration")
FLAT_RULE_CODES = ("ADC", "ACO", "ADA", "ADE", "ADI", "ATM", "K")
ONCE_PER_DAY_CATEGORIES = ("consultation", "visit")


def round_half_up(numerator: int, denominator: int) -> int:
    """Half-up division of non-negative integers (L15)."""
    return (2 * numerator + denominator) // (2 * denominator)
