"""The care mix: what each kind of PS bills in one invoice, and the shares that pick it.

Every table here is a profile choice, declarative, read by `flow.py` (who and when) and by
`_lines.py` (the lines and their amounts). Prices come from letter_keys.csv at the care date
when it has a value; otherwise from DECLARED_PRICES or the catalogues (declared unit prices).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALD_EXO_SHARE", "ALD_FLAG_RATE", "ALD_REASONS", "AMC_CONTRACT_TYPES", "ANY_AGE", "Act", "CARE_MIX",
           "CARE_WEEKDAY_WEIGHTS", "CHILD_PARCOURS", "CROWN_BILLED", "DECLARED_PRICES",
           "DEFAULT_PAYEE_SHARES", "DEFAULT_PRESCRIPTION_AGE", "DRUG_BOXES", "ENTITY_KINDS", "FALLBACK_CODES",
           "FSE_SHARE", "HOLIDAY_CARE_WEIGHT", "LAG_WORKING_DAYS", "MAX_LAG", "NII_SHARE",
           "PAPER_SHARE", "PARCOURS", "PARCOURS_OF_KIND", "PAYEE_SHARES", "PRESCRIBERS",
           "PRESCRIPTION_AGE_DAYS", "REGULAR_KINDS", "SECTOR2_CODES", "SECTOR2_EXCESS", "SEGMENTS",
           "SESSION_GAP_DAYS", "SIG_KINDS", "SPECIALITY_CODES", "SPECIAL_PAYEE_SHARES", "Segment", "TELE_MIX",
           "Visit"]

ANY_AGE = (0, 200)
#: kinds whose lines name no executing practitioner (executor_rpps zeros: the lot's PS)
ENTITY_KINDS = frozenset({"pharmacy", "lab", "transporter", "supplier"})


@dataclass(frozen=True)
class Act:
    """One line of a visit: a letter key (or a catalogue draw) with its coefficient and quantity."""

    code: str                          # letter key; "PH" draws a drug, "OPT" an LPP device set
    coef: tuple[int, ...] = (100,)     # coefficient choices, hundredths
    qty: tuple[int, ...] = (1,)
    detail: str = ""                   # "ccam:<key>", "nabm", "drug", "lpp"
    p: float = 1.0                     # probability that the line is billed
    age: tuple[int, int] = ANY_AGE     # ages (at the care date) for which the line applies


@dataclass(frozen=True)
class Visit:
    """What one invoice of a PS kind covers: its acts, repeated on 1 to n care dates (sessions)."""

    name: str
    weight: float
    acts: tuple[Act, ...]
    sessions: tuple[int, int] = (1, 1)
    age: tuple[int, int] = ANY_AGE
    sex: int = 0                       # 0 any, 2 women only


def _drugs(n: int, w: float) -> Visit:
    return Visit(f"{n}_drugs", w, (Act("PH", detail="drug"),) * n)


_G = Act("G")
_MEG = Act("MEG", age=(0, 5))
_CS = Act("CS")

#: visits by kind of PS (professionals.PS_KINDS), with their relative weights
CARE_MIX: dict[str, tuple[Visit, ...]] = {
    "gp": (
        Visit("consultation", 0.86, (_G, _MEG)),
        Visit("consultation_ecg", 0.04, (_G, Act("ATM", detail="ccam:ATM")), age=(40, 200)),
        Visit("home_visit", 0.06, (Act("VG"), Act("MD"), Act("IK", qty=(2, 4, 6, 8, 12), p=0.3)), age=(60, 200)),
        Visit("coordination", 0.04, (_G, Act("MCG")), age=(16, 200)),
    ),
    "paediatrician": (
        Visit("consultation", 1.0, (Act("CEH", age=(0, 1)), Act("CEK", age=(2, 6)), Act("CEG", age=(7, 200))),
              age=(0, 15)),
    ),
    "gynaecologist": (
        Visit("consultation", 0.55, (_CS,), age=(15, 200), sex=2),
        Visit("smear", 0.2, (_CS, Act("ATM", detail="ccam:ATM")), age=(25, 65), sex=2),
        Visit("echography", 0.25, (_CS, Act("ADE", detail="ccam:ADE")), age=(15, 200), sex=2),
    ),
    "ophthalmologist": (
        Visit("consultation", 0.5, (_CS,)),
        Visit("fundus", 0.5, (_CS, Act("ATM", detail="ccam:ATM"))),
    ),
    "psychiatrist": (Visit("consultation", 0.85, (Act("CNP"),)), Visit("coordination", 0.15, (Act("CNP"), Act("MCS")))),
    "cardiologist": (
        Visit("consultation_ecg", 0.6, (Act("CSC"), Act("ATM", detail="ccam:ATM")), age=(16, 200)),
        Visit("echocardiography", 0.25, (_CS, Act("ADE", detail="ccam:ADE")), age=(16, 200)),
        Visit("consultation", 0.15, (_CS,)),
    ),
    "dermatologist": (
        Visit("consultation", 0.7, (_CS,)),
        Visit("biopsy", 0.2, (_CS, Act("ADC", detail="ccam:ADC"))),
        Visit("excision", 0.1, (Act("ADC", detail="ccam:ADC"),), age=(16, 200)),
    ),
    "radiologist": (
        Visit("radiography", 0.45, (Act("ADI", detail="ccam:ADI"),)),
        Visit("two_views", 0.15, (Act("ADI", detail="ccam:ADI"), Act("ADI", detail="ccam:ADI"))),
        Visit("echography", 0.3, (Act("ADE", detail="ccam:ADE"),)),
        Visit("mammography", 0.1, (Act("ADI", detail="ccam:ADI"), Act("ADE", detail="ccam:ADE")),
              age=(40, 200), sex=2),
    ),
    "surgeon": (
        Visit("consultation", 0.6, (_CS,)),
        Visit("small_surgery", 0.25, (Act("ADC", detail="ccam:ADC"),), age=(16, 200)),
        Visit("k_act", 0.15, (_CS, Act("K", coef=(500, 1000, 1500)))),
    ),
    "ent": (Visit("consultation", 0.6, (_CS,)), Visit("audiogram", 0.4, (_CS, Act("ATM", detail="ccam:ATM")))),
    "specialist": (
        Visit("consultation", 0.7, (_CS,)), Visit("opinion", 0.15, (Act("APC"),), age=(16, 200)),
        Visit("consultation_act", 0.15, (_CS, Act("ATM", detail="ccam:ATM"))),
    ),
    "dentist": (
        Visit("scaling", 0.3, (Act("SDE", detail="ccam:SDE"),)),
        Visit("filling", 0.3, (Act("SDE", detail="ccam:SDE"),), age=(6, 200)),
        Visit("two_acts", 0.1, (Act("SDE", detail="ccam:SDE"), Act("SDE", detail="ccam:SDE")), age=(6, 200)),
        Visit("root_canal", 0.12, (Act("END", detail="ccam:END"),), age=(12, 200)),
        Visit("crown", 0.08, (Act("SDE", detail="ccam:CROWN"),), age=(18, 200)),
        Visit("extraction", 0.1, (Act("SDE", detail="ccam:SDE"),), age=(12, 200)),
    ),
    "midwife": (
        Visit("follow_up", 0.75, (Act("SF", coef=(1200, 1500, 1700)),), age=(15, 50), sex=2),
        Visit("home_follow_up", 0.25, (Act("SF", coef=(1500, 1600)), Act("IK", qty=(3, 5, 8, 12))),
              age=(15, 50), sex=2),
    ),
    "nurse": (
        Visit("injection", 0.35, (Act("AMI", coef=(100,)), Act("MAU", p=0.3)), sessions=(1, 5)),
        Visit("home_care", 0.25, (Act("AMI", coef=(200, 300)), Act("IFI"), Act("IK", qty=(2, 4, 6), p=0.4)),
              sessions=(1, 6)),
        Visit("nursing_care", 0.15, (Act("AIS", coef=(300,)), Act("IFI")), sessions=(2, 7), age=(70, 200)),
        Visit("dressing", 0.15, (Act("AMI", coef=(400, 410)), Act("IFI", p=0.5)), sessions=(2, 5)),
        Visit("blood_sample", 0.07, (Act("AMI", coef=(150,)),)),
        Visit("care_plan", 0.03, (Act("DI", coef=(250,)),), age=(60, 200)),
    ),
    "physio": (
        Visit("osteo_articular", 0.45, (Act("AMS", coef=(750, 810, 840)),), sessions=(2, 6)),
        Visit("physiotherapy", 0.35, (Act("AMK", coef=(800, 1000)),), sessions=(2, 6)),
        Visit("cardio_respiratory", 0.2, (Act("AMC", coef=(840, 1000)), Act("IFA", p=0.2)), sessions=(2, 5)),
    ),
    "speech": (Visit("session", 1.0, (Act("AMO", coef=(1000, 1140, 1210, 1360)),), sessions=(1, 4), age=(2, 200)),),
    "orthoptist": (Visit("session", 1.0, (Act("AMY", coef=(500, 800, 1000)),), sessions=(1, 3)),),
    "podiatrist": (Visit("session", 1.0, (Act("POD", coef=(2700, 3200)),), age=(16, 200)),),
    "lab": (
        Visit("blood_test", 1.0, (Act("B", coef=(1700,), detail="nabm:preanalytic"), Act("B", detail="nabm"))),
    ),
    "pharmacy": (_drugs(1, 0.35), _drugs(2, 0.27), _drugs(3, 0.18), _drugs(4, 0.12), _drugs(5, 0.08)),
    "transporter": (Visit("ambulance", 0.35, (Act("ABA", qty=(1, 2)),)), Visit("vsl", 0.65, (Act("VSL", qty=(1, 2)),))),
    "supplier": (Visit("device", 1.0, (Act("OPT", detail="lpp"),)),),
}
#: teleconsultation visits (population.md: 0.78 % of files), by kind
TELE_MIX: dict[str, tuple[Visit, ...]] = {
    "gp": (Visit("teleconsultation", 1.0, (Act("TCG"),)),),
    "psychiatrist": (Visit("teleconsultation", 1.0, (Act("TC"),)),),
    "specialist": (Visit("teleconsultation", 1.0, (Act("TC"),)),),
    "cardiologist": (Visit("teleconsultation", 1.0, (Act("TC"),), age=(16, 200)),),
}

#: declared unit prices (cents, min–max) of codes with no value in letter_keys.csv — profile choice
DECLARED_PRICES: dict[str, tuple[int, int]] = {
    "TC": (2500, 3000), "CSC": (4773, 4773), "VS": (3500, 3500), "MD": (1000, 1000), "MCG": (500, 500),
    "K": (192, 192), "SF": (280, 280), "DI": (1000, 1000), "AMY": (260, 260), "POD": (100, 100),
    "IK": (61, 61), "IKM": (91, 91), "IKS": (340, 340), "IFA": (250, 250), "IFI": (275, 275), "MAU": (135, 135),
    "MCI": (500, 500), "MM": (3500, 3500), "MU": (2260, 2260), "ABA": (9000, 26000), "VSL": (3000, 12000),
}
#: the code a speciality bills instead of the generic one
SPECIALITY_CODES: dict[tuple[str, str], str] = {("22", "G"): "GS", ("23", "G"): "GS"}
#: what a sector-2 (convention 2) physician bills instead
SECTOR2_CODES: dict[str, str] = {"G": "C", "GS": "C", "VG": "V"}
#: a code not in force at the care date is replaced by this one (e.g. care before 2024-12-22)
FALLBACK_CODES: dict[str, str] = {"TCG": "TC", "CEH": "CS", "CEK": "CS", "CEG": "CS", "CNP": "CS"}
#: sector-2 excess: billed = base × U(low, high), rounded up to the euro, on these categories
SECTOR2_EXCESS = ((1.25, 2.0), ("consultation", "visit", "technical"))
#: boxes of one drug line (Open Medic order of magnitude) — profile choice
DRUG_BOXES = ((1, 0.75), (2, 0.19), (3, 0.06))
#: dental crowns are billed above their base (profile choice), except to C2S beneficiaries
CROWN_BILLED = (35_000, 65_000)


@dataclass(frozen=True)
class Segment:
    """A slice of the flow with its own nature, quota of files and mix of PS kinds."""

    name: str
    share: float | None                 # share of the B2 invoices; None = the rest
    nature: str
    kinds: tuple[tuple[str, float], ...]
    pool: str                           # beneficiaries drawn from: all, apias, sig, pregnant
    exo: int = 0                        # exoneration carried by every invoice of the segment


REGULAR_KINDS = (
    ("gp", 0.255), ("paediatrician", 0.012), ("gynaecologist", 0.015), ("ophthalmologist", 0.012),
    ("psychiatrist", 0.010), ("cardiologist", 0.010), ("dermatologist", 0.006), ("radiologist", 0.022),
    ("surgeon", 0.006), ("ent", 0.004), ("specialist", 0.015), ("dentist", 0.035), ("midwife", 0.002),
    ("nurse", 0.085), ("physio", 0.055), ("speech", 0.008), ("orthoptist", 0.003), ("podiatrist", 0.003),
    ("lab", 0.06), ("pharmacy", 0.33), ("transporter", 0.015), ("supplier", 0.015), ("health_centre", 0.02),
)
#: SIG care: war invalids, older, more auxiliary care and transport; devices about 17 % of the amounts
SIG_KINDS = (("pharmacy", 0.3), ("gp", 0.18), ("physio", 0.16), ("nurse", 0.14), ("transporter", 0.07),
             ("supplier", 0.04), ("cardiologist", 0.04), ("specialist", 0.04), ("radiologist", 0.03))
#: population.md §3–4: APIAS 0.51 % (AT lots), SIG 0.53 % (SG or EXO 21), teleconsultation 0.78 %
SEGMENTS: tuple[Segment, ...] = (
    Segment("apias", 0.0051, "AT", (("physio", 0.35), ("gp", 0.2), ("pharmacy", 0.15), ("radiologist", 0.12),
                                    ("surgeon", 0.08), ("transporter", 0.05), ("nurse", 0.05)), "apias"),
    Segment("sig_nature", 0.0053 * 0.7, "SG", SIG_KINDS, "sig"),
    Segment("sig_exo21", 0.0053 * 0.3, "AS", SIG_KINDS, "sig", exo=21),
    Segment("teleconsultation", 0.0078, "AS", (("gp", 0.7), ("psychiatrist", 0.12), ("specialist", 0.1),
                                               ("cardiologist", 0.08)), "all"),
    Segment("maternity", 0.010, "MA", (("gynaecologist", 0.3), ("midwife", 0.25), ("lab", 0.2), ("gp", 0.1),
                                       ("pharmacy", 0.15)), "pregnant"),
    Segment("prevention", 0.003, "PM", (("gp", 0.6), ("dentist", 0.4)), "all"),
    Segment("regular", None, "AS", REGULAR_KINDS, "all"),
)

#: payee codes 10 / 35 / 36 by kind (36 needs C2S or an AMC number: controls.md C27) — profile choice
PAYEE_SHARES: dict[str, tuple[float, float, float]] = {
    "gp": (0.55, 0.38, 0.07), "paediatrician": (0.6, 0.32, 0.08), "dentist": (0.55, 0.3, 0.15),
    "nurse": (0.12, 0.6, 0.28), "physio": (0.2, 0.55, 0.25), "speech": (0.2, 0.55, 0.25),
    "orthoptist": (0.3, 0.5, 0.2), "podiatrist": (0.4, 0.4, 0.2), "midwife": (0.3, 0.5, 0.2),
    "lab": (0.05, 0.6, 0.35), "pharmacy": (0.03, 0.35, 0.62), "transporter": (0.05, 0.85, 0.1),
    "supplier": (0.05, 0.25, 0.7),
}
DEFAULT_PAYEE_SHARES = (0.7, 0.25, 0.05)            # specialists
SPECIAL_PAYEE_SHARES = (0.2, 0.8, 0.0)              # AT and SIG care: tiers payant for the State budgets
AMC_CONTRACT_TYPES = ("MU", "IP", "AS")

#: parcours qualifier of physician invoices for patients of 16 or over, and under 16 — profile choice
PARCOURS: dict[str, tuple[tuple[str, float], ...]] = {
    "gp": (("T", 0.84), ("N", 0.02), ("R", 0.03), ("H", 0.02), ("U", 0.01), ("S", 0.05), (" ", 0.03)),
    "specialist": (("O", 0.72), ("D", 0.1), ("T", 0.02), ("U", 0.02), ("P", 0.04), ("S", 0.07), (" ", 0.03)),
    "direct": (("D", 0.6), ("O", 0.3), ("S", 0.07), (" ", 0.03)),
}
CHILD_PARCOURS = (("L", 0.6), ("G", 0.4))
#: which PARCOURS row a physician kind uses; kinds not listed (non-physicians) leave it blank
PARCOURS_OF_KIND = {"gp": "gp", "paediatrician": "gp", "gynaecologist": "direct", "ophthalmologist": "direct",
                    "psychiatrist": "direct", "cardiologist": "specialist", "dermatologist": "specialist",
                    "radiologist": "specialist", "surgeon": "specialist", "ent": "specialist",
                    "specialist": "specialist"}

#: who prescribes the care of a kind (kinds of physicians, weights) — profile choice
PRESCRIBERS: dict[str, tuple[tuple[str, float], ...]] = {
    "default": (("gp", 0.75), ("specialist", 0.08), ("cardiologist", 0.05), ("surgeon", 0.05),
                ("psychiatrist", 0.03), ("gynaecologist", 0.04)),
    "orthoptist": (("ophthalmologist", 1.0),),
    "supplier:64": (("ophthalmologist", 1.0),),
    "supplier:65": (("ent", 1.0),),
    "midwife": (("gynaecologist", 0.6), ("gp", 0.4)),
}
#: days between the prescription and the first care date, by kind (min, max) — profile choice
PRESCRIPTION_AGE_DAYS: dict[str, tuple[int, int]] = {
    "pharmacy": (0, 20), "nurse": (0, 45), "physio": (3, 60), "lab": (0, 20), "transporter": (0, 10),
    "supplier": (5, 200), "speech": (10, 120), "orthoptist": (5, 120), "podiatrist": (5, 90),
}
DEFAULT_PRESCRIPTION_AGE = (0, 30)

#: ALD beneficiaries inside their ALD period: share of their invoices that claim an exoneration,
#: the reasons (exonerations.csv; 41/43/45 = care unrelated, lines not flagged), and the share of
#: lines flagged on an exonerating reason (the others are care unrelated to the ALD)
ALD_EXO_SHARE = 0.75
ALD_REASONS = ((42, 0.72), (44, 0.06), (46, 0.07), (41, 0.1), (43, 0.02), (45, 0.03))
ALD_FLAG_RATE = 0.9

#: working days between the last care date and reception (FSE mean 1.2) — profile choice
LAG_WORKING_DAYS: tuple[tuple[int, float], ...] = ((0, 0.2), (1, 0.52), (2, 0.16), (3, 0.08), (4, 0.025), (5, 0.015))
#: payee 10 must arrive within 3 working days, tiers payant within 8 (C31): lags are capped so
MAX_LAG = {10: 3, 35: 5, 36: 5}
#: relative chance of care on Monday … Sunday (weekend care is sent on Monday)
CARE_WEEKDAY_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.12)
HOLIDAY_CARE_WEIGHT = 0.12
#: calendar days between two sessions of a multi-session invoice
SESSION_GAP_DAYS = (1, 3)
#: share of invoices of adult family members that carry the patient's own NIR (2S.nii)
NII_SHARE = 0.4
#: population.md §1: 97.6 % of files are FSE (B2), 2.4 % paper
FSE_SHARE = 0.976
PAPER_SHARE = 0.024
