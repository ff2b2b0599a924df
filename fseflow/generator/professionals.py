"""The PS directory: billing numbers with their category digit and Luhn key, RPPS, conventions.

Sized per 100,000 protected persons (profile choice) and spread over départements where the
armed forces are garrisoned, overseas ones included (tariff zones 01–04). Health centres are
structures: one directory row for the billing number (RPPS zeros, speciality 00) and one per
practitioner billing under it (controls.md §2 P). `professionals.csv` is the loaded form.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fseflow.generator._ids import iban_array, with_luhn

__all__ = ["Member", "Professional", "Directory", "build_directory", "write_professionals",
           "PROFESSIONAL_COLUMNS", "PS_KINDS"]

PROFESSIONAL_COLUMNS = ("ps_number", "rpps", "speciality", "convention", "department", "tariff_zone", "iban", "name")
NO_RPPS = "00000000000"


@dataclass(frozen=True)
class PsKind:
    """A kind of billing PS: specialities (weights), category digit, density, sector-2 share."""

    specialities: tuple[tuple[str, float], ...]
    category: int
    per_100k: float
    sector2: float = 0.0
    label: str = "DR"


#: the directory mix (profile choice). Category digits: b2-profile.md §4.
PS_KINDS: dict[str, PsKind] = {
    "gp": PsKind((("01", 0.9), ("22", 0.05), ("23", 0.05)), 1, 330, 0.06),
    "paediatrician": PsKind((("12", 1.0),), 1, 14, 0.30),
    "gynaecologist": PsKind((("07", 0.6), ("70", 0.4)), 1, 22, 0.50),
    "ophthalmologist": PsKind((("15", 1.0),), 1, 18, 0.55),
    "psychiatrist": PsKind((("33", 0.8), ("17", 0.1), ("32", 0.1)), 1, 20, 0.40),
    "cardiologist": PsKind((("03", 1.0),), 1, 14, 0.35),
    "dermatologist": PsKind((("05", 1.0),), 1, 10, 0.50),
    "radiologist": PsKind((("06", 0.9), ("72", 0.1)), 1, 18, 0.25),
    "surgeon": PsKind((("04", 0.4), ("41", 0.6)), 1, 14, 0.70),
    "ent": PsKind((("11", 1.0),), 1, 7, 0.50),
    "specialist": PsKind((("08", 0.15), ("09", 0.1), ("13", 0.12), ("14", 0.15), ("34", 0.1), ("35", 0.06),
                          ("42", 0.1), ("71", 0.05), ("73", 0.07), ("02", 0.1)), 1, 30, 0.40),
    "dentist": PsKind((("19", 1.0),), 4, 90),
    "midwife": PsKind((("21", 1.0),), 5, 20, label="SF"),
    "nurse": PsKind((("24", 1.0),), 6, 260, label="IDE"),
    "physio": PsKind((("26", 1.0),), 7, 160, label="MK"),
    "speech": PsKind((("28", 1.0),), 9, 30, label="ORTHOPHONISTE"),
    "orthoptist": PsKind((("29", 1.0),), 9, 8, label="ORTHOPTISTE"),
    "podiatrist": PsKind((("27", 1.0),), 8, 15, label="PEDICURE"),
    "lab": PsKind((("30", 0.6), ("39", 0.2), ("38", 0.2)), 3, 12, label="LABORATOIRE"),
    "pharmacy": PsKind((("50", 0.8), ("51", 0.1), ("52", 0.1)), 2, 200, label="PHARMACIE"),
    "transporter": PsKind((("55", 1.0),), 2, 25, label="AMBULANCES"),
    "supplier": PsKind((("64", 0.5), ("65", 0.2), ("60", 0.3)), 2, 25, label="OPTIQUE"),
    "health_centre": PsKind((("00", 1.0),), 0, 6, label="CENTRE DE SANTE"),
}
#: practitioners of a health centre: kind → (min, max) per centre (profile choice)
CENTRE_MEMBERS: dict[str, tuple[int, int]] = {"gp": (2, 4), "nurse": (1, 3), "dentist": (0, 2), "physio": (0, 1)}
MIN_PER_KIND = 2
#: name prefix of a PS by speciality where the kind's label does not fit
SPECIALITY_LABEL = {"65": "AUDITION", "60": "MATERIEL MEDICAL", "38": "LABORATOIRE"}

#: départements of practice (weights; others share DEFAULT_DEPT_WEIGHT) — garrison towns, profile choice
DEPT_WEIGHTS: dict[str, float] = {
    "83": 10, "29": 7, "13": 5, "75": 5, "78": 4, "92": 4, "33": 4, "94": 3, "31": 3, "35": 3, "56": 3,
    "57": 3, "51": 2, "54": 2, "67": 2, "69": 2, "06": 2, "34": 2, "64": 2, "17": 2, "44": 2, "59": 2,
    "30": 1.5, "84": 1.5, "2A": 0.5, "2B": 0.4, "971": 0.8, "972": 0.7, "973": 0.6, "974": 0.9, "976": 0.3,
}
DEFAULT_DEPT_WEIGHT = 0.4
#: tariff zone by overseas département (b2-profile.md §5); every other département is zone 00
ZONE_OF_DEPT = {"971": "01", "972": "01", "973": "02", "974": "03", "976": "04"}
SURNAMES = ("MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY",
            "MOREAU", "SIMON", "LAURENT", "LEFEBVRE", "MICHEL", "GARCIA", "DAVID", "BERTRAND", "ROUX",
            "VINCENT", "FOURNIER", "MOREL", "GIRARD", "ANDRE", "LEFEVRE", "MERCIER", "DUPONT", "LAMBERT",
            "BONNET", "FRANCOIS", "MARTINEZ", "LE GALL", "LE ROUX", "GUILLOU", "PERON", "QUERE")


@dataclass(frozen=True)
class Member:
    """A practitioner billing under a structure's number."""

    rpps: str
    speciality: str
    kind: str
    name: str


@dataclass
class Professional:
    """One billing number, as the lot header and the directory carry it."""

    index: int
    ps_number: str
    rpps: str
    speciality: str
    convention: int
    department: str
    tariff_zone: str
    iban: str
    name: str
    kind: str
    weight: float
    finess: str = ""
    members: tuple[Member, ...] = field(default_factory=tuple)

    @property
    def is_structure(self) -> bool:
        return self.rpps == NO_RPPS


@dataclass
class Directory:
    professionals: list[Professional]
    by_kind: dict[str, list[int]]

    def rows(self) -> list[tuple[str, ...]]:
        """Directory rows (controls.md §2 P): one per (ps_number, rpps)."""
        out: list[tuple[str, ...]] = []
        for p in self.professionals:
            out.append((p.ps_number, p.rpps, p.speciality, str(p.convention), p.department, p.tariff_zone,
                        p.iban, p.name))
            for m in p.members:
                out.append((p.ps_number, m.rpps, m.speciality, str(p.convention), p.department, p.tariff_zone,
                            p.iban, m.name))
        return out

    def known_numbers(self) -> set[str]:
        return {p.ps_number for p in self.professionals}


class _Numbers:
    """Distinct billing numbers (dept + category + serial + Luhn) and RPPS (10 + 8 digits + Luhn)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.ps: set[str] = set()
        self.rpps: set[str] = set()

    def billing(self, dept: str, category: int) -> str:
        prefix = "97" if len(dept) == 3 else "20" if dept in ("2A", "2B") else dept
        while True:
            n = with_luhn(f"{prefix}{category}{int(self.rng.integers(0, 100_000)):05d}")
            if n not in self.ps:
                self.ps.add(n)
                return n

    def practitioner(self) -> str:
        while True:
            n = with_luhn(f"10{int(self.rng.integers(0, 10**8)):08d}")
            if n not in self.rpps:
                self.rpps.add(n)
                return n


def _choice(rng: np.random.Generator, pairs: tuple[tuple[str, float], ...]) -> str:
    w = np.array([p for _, p in pairs])
    return pairs[int(rng.choice(len(pairs), p=w / w.sum()))][0]


def _departments(rng: np.random.Generator, n: int) -> list[str]:
    metro = [f"{d:02d}" for d in range(1, 96) if d != 20]
    names = list(DEPT_WEIGHTS) + [d for d in metro if d not in DEPT_WEIGHTS]
    w = np.array([DEPT_WEIGHTS.get(d, DEFAULT_DEPT_WEIGHT) for d in names])
    return [names[i] for i in rng.choice(len(names), size=n, p=w / w.sum())]


def build_directory(population_size: int, rng: np.random.Generator) -> Directory:
    """The PS directory sized for `population_size` protected persons."""
    numbers = _Numbers(rng)
    pros: list[Professional] = []
    by_kind: dict[str, list[int]] = {}
    for kind, spec in PS_KINDS.items():
        count = max(MIN_PER_KIND, int(round(spec.per_100k * population_size / 100_000)))
        depts = _departments(rng, count)
        for dept in depts:
            speciality = _choice(rng, spec.specialities)
            surname = SURNAMES[int(rng.integers(0, len(SURNAMES)))]
            sector2 = spec.category == 1 and rng.random() < spec.sector2
            p = Professional(
                index=len(pros), ps_number=numbers.billing(dept, spec.category),
                rpps=NO_RPPS if kind == "health_centre" else numbers.practitioner(), speciality=speciality,
                convention=2 if sector2 else 1, department=dept, tariff_zone=ZONE_OF_DEPT.get(dept, "00"),
                iban="", name=f"{SPECIALITY_LABEL.get(speciality, spec.label)} {surname}", kind=kind,
                weight=float(rng.lognormal(0.0, 0.7)),
            )
            if kind == "health_centre":
                p.finess = with_luhn(f"{p.ps_number[:2]}00{int(rng.integers(0, 10_000)):04d}")
                p.members = tuple(
                    Member(numbers.practitioner(), _choice(rng, PS_KINDS[k].specialities), k,
                           f"{PS_KINDS[k].label} {SURNAMES[int(rng.integers(0, len(SURNAMES)))]}")
                    for k, (lo, hi) in CENTRE_MEMBERS.items() for _ in range(int(rng.integers(lo, hi + 1))))
            pros.append(p)
            by_kind.setdefault(kind, []).append(p.index)
    banks = np.array([30004, 30003, 30002, 20041, 10278, 11306, 10107, 13335, 18206, 15589])
    n = len(pros)
    ibans = iban_array(banks[rng.integers(0, banks.size, n)], rng.integers(1, 100_000, n), rng.integers(1, 10**11, n))
    for p, iban in zip(pros, ibans.tolist()):
        p.iban = iban.decode("ascii")
    return Directory(pros, by_kind)


def unknown_billing_number(directory: Directory, dept: str, category: int, rng: np.random.Generator,
                           taken: set[str]) -> str:
    """A billing number with a valid Luhn key that the directory does not hold (anomaly 8025-001)."""
    numbers = _Numbers(rng)
    numbers.ps = directory.known_numbers() | taken
    n = numbers.billing(dept, category)
    taken.add(n)
    return n


def write_professionals(directory: Directory, path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(PROFESSIONAL_COLUMNS) + "\n")
        fh.write("".join(",".join(r) + "\n" for r in directory.rows()))
