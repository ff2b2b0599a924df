"""The PS directory: valid billing numbers, categories, structures, zones (b2-profile.md §4–5, controls.md §2 P)."""
from __future__ import annotations

from collections import Counter

from fseflow.generator._ids import iban_valid, luhn_valid
from fseflow.generator.professionals import NO_RPPS, PS_KINDS, ZONE_OF_DEPT, Directory
from fseflow.processors.tables import read_table

FAMILY = {r["code"]: r["billing_family"] for r in read_table("specialities")}
#: category digit of a billing number by billing family (b2-profile.md §4)
CATEGORY = {"physician": 1, "pharmacy": 2, "supplier": 2, "transporter": 2, "lab": 3, "physician|lab": 3,
            "dentist": 4, "midwife": 5, "nurse": 6, "physio": 7, "podiatrist": 8, "speech": 9, "orthoptist": 9,
            "structure": 0}


def test_billing_numbers_and_rpps(directory: Directory) -> None:
    numbers = [p.ps_number for p in directory.professionals]
    assert len(set(numbers)) == len(numbers)
    for p in directory.professionals:
        assert len(p.ps_number) == 9 and luhn_valid(p.ps_number)
        assert int(p.ps_number[2]) == CATEGORY[FAMILY[p.speciality]]
        assert p.speciality in FAMILY and p.convention in (1, 2)
        assert p.convention == 1 or FAMILY[p.speciality] == "physician"
        assert p.tariff_zone == ZONE_OF_DEPT.get(p.department, "00")
        assert iban_valid(p.iban)
    rpps = [r[1] for r in directory.rows() if r[1] != NO_RPPS]
    assert len(set(rpps)) == len(rpps) and all(len(r) == 11 and r.isdigit() for r in rpps)


def test_directory_rows_and_structures(directory: Directory) -> None:
    rows = directory.rows()
    assert len(set((r[0], r[1]) for r in rows)) == len(rows)
    structures = [p for p in directory.professionals if p.is_structure]
    assert structures
    for s in structures:
        own = [r for r in rows if r[0] == s.ps_number]
        assert own[0][1] == NO_RPPS and own[0][2] == "00"
        assert len(own) == 1 + len(s.members) >= 3
        assert all(r[2] != "00" and r[1] != NO_RPPS for r in own[1:])
        assert len(s.finess) == 9 and luhn_valid(s.finess)


def test_mix_is_sized_for_the_population(directory: Directory) -> None:
    kinds = Counter(p.kind for p in directory.professionals)
    assert set(kinds) == set(PS_KINDS)
    assert kinds["gp"] == round(PS_KINDS["gp"].per_100k * 1.5)
    sector2 = [p for p in directory.professionals if p.convention == 2]
    assert sector2 and all(p.kind != "gp" or p.speciality in ("01", "22", "23") for p in sector2)
    zones = Counter(p.tariff_zone for p in directory.professionals)
    assert set(zones) == {"00", "01", "02", "03", "04"}
    assert any(p.department in ("2A", "2B") and p.ps_number.startswith("20") for p in directory.professionals)
