"""Anomalies injected at set rates on otherwise clean invoices, with their ground truth.

Each kind names the one reject code the engine must find on the invoice (controls.md) and
how a clean invoice is turned into it. A base invoice is a plain AS invoice with no
exoneration and no tiers payant intégral, so that no other control can fire; every
anomalous invoice carries exactly one kind. A duplicate is a resend: a copy of a clean
invoice in a later file of the same PS (or later in the same file on a one-day flow).
"""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from fseflow.days import NO_DATE, OPEN_END, from_days, to_days
from fseflow.generator._calendar import forclusion_limit
from fseflow.generator._ids import nir_key, nir_strings
from fseflow.generator._invoices import Built
from fseflow.generator.exceptions import GeneratorError
from fseflow.generator.population import Population
from fseflow.generator.professionals import PS_KINDS, Directory, unknown_billing_number

__all__ = ["AnomalyKind", "ANOMALIES", "DEFAULT_RATES", "anomaly_counts", "inject"]


@dataclass(frozen=True)
class AnomalyKind:
    name: str
    code: str          # the reject code the engine must report (reject_codes.csv)
    control: str
    rate: float        # default share of the B2 invoices


ANOMALIES: tuple[AnomalyKind, ...] = (
    AnomalyKind("duplicate_invoice", "2900-005", "C28", 0.002),
    AnomalyKind("unknown_beneficiary", "0250-050", "C16", 0.002),
    AnomalyKind("rights_closed", "8017-001", "C17", 0.002),
    AnomalyKind("future_care_date", "8029-001", "C29", 0.002),
    AnomalyKind("forclusion", "8030-001", "C30", 0.002),
    AnomalyKind("bad_nir_key", "8015-001", "C15", 0.002),
    AnomalyKind("unknown_ps", "8025-001", "C25", 0.002),
    AnomalyKind("missing_prescription", "8032-001", "C32", 0.002),
)
BY_NAME = {a.name: a for a in ANOMALIES}
DEFAULT_RATES: dict[str, float] = {a.name: a.rate for a in ANOMALIES}
#: profile choices of the mutations
FUTURE_DAYS = (1, 5)              # care this many days after reception
FORCLUSION_EXTRA_DAYS = (1, 200)  # care this many days before the forclusion limit allows


def anomaly_counts(invoices: int, rates: Mapping[str, float] | None) -> dict[str, int]:
    """Invoices per anomaly kind: round(rate × invoices), in ANOMALIES order."""
    rates = {**DEFAULT_RATES, **(rates or {})}
    unknown = set(rates) - set(BY_NAME)
    if unknown:
        raise GeneratorError(f"unknown anomaly kinds: {', '.join(sorted(unknown))}")
    if any(r < 0 for r in rates.values()) or sum(rates.values()) > 0.5:
        raise GeneratorError("anomaly rates must be ≥ 0 and sum to at most 0.5")
    return {a.name: int(round(rates[a.name] * invoices)) for a in ANOMALIES}


def _shift(b: Built, days: int) -> None:
    """Move every care date of the invoice (and its prescription) by `days`."""
    delta = dt.timedelta(days=days)
    head = b.invoice.head
    if head["prescription_date"] is not None:
        head["prescription_date"] += delta
    for line in b.invoice.lines:
        line.fields["care_date"] += delta
        for d in line.details:
            for k, v in d.fields.items():
                if isinstance(v, dt.date):
                    d.fields[k] = v + delta


class _Injector:
    def __init__(self, pop: Population, directory: Directory, reception_days: list[dt.date],
                 rng: np.random.Generator) -> None:
        self.pop, self.directory, self.days, self.rng = pop, directory, reception_days, rng
        self.known_nirs = set((pop.own_nir + pop.own_corsica.astype(np.int64) * 10**13).tolist())
        self.taken_numbers: set[str] = set()
        self.closed = np.flatnonzero((pop.rights_end != OPEN_END) & (pop.death == NO_DATE))
        self.extra: list[Built] = []

    # -- eligibility (on top of the common one) ------------------------------------------------
    def eligible(self, name: str, b: Built) -> bool:
        dates = b.care_dates
        if name == "unknown_ps":
            return not self.directory.professionals[b.ps].is_structure
        if name == "missing_prescription":
            return b.invoice.head["prescriber_rpps"] != 0 and b.needs_prescription
        if name == "forclusion":
            target = self._forclusion_shift(b)
            first = to_days(min(dates) + dt.timedelta(days=target))
            return bool(self.pop.rights_start[b.bene] <= first and self.pop.birth[b.bene] <= first)
        return True

    def _forclusion_shift(self, b: Built) -> int:
        """Days to move the invoice back so its last care date is time-barred at reception."""
        reception = self.days[b.day]
        last = max(b.care_dates)
        target = dt.date(reception.year - 2, reception.month, 1) - dt.timedelta(days=95)
        while forclusion_limit(target, 2) > reception:
            target -= dt.timedelta(days=30)
        extra = (b.bene * 7919 + b.invoice.head["invoice_number"]) % FORCLUSION_EXTRA_DAYS[1] + FORCLUSION_EXTRA_DAYS[0]
        return (target - last).days - extra

    # -- mutations ----------------------------------------------------------------------------
    def duplicate_invoice(self, b: Built) -> Built:
        resend = Built(copy.deepcopy(b.invoice), b.day, b.ps, b.segment, b.bene,
                       needs_prescription=b.needs_prescription, anomaly="duplicate_invoice")
        later = len(self.days) - 1 - b.day
        if later > 0:
            resend.day = b.day + 1 + int(self.rng.integers(0, later))
        self.extra.append(resend)
        return resend

    def unknown_beneficiary(self, b: Built) -> Built:
        head = b.invoice.head
        stem = int(head["nir_opener"][:5] + "99" + head["nir_opener"][7:10])  # born abroad: no Corsica digits
        while True:
            nir = stem * 1000 + int(self.rng.integers(1, 1000))
            if nir not in self.known_nirs:
                break
        text = f"{nir:013d}"
        head["nir_opener"], head["nir_key"] = text, nir_key(text)
        b.invoice.complement.update(nii="", nii_key="")
        b.bene = -1
        return b

    def rights_closed(self, b: Built) -> Built:
        p = self.pop
        first, last = to_days(min(b.care_dates)), to_days(max(b.care_dates))
        c = self.closed
        pool = c[(p.rights_end[c] < first) & (p.rights_start[c] <= first) & (p.birth[c] <= first)]
        if pool.size == 0:
            raise GeneratorError("no beneficiary with closed rights: raise --population")
        row = int(pool[int(self.rng.integers(0, pool.size))])
        opener = int(p.opener[row])
        text = nir_strings(p.own_nir[[opener]], p.own_corsica[[opener]])[0].decode("ascii")
        b.invoice.head.update(
            nir_opener=text, nir_key=nir_key(text), rang_beneficiaire=int(p.rang[row]),
            qualite_beneficiaire=int(p.quality[row]), birth_date=from_days(int(p.birth[row])),
            birth_rank=int(p.birth_rank[row]))
        b.invoice.complement.update(nii="", nii_key="")
        b.bene = row
        assert last > p.rights_end[row]
        return b

    def future_care_date(self, b: Built) -> Built:
        reception = self.days[b.day]
        _shift(b, (reception - min(b.care_dates)).days + int(self.rng.integers(FUTURE_DAYS[0], FUTURE_DAYS[1] + 1)))
        return b

    def forclusion(self, b: Built) -> Built:
        _shift(b, self._forclusion_shift(b))
        assert forclusion_limit(max(b.care_dates), 2) <= self.days[b.day]
        return b

    def bad_nir_key(self, b: Built) -> Built:
        head = b.invoice.head
        head["nir_key"] = (head["nir_key"] + int(self.rng.integers(1, 97))) % 97
        b.invoice.complement.update(nii="", nii_key="")
        return b

    def unknown_ps(self, b: Built) -> Built:
        p = self.directory.professionals[b.ps]
        b.ps_number = unknown_billing_number(self.directory, p.department, PS_KINDS[p.kind].category, self.rng,
                                             self.taken_numbers)
        return b

    def missing_prescription(self, b: Built) -> Built:
        b.invoice.head.update(prescriber_rpps=0, prescription_date=None)
        return b


def _common(b: Built) -> bool:
    head = b.invoice.head
    return (b.segment == "regular" and b.anomaly is None and head["exo_reason"] == 0 and head["payee_code"] != 36
            and not b.invoice.complement["nii"])


def inject(built: list[Built], counts: Mapping[str, int], pop: Population, directory: Directory,
           reception_days: list[dt.date], rng: np.random.Generator) -> list[Built]:
    """Turn chosen clean invoices into anomalies (in place); return the resends to add."""
    inj = _Injector(pop, directory, reception_days, rng)
    order = rng.permutation(len(built))
    used = np.zeros(len(built), dtype=bool)
    for kind in ANOMALIES:
        want = counts.get(kind.name, 0)
        mutate: Callable[[Built], Built] = getattr(inj, kind.name)
        got = 0
        for i in order.tolist():
            if got >= want:
                break
            b = built[i]
            if used[i] or not _common(b) or not inj.eligible(kind.name, b):
                continue
            used[i] = True
            target = mutate(b)
            target.anomaly = kind.name
            got += 1
        if got < want:
            raise GeneratorError(f"only {got} of {want} invoices can carry the anomaly {kind.name}")
    return inj.extra
