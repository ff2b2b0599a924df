"""Population figures of population.md (2023, CNMSS) and the generator's profile choices, as tables.

Published figures are exact counts at full scale (FULL_SCALE protected persons); everything
marked "profile choice" is a starting value of this generator that an official figure can
replace here without touching the code.
"""
from __future__ import annotations

from typing import Final

FULL_SCALE: Final = 782_783

#: statuses of population.md §2, in column order
STATUSES: Final = ("active", "retired", "other", "family")
ACTIVE, RETIRED, OTHER, FAMILY = range(4)

#: age bands of population.md §2: (label, first age, last age). The 95+ band stops at 98 so that
#: every birth year stays within the 100-year window of the B2 AAMMJJ century rule
#: (b2-profile.md §1) — profile choice.
BANDS: Final = (
    ("<18", 0, 17), ("18-24", 18, 24), ("25-29", 25, 29), ("30-34", 30, 34), ("35-39", 35, 39),
    ("40-44", 40, 44), ("45-49", 45, 49), ("50-54", 50, 54), ("55-59", 55, 59), ("60-64", 60, 64),
    ("65-69", 65, 69), ("70-74", 70, 74), ("75-79", 75, 79), ("80-84", 80, 84), ("85-89", 85, 89),
    ("90-94", 90, 94), ("95+", 95, 98),
)
#: youngest age of an insured (recruits from 16–17; the under-18 insured of the table) — profile choice
INSURED_MIN_AGE: Final = 16
#: weights of ages 95, 96, 97, 98 inside the last band (profile choice)
OLDEST_AGE_WEIGHTS: Final = (0.36, 0.28, 0.21, 0.15)

#: population.md §2: counts by band (rows) × status (active, retired, other, family)
AGE_STATUS_COUNTS: Final = (
    (1_221, 2, 84, 154_743), (81_645, 9, 17_985, 23_095), (69_004, 29, 13_474, 840),
    (51_343, 59, 6_184, 1_423), (44_549, 138, 3_093, 2_043), (37_044, 472, 3_709, 2_066),
    (27_112, 1_280, 3_038, 1_933), (23_110, 3_380, 2_011, 2_263), (13_398, 10_011, 2_274, 2_866),
    (3_683, 21_082, 1_247, 4_035), (718, 26_674, 333, 5_325), (0, 25_827, 99, 5_914),
    (0, 24_159, 32, 5_813), (0, 16_738, 19, 3_718), (0, 15_515, 5, 1_930), (0, 9_229, 2, 435),
    (0, 3_269, 1, 51),
)

MEN: Final = 548_569
#: starting shares of men (population.md §4); the active share is solved to hit MEN
MALE_SHARE: Final = {"retired": 0.92, "other": 0.60, "family_child": 0.51, "family_adult": 0.10}

ALD: Final = 118_800
#: starting ALD prevalence by band, scaled to exactly ALD persons (population.md §4)
ALD_PREVALENCE: Final = (0.023, 0.035, 0.046, 0.058, 0.069, 0.092, 0.115, 0.161, 0.207, 0.276,
                         0.345, 0.425, 0.506, 0.598, 0.667, 0.713, 0.736)
C2S: Final = 5_845
C2S_FREE: Final = 4_878
APIAS_INSURED: Final = 21_327
SIG_HOLDERS: Final = 51_680
SIG_CONSUMERS: Final = 13_318

#: quality of a family member by age: (first age, last age, spouse 2, child 3, other 4) — profile choice
FAMILY_QUALITY: Final = ((0, 17, 0.0, 1.0, 0.0), (18, 24, 0.25, 0.70, 0.05), (25, 200, 0.93, 0.0, 0.07))
#: a child's opener is older by U(low, high) years; a spouse's by N(mean, sd) — profile choice
PARENT_AGE_GAP: Final = (22, 42)
SPOUSE_AGE_GAP: Final = {"female_spouse": (2.0, 4.0), "male_spouse": (-2.0, 4.0)}
#: share of children whose twin is in the same household (birth_rank 2) — profile choice
TWIN_SHARE: Final = 0.01

#: birth place of a NIR: metropolitan, Corsica (2A/2B from 1976, else 20), overseas, abroad — profile choice
BIRTH_PLACE: Final = {"metro": 0.925, "corsica": 0.005, "overseas": 0.025, "abroad": 0.045}
OVERSEAS_DIGITS: Final = (1, 2, 3, 4, 6)

#: profile choices on rights
NO_IBAN_SHARE: Final = 0.015              # insured without an IBAN
RIGHTS_CLOSED_SHARE: Final = 0.004        # active households that left the fund recently
RIGHTS_CLOSED_DAYS: Final = (20, 120)     # rights ended this many days before the reference date
DEATH_WINDOW_DAYS: Final = 45             # deaths fall in the days before the reference date
#: annual mortality by band (profile choice, applied over DEATH_WINDOW_DAYS)
MORTALITY: Final = (0.0003, 0.0005, 0.0006, 0.0007, 0.0009, 0.0013, 0.002, 0.003, 0.005, 0.007,
                    0.011, 0.017, 0.027, 0.045, 0.08, 0.14, 0.25)
#: women pregnant at the reference date, full scale (about 9,000 births a year) — profile choice
PREGNANCIES: Final = 6_700
PREGNANCY_AGES: Final = (18, 44)

#: relative consumption of care by band (files per person), women × WOMEN_FACTOR, ALD × ALD_FACTOR
CONSUMPTION: Final = (0.75, 0.45, 0.55, 0.65, 0.7, 0.8, 0.9, 1.05, 1.25, 1.45, 1.7, 1.95, 2.2, 2.45,
                      2.6, 2.7, 2.7)
WOMEN_FACTOR: Final = 1.3
ALD_FACTOR: Final = 2.2
