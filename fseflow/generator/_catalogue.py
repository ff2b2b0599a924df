"""Code catalogues behind the detail records: CCAM acts (4M), NABM analyses (4B), drugs (4P), LPP (3F).

No CCAM, NABM, drug or LPP price table ships with profile v1, so these are declared prices
(liquidation.md L03: the unit price is the declared one when `value_cents` is empty). The
drug catalogue is drawn once from a fixed seed, so a CIP13 means the same drug in every run.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from fseflow.generator._ids import ean13_key


@dataclass(frozen=True)
class CcamAct:
    code: str
    price: int          # cents
    tooth: bool = False


#: CCAM acts by letter key (declared prices, profile choice)
CCAM: dict[str, tuple[CcamAct, ...]] = {
    "ATM": (CcamAct("DEQP003", 1426), CcamAct("JKHD001", 1246), CcamAct("BGQP002", 2828), CcamAct("CDQP010", 2496),
            CcamAct("GLQP012", 4032)),
    "ADE": (CcamAct("ZCQM005", 5670), CcamAct("DZQM006", 9566), CcamAct("JKQM001", 5670), CcamAct("QEQM001", 4158),
            CcamAct("JQQM010", 5437), CcamAct("EBQM001", 7560)),
    "ADI": (CcamAct("ZBQK002", 2128), CcamAct("MZQK002", 2394), CcamAct("NAQK015", 2660), CcamAct("LHQK001", 2660),
            CcamAct("QEQK004", 6642), CcamAct("PAQK007", 3996)),
    "ADC": (CcamAct("QZHA001", 2880), CcamAct("QZFA036", 7021), CcamAct("QZJA002", 4180), CcamAct("HHQE005", 13440)),
    "SDE": (CcamAct("HBJD001", 2892, True), CcamAct("HBMD053", 2697, True), CcamAct("HBMD054", 4112, True),
            CcamAct("HBGD036", 3344, True)),
    "END": (CcamAct("HBFD008", 3374, True), CcamAct("HBFD015", 8194, True)),
    "CROWN": (CcamAct("HBLD634", 10750, True),),
}
#: ISO 3950 tooth numbers of permanent teeth
TEETH = tuple(f"{q}{t}" for q in (1, 2, 3, 4) for t in range(1, 9))

#: NABM analyses: (code, B coefficient, relative frequency) — profile choice
NABM: tuple[tuple[int, int, float], ...] = (
    (1104, 21, 10), (552, 5, 9), (593, 7, 8), (1127, 7, 6), (996, 25, 6), (1208, 27, 4), (1610, 35, 4),
    (322, 30, 3), (7335, 35, 2), (578, 5, 4), (433, 16, 4), (4340, 70, 3), (1806, 10, 2), (1207, 11, 2),
)
#: the pre-analytic fee: one B 17 line per (beneficiary, care date) (controls.md C37)
PREANALYTIC_NABM = (9005, 17)

#: LPP devices by supplier speciality: (LPP code, unit price cents, quantities) — profile choice
LPP: dict[str, tuple[tuple[str, int, tuple[int, ...]], ...]] = {
    "64": (("2210546", 3000, (1,)), ("2203240", 3250, (2,)), ("2259966", 4000, (2,)), ("2288280", 1000, (1,))),
    "65": (("2355084", 95000, (1, 2)), ("2335791", 40000, (1, 2))),
    "60": (("1101881", 2990, (1, 2)), ("1165090", 4500, (1,)), ("1139462", 1290, (1, 3)), ("1188140", 7800, (1,))),
}


@dataclass(frozen=True, eq=False)
class Drugs:
    """The drug catalogue as arrays: CIP13, letter key (PH1…PHN), box price, generic flag, popularity."""

    cip13: tuple[str, ...]
    code: tuple[str, ...]
    price: np.ndarray       # cents per box
    generic: tuple[str, ...]
    cumweight: tuple[float, ...]   # cumulative popularity, for bisect draws


#: rate classes of the catalogue: (letter key, share, median box price cents, spread) — profile choice
DRUG_CLASSES = (("PH7", 0.62, 700, 0.8), ("PH1", 0.22, 2500, 1.2), ("PH4", 0.08, 600, 0.6),
                ("PH2", 0.05, 500, 0.6), ("PHN", 0.03, 600, 0.5))
CATALOGUE_SEED = 2023
CATALOGUE_SIZE = 1500


@cache
def drugs() -> Drugs:
    rng = np.random.default_rng(CATALOGUE_SEED)
    share = np.array([c[1] for c in DRUG_CLASSES])
    cls = rng.choice(len(DRUG_CLASSES), size=CATALOGUE_SIZE, p=share / share.sum())
    median = np.array([c[2] for c in DRUG_CLASSES])[cls]
    spread = np.array([c[3] for c in DRUG_CLASSES])[cls]
    price = np.clip(np.rint(median * rng.lognormal(0.0, spread)), 120, 250_000).astype(np.int64)
    serials = rng.choice(10**7, size=CATALOGUE_SIZE, replace=False)
    cips = tuple(f"34009{s:07d}" + str(ean13_key(f"34009{s:07d}")) for s in serials)
    generic = tuple(rng.choice(np.array(["G", "R", ""]), size=CATALOGUE_SIZE, p=[0.45, 0.5, 0.05]).tolist())
    popularity = 1.0 / np.arange(1, CATALOGUE_SIZE + 1) ** 0.9
    return Drugs(cips, tuple(DRUG_CLASSES[c][0] for c in cls), price, generic, tuple(np.cumsum(popularity).tolist()))
