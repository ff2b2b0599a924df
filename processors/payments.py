"""Payment rules (payments.md): ledger entries of a décompte, the cut-off decision per payee,
identifiers, calendars and the late-payment penalty. Pure functions, no I/O.

The stream's ledger agent turns décompte records into entries with `entries`; the daily cut-off
(`fseflow pay`, fseflow/cutoff.py) groups the unsettled entries per payee and asks `decide` what
to do with each balance. Every value the profile chooses is in `PROFILE`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any, Iterable, NamedTuple

from dateutil.easter import easter

from fseflow.processors.calendar import is_working_day
from fseflow.days import to_days


@dataclass(frozen=True)
class Profile:
    """The profile choices of payments.md, in one place so the official values replace them."""
    cutoff_time: dt.time = dt.time(20, 0)              # Europe/Paris, the liquidation day
    deadline_working_days: int = 7                      # décret 2016-1069
    flat_penalty_from: int = 8                          # day 8 or 9: a flat penalty
    flat_penalty_cents: int = 100
    rate_penalty_from: int = 10                         # from day 10: a share of amo + c2s
    rate_penalty_pct: int = 10
    debt_write_off_years: int = 2                       # DEBT_WRITE_OFF_YEARS
    held_no_iban: str = "no valid IBAN"
    return_reference: str = "P01"
    returns_time: dt.time = dt.time(22, 0)              # returns are written after the cut-off (returns.md §2.5)


PROFILE = Profile()
BUDGETS = ("AMO", "APIAS", "SIG")
PAYEE_KIND = {"ps": "P", "insured": "A"}


class Entry(NamedTuple):
    """A ledger entry before the insured is resolved to the fund's internal id (SQL join)."""
    file_id: str
    record: int
    line: int
    kind: str            # credit | debit (penalty and write_off are made by the cut-off)
    budget: str
    payee_kind: str      # P | A
    payee_ref: str       # P: billing number; A: the opener's NIR, resolved to row_id on write
    amount_cents: int
    lot: int
    invoice: str
    liquidation_date: str


def entries(records: Iterable[dict[str, Any]]) -> list[Entry]:
    """The ledger entries of paid décomptes (payments.md §2): per line, a credit of `paid_cents`
    to the payee and, in tiers payant, a debit of `debt_cents` (PF + franchise) to the insured.
    Rejected décomptes and rejected lines carry zero amounts and make no entry."""
    out: list[Entry] = []
    for r in records:
        if r["status"] != "paid":
            continue
        kind = PAYEE_KIND[r["payee"]]
        payee = r["ps"] if kind == "P" else r["nir"]
        key = (r["file_id"], r["record"])
        for ln in r["lines"]:
            if ln["paid_cents"] > 0:
                out.append(Entry(*key, ln["line"], "credit", ln["budget"], kind, payee, ln["paid_cents"],
                                 r["lot"], r["invoice"], r["liquidation_date"]))
            if ln["debt_cents"] > 0:
                out.append(Entry(*key, ln["line"], "debit", ln["budget"], "A", r["nir"], ln["debt_cents"],
                                 r["lot"], r["invoice"], r["liquidation_date"]))
    return out


def decide(balance_cents: int, iban_ok: bool) -> str:
    """What the cut-off does with a payee's balance (payments.md §2): 'transfer' the whole
    balance, 'held' (positive, no valid IBAN), 'debt' (negative, carried) or 'zero'."""
    if balance_cents > 0:
        return "transfer" if iban_ok else "held"
    return "debt" if balance_cents < 0 else "zero"


def penalty_cents(delay_wd: int, amo_c2s_cents: int, profile: Profile = PROFILE) -> int:
    """Late-payment penalty of a tiers-payant invoice (payments.md §5): 1.00 EUR on day 8 or 9,
    10 % of amo + c2s rounded half-up from day 10, nothing within the deadline."""
    if delay_wd >= profile.rate_penalty_from:
        return (amo_c2s_cents * profile.rate_penalty_pct + 50) // 100
    if delay_wd >= profile.flat_penalty_from:
        return profile.flat_penalty_cents
    return 0


@cache
def target2_holidays(year: int) -> frozenset[dt.date]:
    """TARGET2 closing days besides weekends: 1 Jan, Good Friday, Easter Monday, 1 May, 25-26 Dec."""
    e = easter(year)
    return frozenset({dt.date(year, 1, 1), e - dt.timedelta(days=2), e + dt.timedelta(days=1),
                      dt.date(year, 5, 1), dt.date(year, 12, 25), dt.date(year, 12, 26)})


def is_target2_day(d: dt.date) -> bool:
    return d.weekday() < 5 and d not in target2_holidays(d.year)


def execution_date(cutoff_day: dt.date) -> dt.date:
    """ReqdExctnDt: the first TARGET2 business day after the cut-off day (profile choice)."""
    d = cutoff_day + dt.timedelta(days=1)
    while not is_target2_day(d):
        d += dt.timedelta(days=1)
    return d


def working_days_after(day0: dt.date, until: dt.date) -> int:
    """French working days after day 0 up to and including `until` (payments.md §5 counting)."""
    n, d = 0, day0
    while d < until:
        d += dt.timedelta(days=1)
        n += is_working_day(to_days(d))
    return n


def msg_id(budget: str, execution: dt.date, run_no: int = 1) -> str:
    """GrpHdr/MsgId: FSF-<budget>-<AAAAMMJJ>-<nn>, nn the run of that execution date."""
    return f"FSF-{budget}-{execution:%Y%m%d}-{run_no:02d}"


def end_to_end_id(budget: str, execution: dt.date, payee_kind: str, payee_id: str, serial: int) -> str:
    """EndToEndId: <budget><AAAAMMJJ><P|A><payee id><nnn> (≤ 35 characters, never a NIR)."""
    e2e = f"{budget}{execution:%Y%m%d}{payee_kind}{payee_id}{serial:03d}"
    if len(e2e) > 35:
        raise ValueError(f"EndToEndId of payee {payee_kind}{payee_id} is {len(e2e)} characters (max 35)")
    return e2e


def remittance(payee_kind: str, cutoff_day: dt.date, payee_id: str, n_items: int,
               profile: Profile = PROFILE) -> str:
    """RmtInf/Ustrd (payments.md §3): the period, the return reference and a count; no NIR."""
    if payee_kind == "P":
        return f"CNMSS REMB {cutoff_day:%d/%m/%Y} REF {profile.return_reference} PS {payee_id} {n_items} FACT"
    return f"CNMSS REMB {cutoff_day:%d/%m/%Y} {n_items} DECOMPTES"


def write_off_due(since: dt.date, cutoff_day: dt.date, profile: Profile = PROFILE) -> bool:
    """A debt older than DEBT_WRITE_OFF_YEARS is written off at this cut-off."""
    try:
        limit = since.replace(year=since.year + profile.debt_write_off_years)
    except ValueError:  # 29 February
        limit = since.replace(year=since.year + profile.debt_write_off_years, day=28)
    return cutoff_day >= limit


@dataclass(frozen=True)
class Account:
    """A debtor account of a budget (configuration: the fund's bank details, not a person's)."""
    name: str
    iban: str
    bic: str


# Configuration, replaced by the fund's real accounts: three budgets, three accounts, never mixed.
# The IBANs are well-formed placeholders (valid checksums) on the Banque de France code 30001.
DEBTORS = {
    "AMO": Account("CNMSS ASSURANCE MALADIE", "FR8930001007940000000000011", "BDFEFRPPCCT"),
    "APIAS": Account("CNMSS POUR ETAT APIAS", "FR1330001007940000000000021", "BDFEFRPPCCT"),
    "SIG": Account("CNMSS POUR ETAT SIG", "FR3430001007940000000000031", "BDFEFRPPCCT"),
}
INITIATING_PARTY = ("CNMSS", "08756010000000")   # name, Id/OrgId/Othr/Id (as the bank requires)
