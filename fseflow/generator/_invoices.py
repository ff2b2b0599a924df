"""From the flow plan to invoice objects (`fseflow.codecs.model.Invoice`), one per plan row.

The invoice number is left at 0: numbers are given per PS once invoices are placed in files
(`files.py`). The record fields are those of b2-profile.md §3.3–3.4.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from fseflow.codecs.model import Invoice
from fseflow.days import NO_DATE, from_days
from fseflow.generator import care as C
from fseflow.generator._calendar import age_at
from fseflow.generator._ids import nir_strings
from fseflow.generator._lines import Context, Uniforms, build_lines
from fseflow.generator._tariffs import Tariffs
from fseflow.generator.exceptions import GeneratorError
from fseflow.generator.flow import FlowPlan
from fseflow.generator.population import Population
from fseflow.generator.professionals import Directory

#: lot family of each accepted nature (natures_assurance.csv lot_family)
LOT_FAMILY = {"AS": "AS", "PM": "AS", "MA": "MA", "AT": "AT", "SG": "SG"}
FAMILY_ORDER = ("AS", "MA", "AT", "SG")


@dataclass
class Built:
    """An invoice and what placing it in a file needs."""

    invoice: Invoice
    day: int                   # reception day index
    ps: int                    # directory index of the billing PS
    segment: str
    bene: int                  # population row (-1 when the anomaly made it unknown)
    needs_prescription: bool = False
    anomaly: str | None = None
    ps_number: str = ""        # set for an unknown billing number (anomaly 8025-001)
    fraud: str | None = None   # the fraud scheme that added or altered it (fraud.py)

    @property
    def family(self) -> str:
        return LOT_FAMILY[self.invoice.head["nature_assurance"]]

    @property
    def care_dates(self) -> list[dt.date]:
        return [line.fields["care_date"] for line in self.invoice.lines]


class _Prescribers:
    """RPPS of the physicians of the directory, by kind, for prescriptions (C32)."""

    def __init__(self, directory: Directory) -> None:
        self.by_kind: dict[str, list[int]] = {}
        for p in directory.professionals:
            if p.members:
                for m in p.members:
                    self.by_kind.setdefault(m.kind, []).append(int(m.rpps))
            else:
                self.by_kind.setdefault(p.kind, []).append(int(p.rpps))

    def pick(self, kind: str, speciality: str, u: Uniforms) -> int:
        table = C.PRESCRIBERS.get(f"{kind}:{speciality}") or C.PRESCRIBERS.get(kind) or C.PRESCRIBERS["default"]
        x, acc = u() * sum(w for _, w in table), 0.0
        chosen = table[-1][0]
        for k, w in table:
            acc += w
            if x < acc:
                chosen = k
                break
        pool = self.by_kind.get(chosen) or self.by_kind["gp"]
        return pool[int(u() * len(pool))]


def build_invoices(plan: FlowPlan, pop: Population, directory: Directory, tariffs: Tariffs,
                   rng: np.random.Generator) -> list[Built]:
    u = Uniforms(rng)
    prescribers = _Prescribers(directory)
    bene = plan.bene
    opener = pop.opener[bene]
    # per-invoice columns as Python lists: numpy scalar access is slow in the loop
    col = {
        "nir": nir_strings(pop.own_nir[opener], pop.own_corsica[opener]).tolist(),
        "key": (97 - pop.own_nir[opener] % 97).tolist(),
        "nii": nir_strings(pop.own_nir[bene], pop.own_corsica[bene]).tolist(),
        "nii_key": (97 - pop.own_nir[bene] % 97).tolist(),
        "birth": pop.birth[bene].tolist(), "ald_start": pop.ald_start[bene].tolist(),
        "ald_end": pop.ald_end[bene].tolist(), "c2s_start": pop.c2s_start[bene].tolist(),
        "c2s_end": pop.c2s_end[bene].tolist(), "quality": pop.quality[bene].tolist(),
        "rang": pop.rang[bene].tolist(), "birth_rank": pop.birth_rank[bene].tolist(),
        "event": pop.apias_event[bene].tolist(), "pregnancy": pop.pregnancy_start[bene].tolist(),
        "segment": plan.segment.tolist(), "ps": plan.ps.tolist(), "member": plan.member.tolist(),
        "payee": plan.payee.tolist(), "day": plan.day.tolist(), "bene": bene.tolist(),
    }
    care = plan.care.tolist()
    dates_of: dict[int, dt.date] = {}

    def date(n: int) -> dt.date:
        d = dates_of.get(n)
        if d is None:
            d = dates_of[n] = from_days(n)  # type: ignore[assignment]
        return d  # type: ignore[return-value]

    pros = directory.professionals
    out: list[Built] = []
    segments = C.SEGMENTS
    for i in range(len(plan)):
        seg = segments[col["segment"][i]]
        p = pros[col["ps"][i]]
        m = col["member"][i]
        member = p.members[m] if m >= 0 else None
        kind = plan.kind[i]
        speciality = member.speciality if member else p.speciality
        executor = int(member.rpps) if member else (0 if kind in C.ENTITY_KINDS else int(p.rpps))
        days = [d for d in care[i] if d != NO_DATE]
        dates = [date(d) for d in days]
        first, last = min(days), days[0]
        birth = date(col["birth"][i])
        exo = seg.exo
        ald = col["ald_start"][i]
        if (exo == 0 and seg.nature in ("AS", "PM") and ald != NO_DATE and ald <= first
                and col["ald_end"][i] >= last and u() < C.ALD_EXO_SHARE):
            exo = u.weighted(C.ALD_REASONS)
        c2s_start = col["c2s_start"][i]
        c2s = c2s_start != NO_DATE and c2s_start <= first and col["c2s_end"][i] >= last
        c2s_period = (date(c2s_start), date(col["c2s_end"][i])) if c2s_start != NO_DATE else None
        payee = col["payee"][i]
        amc_number = 0
        if c2s and seg.nature in ("AS", "PM", "MA"):
            payee = 36
        elif payee == 36:
            amc_number = 1_000_000_000 + int(u() * 8_999_999_999)
        parcours = " "
        row = C.PARCOURS_OF_KIND.get(kind)
        if row is not None:
            young = age_at(birth, dates[0]) < 16
            parcours = u.weighted(C.CHILD_PARCOURS if young else C.PARCOURS[row])
        ctx = Context(p.tariff_zone, speciality, executor, kind, p.convention, seg.nature, exo, birth, parcours,
                      c2s_period, payee)
        lines, needs = build_lines(plan.visit[i], dates, ctx, tariffs, u)
        if not lines:
            lines, needs = build_lines(C.CARE_MIX[kind][0], dates, ctx, tariffs, u)
        if not lines:
            raise GeneratorError(f"no code of the {kind} care mix is priced on {dates[0].isoformat()}")
        prescriber, prescribed = 0, None
        if needs:
            prescriber = prescribers.pick(kind, speciality, u)
            lo, hi = C.PRESCRIPTION_AGE_DAYS.get(kind, C.DEFAULT_PRESCRIPTION_AGE)
            start = min(dates)
            back = min(lo + int(u() * (hi - lo + 1)), 365 - (max(dates) - start).days)
            prescribed = start - dt.timedelta(days=max(back, 0))
        quality = col["quality"][i]
        nii, nii_key = "", ""
        if quality in (2, 4) and u() < C.NII_SHARE:
            nii, nii_key = col["nii"][i].decode("ascii"), f"{col['nii_key'][i]:02d}"
        event = date(col["event"][i]) if seg.nature == "AT" else None
        pregnancy = date(col["pregnancy"][i]) if seg.nature == "MA" else None
        head = {
            "nir_opener": col["nir"][i].decode("ascii"), "nir_key": col["key"][i],
            "rang_beneficiaire": col["rang"][i], "invoice_number": 0, "nature_operation": 1, "stay_number": 0,
            "grand_regime": 8, "caisse": 756, "centre": 100, "exo_reason": exo, "prescriber_rpps": prescriber,
            "prescription_date": prescribed, "nature_assurance": seg.nature, "exo_justification": int(exo != 0),
            "pregnancy_start_date": pregnancy, "event_date": event, "event_ref": 0,
            "qualite_beneficiaire": quality, "birth_date": birth, "birth_rank": col["birth_rank"][i],
            "stay_entry_date": None, "stay_exit_date": None, "payee_code": payee,
            "amc_contract_type": C.AMC_CONTRACT_TYPES[int(u() * 3)] if amc_number else "", "amc_number": amc_number,
        }
        complement = {"nii": nii, "nii_key": nii_key, "locum_rpps": 0, "prescribing_finess": "",
                      "parcours_qualifier": parcours.strip()}
        out.append(Built(Invoice(head, complement, lines), col["day"][i], col["ps"][i], seg.name, col["bene"][i],
                         needs))
    return out
