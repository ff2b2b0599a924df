"""Fraud schemes injected at set rates on the generated flow, with their ground truth (fraud.md §2, §5).

Each scheme names the fraud.md indicators expected to catch it, what its rate is a share of
(the practitioners of some kinds, or the deceased beneficiaries), and how it alters the flow.
Every default rate is 0: with no rate given `inject` is never called, so the flow and every
file are byte-identical to a flow generated without fraud. Schemes draw from their own random
stream, run after the anomalies on the numbered flow, and only add invoices or alter clean ones
(never one that carries an anomaly), so the anomalies keep their exact truth.

Fraud is the fraud side stream's to find, not the controls': every fraud invoice passes the
controls, except care after death, which C18 rejects (its invoices are also listed in
truth.jsonl with 8018-001). Schemes run in table order: those that alter or copy clean invoices
first, ghost patients last (their patients must have no other care in the whole flow).
`fraud_truth.jsonl` has one row per fraudulent actor (`truth_rows`).
"""
from __future__ import annotations

import copy
import datetime as dt
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from fseflow.codecs.model import Line
from fseflow.days import NO_DATE, OPEN_END, from_days, to_days
from fseflow.generator import care as C
from fseflow.generator._calendar import previous_working_day
from fseflow.generator._ids import iban_array, with_luhn
from fseflow.generator._invoices import Built, build_invoices
from fseflow.generator._lines import Context, Uniforms, build_lines
from fseflow.generator._tariffs import ONCE_PER_DAY_CATEGORIES, Tariffs
from fseflow.generator.exceptions import GeneratorError
from fseflow.generator.files import FIRST_INVOICE_COUNTER, B2Output
from fseflow.generator.flow import MAX_SESSIONS, SEGMENT_NAMES, FlowPlan, _care_day_table, _Pools
from fseflow.generator.population import Population, apportion
from fseflow.generator.professionals import (
    PS_KINDS, SPECIALITY_LABEL, SURNAMES, ZONE_OF_DEPT, Directory, Professional, unknown_billing_number,
)
from fseflow.processors.tables import read_table

__all__ = ["Scheme", "SCHEMES", "BY_NAME", "DEFAULT_RATES", "FRAUD_DEFAULT_RATES", "Actor", "actor_count",
           "fraud_rates", "inject", "truth_rows", "write_truth", "counts", "with_control_truth", "standard_minutes"]

AUXILIARIES = ("nurse", "physio", "speech", "orthoptist", "podiatrist")


@dataclass(frozen=True)
class Scheme:
    name: str
    indicators: tuple[str, ...]   # fraud.md §3 ids expected to catch it
    actor: str                    # "ps": rate = share of the practitioners of `kinds`;
                                  # "beneficiary": rate = share of the deceased beneficiaries
    kinds: tuple[str, ...]        # PS kinds of the actors (ps) or of the PS billing the care (beneficiary)
    typical: float                # FRAUD_DEFAULT_RATES (profile choice)
    alters: str                   # how the scheme alters the flow
    code: str = ""                # reject code the controls report on its invoices (truth.jsonl), "" = none
    rate: float = 0.0             # default rate: off


SCHEMES: tuple[Scheme, ...] = (
    Scheme("upcoded_majorations", ("F05", "F02"), "ps", ("gp",), 0.005,
           "a GP puts a night (complement 1 and an MM line) or emergency (complement 3 and an MU line) "
           "majoration on most of his consultations and visits"),
    Scheme("rebilling", ("F03", "F06"), "ps", AUXILIARIES, 0.005,
           "an auxiliary bills again, under new invoice numbers in later files, acts already billed: "
           "his own (1 to 4 times: F06) and some of a colleague's of his kind and tariff zone (F03)"),
    Scheme("hyperactive_nurse", ("F01",), "ps", ("nurse",), 0.005,
           "a nurse bills AMI/AIS care to many patients on a few care days, Σ standard minutes > 1,440 a day"),
    Scheme("captive_supplier", ("F07", "F08"), "ps", ("supplier",), 0.005,
           "a new supplier (hearing aids or optics) joins the directory; one prescriber writes most of its "
           "prescriptions, mostly for elderly patients, and its daily volume doubles every month"),
    Scheme("care_after_death", ("F04",), "beneficiary", ("nurse", "physio", "pharmacy", "transporter"), 0.01,
           "a PS bills care dated after the beneficiary's death (the rights table has the death date but the "
           "rights are not closed yet, so C18 alone rejects it)", code="8018-001"),
    Scheme("ghost_patients", ("F10",), "ps", ("nurse", "physio", "gp"), 0.005,
           "a practitioner bills many patients who get no other care in the flow"),
)
BY_NAME = {s.name: s for s in SCHEMES}
DEFAULT_RATES: dict[str, float] = {s.name: s.rate for s in SCHEMES}
#: realistic low rates (fraud.md §5: about 0.5 % of the practitioners concerned)
FRAUD_DEFAULT_RATES: dict[str, float] = {s.name: s.typical for s in SCHEMES}

#: profile choices of the schemes
UPCODE_SHARE = (0.6, 0.9)                     # share of the GP's consultation invoices upcoded
UPCODES = ((1, "MM", 0.4), (3, "MU", 0.6))    # (complement code, majoration line, weight)
REBILL_SHARE = (0.3, 0.6)                     # share of the auxiliary's own invoices billed again
REBILL_COPIES = (1, 4)                        # copies of one own invoice (1 + 4 identical acts > 4: F06)
REBILL_FOREIGN = 0.5                          # a colleague's invoices copied, per own invoice billed again
HYPER_DAYS = 3                                # impossible care days per nurse (at most the reception days)
HYPER_MINUTES = (1_500, 2_000)                # Σ standard minutes billed on each impossible day
HYPER_VISITS = (("nursing_care", 0.5), ("dressing", 0.3), ("home_care", 0.2))
HYPER_BATCH = 40
CAPTIVE_SPECIALITIES = (("65", 0.75), ("64", 0.25))
CAPTIVE_PRESCRIBER_KIND = {"65": "ent", "64": "ophthalmologist"}
#: invoices on the first reception day, by speciality: F07 wants ≥ 20,000 EUR a month (a hearing
#: aid is about 1,000 EUR, a pair of glasses about 100 EUR)
CAPTIVE_START_PER_DAY = {"65": 2, "64": 6}
CAPTIVE_DOUBLING_DAYS = 30                    # calendar days for the daily volume to double
CAPTIVE_MAX_PER_DAY = 40
CAPTIVE_MIN_INVOICES = 30                     # F08 counts suppliers with ≥ 30 invoices
CAPTIVE_TOP_SHARE = 0.9                       # invoices prescribed by the captive prescriber
CAPTIVE_ELDERLY_SHARE = 0.8                   # patients aged ELDERLY_AGE or over
ELDERLY_AGE = 75
DEATH_INVOICES = (1, 3)                       # invoices per deceased beneficiary
DEATH_LAG_DAYS = 10                           # care at most this many days before reception
DEATH_KIND_WEIGHTS = {"nurse": 0.4, "physio": 0.2, "pharmacy": 0.3, "transporter": 0.1}
GHOST_PATIENTS = (25, 40)                     # patients per ghost practitioner, one invoice each

_REGULAR = SEGMENT_NAMES.index("regular")
_PAYEES = (10, 35, 36)


def fraud_rates(rates: Mapping[str, float] | None) -> dict[str, float]:
    """Every scheme's rate, checked; {} when every rate is 0 (fraud off)."""
    merged = {**DEFAULT_RATES, **(rates or {})}
    unknown = set(merged) - set(BY_NAME)
    if unknown:
        raise GeneratorError(f"unknown fraud schemes: {', '.join(sorted(unknown))}")
    if any(not 0 <= r <= 1 for r in merged.values()):
        raise GeneratorError("fraud rates must be between 0 and 1")
    return {s.name: float(merged[s.name]) for s in SCHEMES} if any(merged.values()) else {}


def actor_count(rate: float, eligible: int) -> int:
    """Actors of a scheme: round(rate × eligible), at least 1 when the scheme is on."""
    if rate <= 0 or eligible <= 0:
        return 0
    return min(eligible, max(1, int(round(rate * eligible))))


@cache
def _minutes() -> dict[str, tuple[float, float]]:
    return {r["code"]: (float(r["minutes"]), 0.0) if r["per"] == "act" else (0.0, float(r["minutes"]))
            for r in read_table("act_minutes")}


def standard_minutes(lines: Sequence[Line]) -> float:
    """F01's Σ standard minutes of lines (act_minutes.csv: per act, or per coefficient unit × coefficient)."""
    table, total = _minutes(), 0.0
    for line in lines:
        f = line.fields
        per_act, per_unit = table.get(f["act_code"].strip(), (0.0, 0.0))
        total += f["quantity"] * (per_act + per_unit * f["coefficient"] / 100)
    return total


@dataclass
class Actor:
    """A fraudulent actor and what the scheme made it bill."""

    scheme: str
    ps: int                                           # directory index (the billing PS of a beneficiary actor)
    bene: int = -1                                    # population row of a beneficiary actor
    invoices: list[Built] = field(default_factory=list)   # invoices added or altered
    stake: list[Line] = field(default_factory=list)       # lines added: amount and days at stake


@dataclass
class _Row:
    """One invoice to build: what a FlowPlan row holds."""

    day: int
    kind: str
    ps: int
    visit: C.Visit
    bene: int
    care: list[int]    # day numbers, last first
    payee: int


class _Injector:
    def __init__(self, built: list[Built], pop: Population, directory: Directory, reception_days: list[dt.date],
                 tariffs: Tariffs, rng: np.random.Generator) -> None:
        self.built, self.pop, self.directory, self.days = built, pop, directory, reception_days
        self.tariffs, self.rng = tariffs, rng
        self.pros = directory.professionals
        self.pools = _Pools(pop, reception_days[0])
        self.table = _care_day_table(reception_days)
        self.taken: set[int] = set()          # PS acting in a scheme already
        self.added: list[Built] = []          # new invoices, numbered at the end
        self.actors: list[Actor] = []
        self.billed = {b.bene for b in built}
        self.clean: dict[int, list[Built]] = {}
        for b in built:
            if b.anomaly is None and b.fraud is None and not b.ps_number:
                self.clean.setdefault(b.ps, []).append(b)
        self.new_numbers: set[str] = set()
        self._u: Uniforms | None = None

    @property
    def u(self) -> Uniforms:
        if self._u is None:
            self._u = Uniforms(self.rng)
        return self._u

    # -- draws -----------------------------------------------------------------------------------
    def _weighted(self, pairs: Sequence[tuple[Any, float]]) -> Any:
        w = np.array([p[1] for p in pairs], dtype=np.float64)
        return pairs[int(self.rng.choice(len(pairs), p=w / w.sum()))][0]

    def _payee(self, kind: str) -> int:
        shares = C.PAYEE_SHARES.get(kind, C.DEFAULT_PAYEE_SHARES)
        return self._weighted(list(zip(_PAYEES, shares)))

    def _visit(self, kind: str, age: int | None = None, sex: int = 0) -> C.Visit:
        mix = [(v, v.weight) for v in C.CARE_MIX[kind]
               if age is None or (v.age[0] <= age <= v.age[1] and v.sex in (0, sex))]
        if not mix:
            raise GeneratorError(f"no {kind} care fits a beneficiary aged {age}")
        return self._weighted(mix)

    def _care(self, visit: C.Visit, r: int, payee: int) -> list[int]:
        """Care dates of an invoice received on day r, last first (lag and sessions as the plan draws them)."""
        lag = min(self._weighted(C.LAG_WORKING_DAYS), C.MAX_LAG[payee])
        cand, w = self.table.get((r, lag)) or self.table[(r, 0)]
        dates = [int(cand[int(self.rng.choice(cand.size, p=w / w.sum()))])]
        for _ in range(int(self.rng.integers(visit.sessions[0], visit.sessions[1] + 1)) - 1):
            dates.append(dates[-1] - int(self.rng.integers(C.SESSION_GAP_DAYS[0], C.SESSION_GAP_DAYS[1] + 1)))
        return dates

    def _patients(self, visits: Sequence[C.Visit], exclude: set[int], *, uniform: bool = False,
                  age: tuple[int, int] | None = None, repeat: bool = False) -> list[int]:
        """Distinct beneficiaries fit for each visit (clean rights), none in `exclude`; when too few
        are left and `repeat` is set, some come back."""
        out = [0] * len(visits)
        groups: dict[tuple[tuple[int, int], int], list[int]] = {}
        for i, v in enumerate(visits):
            groups.setdefault((age or v.age, v.sex), []).append(i)
        drawn: set[int] = set()
        for (ages, sex), idx in sorted(groups.items()):
            rows, cum = self.pools.rows("all", ages, sex)
            keep = ~np.isin(rows, np.fromiter(exclude | drawn, dtype=np.int64, count=len(exclude | drawn)))
            w = np.ones(rows.size) if uniform else np.diff(cum, prepend=0.0)
            rows, w = rows[keep], w[keep]
            short = rows.size < len(idx)
            if short and (not repeat or rows.size == 0):
                raise GeneratorError("too few beneficiaries left for the fraud schemes: raise --population")
            pick = self.rng.choice(rows, size=len(idx), replace=short, p=w / w.sum()).tolist()
            for i, row in zip(idx, pick):
                out[i] = int(row)
            drawn.update(pick)
        return out

    def _pick(self, scheme: Scheme, candidates: list[int], weights: list[float] | None, k: int) -> list[int]:
        ws = [1.0] * len(candidates) if weights is None else weights
        pool = [(c, w) for c, w in zip(candidates, ws) if c not in self.taken]
        if len(pool) < k:
            raise GeneratorError(f"only {len(pool)} of {k} practitioners can carry the fraud scheme {scheme.name}: "
                                 "raise --invoices or --population")
        w = np.array([p[1] for p in pool], dtype=np.float64)
        chosen = sorted(pool[int(i)][0] for i in self.rng.choice(len(pool), size=k, replace=False, p=w / w.sum()))
        self.taken.update(chosen)
        return chosen

    def _individuals(self, kinds: Sequence[str]) -> list[int]:
        return [p.index for p in self.pros if p.kind in kinds and not p.is_structure]

    # -- building ----------------------------------------------------------------------------------
    def _build(self, rows: list[_Row]) -> list[Built]:
        n = len(rows)
        care = np.full((n, MAX_SESSIONS), NO_DATE, dtype=np.int32)
        for i, r in enumerate(rows):
            care[i, :len(r.care)] = r.care
        plan = FlowPlan(self.days, np.array([r.day for r in rows], dtype=np.int32),
                        np.full(n, _REGULAR, dtype=np.int8), [r.kind for r in rows],
                        np.array([r.ps for r in rows], dtype=np.int32), np.full(n, -1, dtype=np.int32),
                        [r.visit for r in rows], np.array([r.bene for r in rows], dtype=np.int64), care,
                        np.array([r.payee for r in rows], dtype=np.int16))
        return build_invoices(plan, self.pop, self.directory, self.tariffs, self.rng)

    def _add(self, b: Built, actor: Actor) -> None:
        b.fraud = actor.scheme
        self.added.append(b)
        actor.invoices.append(b)
        actor.stake.extend(b.invoice.lines)
        self.billed.add(b.bene)

    def _actor(self, scheme: Scheme, ps: int, bene: int = -1) -> Actor:
        actor = Actor(scheme.name, ps, bene)
        self.actors.append(actor)
        return actor

    # -- schemes -----------------------------------------------------------------------------------
    def _category(self, line: Line) -> str:
        f = line.fields
        key = self.tariffs.key(f["act_code"].strip(), "00", f["care_date"])
        return key.category if key else ""

    def upcoded_majorations(self, s: Scheme, rate: float) -> None:
        gps = self._individuals(s.kinds)
        k = actor_count(rate, len(gps))
        upcodable = {g: [b for b in self.clean.get(g, [])
                         if any(self._category(line) in ONCE_PER_DAY_CATEGORIES for line in b.invoice.lines)]
                     for g in gps}
        cands = [g for g in gps if upcodable[g]]
        for ps in self._pick(s, cands, [len(upcodable[g]) for g in cands], k):
            actor = self._actor(s, ps)
            share = float(self.rng.uniform(*UPCODE_SHARE))
            for b in upcodable[ps]:
                if self.rng.random() < share:
                    self._upcode(b, actor)
            if not actor.invoices:  # a tiny practice: upcode one invoice at least
                self._upcode(upcodable[ps][0], actor)

    def _upcode(self, b: Built, actor: Actor) -> None:
        p, head = self.pros[b.ps], b.invoice.head
        c2s = None
        if b.bene >= 0 and self.pop.c2s_start[b.bene] != NO_DATE:
            c2s = (from_days(int(self.pop.c2s_start[b.bene])), from_days(int(self.pop.c2s_end[b.bene])))
        lines: list[Line] = []
        for line in b.invoice.lines:
            lines.append(line)
            f = line.fields
            if self._category(line) not in ONCE_PER_DAY_CATEGORIES:
                continue
            complement, code = self._weighted([((c, m), w) for c, m, w in UPCODES])
            ctx = Context(p.tariff_zone, p.speciality, f["executor_rpps"], p.kind, p.convention,
                          head["nature_assurance"], head["exo_reason"], head["birth_date"],
                          b.invoice.complement["parcours_qualifier"] or " ", c2s, head["payee_code"])
            extra, _ = build_lines(C.Visit("upcode", 1.0, (C.Act(code),)), [f["care_date"]], ctx, self.tariffs,
                                   self.u)
            f["complement_code"] = complement
            lines.extend(extra)
            actor.stake.extend(extra)
        b.invoice.lines = lines
        b.fraud = actor.scheme
        actor.invoices.append(b)

    def rebilling(self, s: Scheme, rate: float) -> None:
        aux = self._individuals(s.kinds)
        k = actor_count(rate, len(aux))
        last = len(self.days) - 1

        def sources(ps: int) -> list[Built]:
            return [b for b in self.clean.get(ps, []) if b.fraud is None and (b.day < last or last == 0)]

        cands = [a for a in aux if sources(a)]
        for ps in self._pick(s, cands, [len(sources(a)) for a in cands], k):
            actor = self._actor(s, ps)
            own = sources(ps)
            n = max(1, int(round(self.rng.uniform(*REBILL_SHARE) * len(own))))
            for i in sorted(self.rng.choice(len(own), size=n, replace=False).tolist()):
                for _ in range(int(self.rng.integers(REBILL_COPIES[0], REBILL_COPIES[1] + 1))):
                    self._copy(own[i], ps, actor)
            me = self.pros[ps]
            foreign = [b for q in aux if q != ps and self.pros[q].kind == me.kind
                       and self.pros[q].tariff_zone == me.tariff_zone for b in sources(q)]
            m = min(len(foreign), max(1, int(round(REBILL_FOREIGN * n))))
            for i in sorted(self.rng.choice(len(foreign), size=m, replace=False).tolist()) if m else []:
                self._copy(foreign[i], ps, actor)

    def _copy(self, b: Built, ps: int, actor: Actor) -> None:
        """The invoice billed again by `ps` under a new number, received on a later day when there is one."""
        invoice = copy.deepcopy(b.invoice)
        if ps != b.ps:
            rpps = int(self.pros[ps].rpps)
            for line in invoice.lines:
                line.fields["executor_rpps"] = rpps
        later = len(self.days) - 1 - b.day
        day = b.day + 1 + int(self.rng.integers(0, later)) if later > 0 else b.day
        self._add(Built(invoice, day, ps, b.segment, b.bene, needs_prescription=b.needs_prescription), actor)

    def hyperactive_nurse(self, s: Scheme, rate: float) -> None:
        nurses = self._individuals(s.kinds)
        k = actor_count(rate, len(nurses))
        by_name = {v.name: v for v in C.CARE_MIX["nurse"]}
        mix = [(by_name[name], w) for name, w in HYPER_VISITS]
        for ps in self._pick(s, nurses, None, k):
            actor = self._actor(s, ps)
            days = sorted(self.rng.choice(len(self.days), size=min(HYPER_DAYS, len(self.days)), replace=False).tolist())
            for r in days:
                care = to_days(previous_working_day(self.days[r]))
                target = float(self.rng.integers(HYPER_MINUTES[0], HYPER_MINUTES[1] + 1))
                total, seen = 0.0, set()
                for _ in range(100):
                    if total > target:
                        break
                    visits = [self._weighted(mix) for _ in range(HYPER_BATCH)]
                    benes = self._patients(visits, seen)
                    rows = [_Row(r, "nurse", ps, v, bene, [care], self._payee("nurse"))
                            for v, bene in zip(visits, benes)]
                    for b in self._build(rows):
                        if total > target:
                            break
                        total += standard_minutes(b.invoice.lines)
                        seen.add(b.bene)
                        self._add(b, actor)
                if total <= target:
                    raise GeneratorError("the hyperactive nurse could not reach an impossible day")

    def captive_supplier(self, s: Scheme, rate: float) -> None:
        suppliers = [p.index for p in self.pros if p.kind in s.kinds]
        for _ in range(actor_count(rate, len(suppliers))):
            speciality = self._weighted(CAPTIVE_SPECIALITIES)
            kind = CAPTIVE_PRESCRIBER_KIND[speciality]
            prescribers = self._individuals((kind,)) or self._individuals(("gp",))
            prescriber = self.pros[prescribers[int(self.rng.integers(0, len(prescribers)))]]
            ps = self._new_supplier(speciality, prescriber.department)
            actor = self._actor(s, ps)
            elapsed = np.array([(d - self.days[0]).days for d in self.days], dtype=np.float64)
            growth = 2.0 ** (elapsed / CAPTIVE_DOUBLING_DAYS)
            start = CAPTIVE_START_PER_DAY[speciality]
            per_day = np.minimum(np.round(start * growth), CAPTIVE_MAX_PER_DAY).astype(np.int64)
            if per_day.sum() < CAPTIVE_MIN_INVOICES:
                per_day = apportion(growth, CAPTIVE_MIN_INVOICES)
            n = int(per_day.sum())
            visit = C.CARE_MIX["supplier"][0]
            old = int(round(CAPTIVE_ELDERLY_SHARE * n))
            benes = self._patients([visit] * old, set(), age=(ELDERLY_AGE, 200), repeat=True)
            benes += self._patients([visit] * (n - old), set(benes), age=(18, ELDERLY_AGE - 1), repeat=True)
            benes = [benes[int(i)] for i in self.rng.permutation(n)]
            rows = []
            for r, count in enumerate(per_day.tolist()):
                for _ in range(count):
                    payee = self._payee("supplier")
                    rows.append(_Row(r, "supplier", ps, visit, benes[len(rows)], self._care(visit, r, payee), payee))
            built = self._build(rows)
            top = self.rng.permutation(n)[:int(round(CAPTIVE_TOP_SHARE * n))]
            for i in top.tolist():
                built[i].invoice.head["prescriber_rpps"] = int(prescriber.rpps)
            for b in built:
                self._add(b, actor)

    def _new_supplier(self, speciality: str, dept: str) -> int:
        """A supplier the directory did not hold: new billing number and RPPS, in the prescriber's département."""
        number = unknown_billing_number(self.directory, dept, PS_KINDS["supplier"].category, self.rng,
                                        self.new_numbers)
        known = {p.rpps for p in self.pros} | {m.rpps for p in self.pros for m in p.members}
        while True:
            rpps = with_luhn(f"10{int(self.rng.integers(0, 10**8)):08d}")
            if rpps not in known:
                break
        iban = iban_array(np.array([30004]), np.array([int(self.rng.integers(1, 100_000))]),
                          np.array([int(self.rng.integers(1, 10**11))]))[0].decode("ascii")
        surname = SURNAMES[int(self.rng.integers(0, len(SURNAMES)))]
        p = Professional(index=len(self.pros), ps_number=number, rpps=rpps, speciality=speciality, convention=1,
                         department=dept, tariff_zone=ZONE_OF_DEPT.get(dept, "00"), iban=iban,
                         name=f"{SPECIALITY_LABEL.get(speciality, PS_KINDS['supplier'].label)} {surname}",
                         kind="supplier", weight=0.0)
        self.pros.append(p)
        self.directory.by_kind.setdefault("supplier", []).append(p.index)
        return p.index

    def care_after_death(self, s: Scheme, rate: float) -> None:
        p = self.pop
        dead = np.flatnonzero((p.death != NO_DATE) & (p.rights_start <= p.death) & (p.birth < p.death))
        k = actor_count(rate, dead.size)
        if rate > 0 and k == 0:
            raise GeneratorError("no deceased beneficiary for the scheme care_after_death: raise --population")
        billers = {kind: self._individuals((kind,)) for kind in s.kinds}
        for row in np.sort(self.rng.choice(dead, size=k, replace=False)).tolist():
            death, age, sex = int(p.death[row]), int(p.age[row]), int(p.sex[row])
            kind = self._weighted([(kd, DEATH_KIND_WEIGHTS[kd]) for kd in s.kinds if billers[kd]])
            pool = billers[kind]
            ps = self._weighted([(q, self.pros[q].weight) for q in pool])
            actor = self._actor(s, ps, row)
            dates: set[int] = set()
            rows = []
            for _ in range(int(self.rng.integers(DEATH_INVOICES[0], DEATH_INVOICES[1] + 1))):
                r = int(self.rng.integers(0, len(self.days)))
                hi = to_days(self.days[r])
                d = int(self.rng.integers(max(death + 1, hi - DEATH_LAG_DAYS), hi + 1))
                if d in dates:
                    continue
                dates.add(d)
                rows.append(_Row(r, kind, ps, self._visit(kind, age, sex), row, [d], self._payee(kind)))
            # the death is in the rights table but the rights are still open: C18, not C17, rejects
            p.rights_end[row] = OPEN_END
            for b in self._build(rows):
                self._add(b, actor)

    def ghost_patients(self, s: Scheme, rate: float) -> None:
        cands = self._individuals(s.kinds)
        k = actor_count(rate, len(cands))
        for ps in self._pick(s, cands, None, k):
            actor = self._actor(s, ps)
            kind = self.pros[ps].kind
            n = int(self.rng.integers(GHOST_PATIENTS[0], GHOST_PATIENTS[1] + 1))
            visits = [self._visit(kind) for _ in range(n)]
            benes = self._patients(visits, self.billed, uniform=True)
            rows = []
            for v, bene in zip(visits, benes):
                r, payee = int(self.rng.integers(0, len(self.days))), self._payee(kind)
                rows.append(_Row(r, kind, ps, v, bene, self._care(v, r, payee), payee))
            for b in self._build(rows):
                self._add(b, actor)

    # -- numbers -----------------------------------------------------------------------------------
    def number(self) -> None:
        """New invoices get the next numbers of their PS (reception order), as its software would."""
        counter: dict[int, int] = {}
        for b in self.built:
            counter[b.ps] = max(counter.get(b.ps, 0), b.invoice.head["invoice_number"] % 10**7)
        for b in sorted(self.added, key=lambda b: b.day):
            if b.ps not in counter:
                counter[b.ps] = int(self.rng.integers(FIRST_INVOICE_COUNTER[0], FIRST_INVOICE_COUNTER[1] + 1))
            counter[b.ps] += 1
            b.invoice.head["invoice_number"] = self.days[b.day].year % 100 * 10**7 + counter[b.ps]


def inject(built: list[Built], rates: Mapping[str, float], pop: Population, directory: Directory,
           reception_days: list[dt.date], tariffs: Tariffs, rng: np.random.Generator) -> list[Actor]:
    """Run every scheme whose rate is > 0 on the numbered flow: alter clean invoices in place, append
    the new ones to `built` (numbered), add captive suppliers to `directory`, reopen the rights of
    the deceased billed after death in `pop`. Returns the actors, in scheme order."""
    inj = _Injector(built, pop, directory, reception_days, tariffs, rng)
    for s in SCHEMES:
        rate = rates.get(s.name, 0.0)
        if rate > 0:
            getattr(inj, s.name)(s, rate)
    inj.number()
    built.extend(inj.added)
    return inj.actors


# -- ground truth ---------------------------------------------------------------------------------
def _beneficiary_ids(pop: Population) -> np.ndarray:
    """Pseudonymous id of each population row: its 0-based row in beneficiaries.csv (the fund's
    internal id, beneficiaries.row_id, once the file is loaded into an empty table)."""
    order = np.lexsort((pop.rang, pop.opener))  # write_beneficiaries' order
    ids = np.empty(order.size, dtype=np.int64)
    ids[order] = np.arange(order.size)
    return ids


def truth_rows(actors: Sequence[Actor], pop: Population, directory: Directory) -> list[dict[str, Any]]:
    """One row per fraudulent actor (fraud_truth.jsonl). Never a NIR: PS by billing number and
    RPPS, beneficiaries by their pseudonymous id (`_beneficiary_ids`)."""
    ids = _beneficiary_ids(pop) if any(a.bene >= 0 for a in actors) else None
    rows = []
    for a in actors:
        s, p = BY_NAME[a.scheme], directory.professionals[a.ps]
        days = [line.fields["care_date"] for line in a.stake]
        row: dict[str, Any] = {"scheme": a.scheme, "kind": s.actor}
        if s.actor == "beneficiary":
            assert ids is not None
            row["beneficiary"] = int(ids[a.bene])
        row.update(ps_number=p.ps_number, rpps=p.rpps, indicators=list(s.indicators),
                   first_day=min(days).isoformat(), last_day=max(days).isoformat(), invoices=len(a.invoices),
                   patients=len({b.bene for b in a.invoices}),
                   amount_cents=sum(line.fields["amo_amount"] for line in a.stake))
        rows.append(row)
    return rows


def write_truth(actors: Sequence[Actor], pop: Population, directory: Directory, path: Path, on: bool) -> None:
    """`fraud_truth.jsonl` when fraud is on; otherwise no such file (a stale one is removed)."""
    if not on:
        path.unlink(missing_ok=True)
        return
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in truth_rows(actors, pop, directory))


def counts(actors: Sequence[Actor]) -> dict[str, dict[str, int]]:
    """Per scheme (summary.json `fraud`): actors, invoices added or altered, Σ AMO at stake."""
    out = {s.name: {"actors": 0, "invoices": 0, "amount_cents": 0} for s in SCHEMES}
    for a in actors:
        c = out[a.scheme]
        c["actors"] += 1
        c["invoices"] += len(a.invoices)
        c["amount_cents"] += sum(line.fields["amo_amount"] for line in a.stake)
    return out


def with_control_truth(outputs: Sequence[B2Output], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """truth.jsonl rows plus one per fraud invoice a control rejects (care after death: C18), in file order."""
    extra = []
    for k, o in enumerate(outputs):
        for lot, b in o.placed:
            s = BY_NAME.get(b.fraud) if b.fraud else None
            if s is None or not s.code:
                continue
            head = b.invoice.head
            extra.append((k, lot, {"file": o.name, "lot": lot, "ps": o.emitter,
                                   "invoice": f"{head['invoice_number']:09d}", "nir": head["nir_opener"],
                                   "kind": b.fraud, "code": s.code}))
    if not extra:
        return rows
    where = {o.name: k for k, o in enumerate(outputs)}
    merged = [(where[r["file"]], r["lot"], r) for r in rows] + extra
    merged.sort(key=lambda t: (t[0], t[1]))  # stable: anomalies first within a lot
    return [r for _, _, r in merged]
