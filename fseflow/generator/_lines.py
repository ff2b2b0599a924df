"""Lines of one invoice: codes, coefficients, prices, declared base/rate/AMO, and detail records.

The declared amounts are what PS software computes (liquidation.md L03–L08): tariff from the
table value or the declared unit price, base = min(billed, tariff), the rate of L06, AMO
half-up, the 24 EUR flat share; on a C2S line the declared AMO includes the C2S complement.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from fseflow.codecs.model import Detail, Line
from fseflow.generator import _catalogue as K, care as C
from fseflow.generator._calendar import age_at
from fseflow.generator._tariffs import (
    FAMILY_RATE_PARAM, FLAT_RULE_CODES, FULL_RATE_NATURES, OUT_OF_PATHWAY_CATEGORIES, Key, Tariffs, round_half_up,
)


T = TypeVar("T")


class Uniforms:
    """A deterministic stream of uniforms in [0, 1), drawn in blocks (cheap per draw)."""

    def __init__(self, rng: np.random.Generator, block: int = 1 << 16) -> None:
        self._rng, self._block = rng, block
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self._rng.random(self._block).tolist()
            self._i = 0
        u = self._buf[self._i]
        self._i += 1
        return u

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self() * len(seq))]

    def weighted(self, pairs: Sequence[tuple[T, float]]) -> T:
        """A value of (value, weight) pairs, drawn with probability ∝ weight."""
        x, acc = self() * sum(w for _, w in pairs), 0.0
        for value, w in pairs:
            acc += w
            if x < acc:
                return value
        return pairs[-1][0]

    def between(self, lo: int, hi: int) -> int:
        return lo + int(self() * (hi - lo + 1))


@dataclass
class Context:
    """What the lines of one invoice depend on."""

    zone: str
    speciality: str          # executing speciality
    executor_rpps: int       # 0 = the lot's PS
    kind: str
    convention: int
    nature: str
    exo: int
    birth: dt.date
    parcours: str
    c2s: tuple[dt.date, dt.date] | None   # C2S period of the beneficiary
    payee: int

    def c2s_at(self, day: dt.date) -> bool:
        return self.c2s is not None and self.c2s[0] <= day <= self.c2s[1]


def _resolve(code: str, ctx: Context, day: dt.date, tariffs: Tariffs) -> tuple[str, Key | None]:
    code = C.SPECIALITY_CODES.get((ctx.speciality, code), code)
    if ctx.convention == 2:
        code = C.SECTOR2_CODES.get(code, code)
    key = tariffs.key(code, ctx.zone, day)
    if key is None and code in C.FALLBACK_CODES:
        code = C.FALLBACK_CODES[code]
        key = tariffs.key(code, ctx.zone, day)
    return code, key


def _declared_unit(code: str, u: Uniforms) -> int:
    lo, hi = C.DECLARED_PRICES[code]
    return lo if lo == hi else (lo + int(u() * (hi - lo))) // 10 * 10


def _rate(key: Key, family: str, ctx: Context, flagged: bool, day: dt.date, tariffs: Tariffs) -> int:
    """L06, the way PS software declares it."""
    if ctx.nature in FULL_RATE_NATURES:
        return 100
    exo = tariffs.exonerations[ctx.exo]
    if flagged and (exo["exonerating"] == "yes" or (exo["exonerating"] == "transport only"
                                                    and key.category == "transport")):
        return 100
    rate = key.base_rate_pct
    if rate is None:
        rate = tariffs.param(FAMILY_RATE_PARAM[family], day)
    if (family == "physician" and key.category in OUT_OF_PATHWAY_CATEGORIES
            and age_at(ctx.birth, day) >= tariffs.param("PARCOURS_EXEMPT_AGE_BELOW", day)
            and not tariffs.in_pathway[ctx.parcours]):
        rate = tariffs.param("RATE_OUT_OF_PATHWAY", day)
    return rate


def _details(act: C.Act, code: str, day: dt.date, u: Uniforms) -> tuple[int, int, list[Detail]]:
    """(coefficient hundredths, declared unit price or -1, detail records) of a catalogue-backed line."""
    kind, _, arg = act.detail.partition(":")
    if kind == "ccam":
        ccam = u.pick(K.CCAM[arg])
        teeth = u.pick(K.TEETH) if ccam.tooth else ""
        return 100, ccam.price, [Detail("4M", {
            "ccam_code": ccam.code, "documentary_extension": "", "activity": 1, "phase": 0, "modifier_1": "",
            "modifier_2": "", "modifier_3": "", "modifier_4": "", "association_code": "",
            "conditional_reimbursement": "", "teeth": teeth})]
    if kind == "nabm":
        if arg == "preanalytic":
            blocks = [K.PREANALYTIC_NABM]
        else:
            n = u.between(1, 7)
            weights = [w for *_, w in K.NABM]
            total = sum(weights)
            chosen: dict[int, int] = {}
            while len(chosen) < n:
                x, acc = u() * total, 0.0
                for code_, coef, w in K.NABM:
                    acc += w
                    if x < acc:
                        chosen[code_] = coef
                        break
            blocks = sorted(chosen.items())
        coef = sum(c for _, c in blocks) * 100
        if coef == K.PREANALYTIC_NABM[1] * 100 and arg != "preanalytic":
            blocks.append((552, 5))  # never a second B 17 (C37)
            coef += 500
        records = []
        for i in range(0, len(blocks), 5):
            f: dict[str, object] = {}
            for j, (nabm, _) in enumerate(blocks[i:i + 5], start=1):
                f.update({f"bio{j}_date": day, f"bio{j}_quantity": 1, f"bio{j}_nabm_code": nabm})
            records.append(Detail("4B", f))
        return coef, -1, records
    raise ValueError(f"unknown detail kind {kind}")


def build_lines(visit: C.Visit, dates: list[dt.date], ctx: Context, tariffs: Tariffs, u: Uniforms
                ) -> tuple[list[Line], bool]:
    """The `4` lines of one invoice with their details and declared amounts, and whether any
    of their codes requires a prescription (C32)."""
    lines: list[Line] = []
    for day in reversed(dates):  # first session first
        age = age_at(ctx.birth, day)
        for act in visit.acts:
            if act.p < 1.0 and u() >= act.p:
                continue
            if not act.age[0] <= age <= act.age[1]:
                continue
            lines.extend(_act_lines(act, day, ctx, tariffs, u))
    _flat_rule(lines, tariffs)
    needs_prescription = any(line.fields["_key"].prescription_required for line in lines)
    for line in lines:
        f = line.fields
        amo = f["amo_amount"]
        if ctx.c2s_at(f["care_date"]) and f["rate_pct"] < 100:
            amo = f["base"]  # AMO before deductions includes the C2S complement (V04)
        f["amo_amount"] = amo
        f["amc_amount"] = min(max(f["base"] - amo, 0), 999_999) if ctx.payee == 36 else 0
        del f["_key"]
    return lines, needs_prescription


def _act_lines(act: C.Act, day: dt.date, ctx: Context, tariffs: Tariffs, u: Uniforms) -> list[Line]:
    details: list[Detail] = []
    coef, unit, qty = u.pick(act.coef), -1, u.pick(act.qty)
    if act.detail == "drug":
        drugs = K.drugs()
        cum = drugs.cumweight
        i = min(bisect.bisect_right(cum, u() * cum[-1]), len(cum) - 1)
        code, unit = drugs.code[i], int(drugs.price[i])
        qty = u.weighted(C.DRUG_BOXES)
        klass = int(code[2]) if code[2].isdigit() else 0
        details.append(Detail("4P", {"dispensing_date": day, "cip13": int(drugs.cip13[i]), "boxes": qty,
                                     "box_unit_price": unit, "rate_class": klass, "total_billed": qty * unit,
                                     "generic_flag": drugs.generic[i]}))
    elif act.detail == "lpp":
        items = K.LPP.get(ctx.speciality, K.LPP["60"])
        chosen = [items[0]] + [it for it in items[1:] if u() < 0.5] if ctx.speciality == "64" else [u.pick(items)]
        unit = 0
        for lpp, price, quantities in chosen:
            q = u.pick(quantities)
            unit += q * price
            details.append(Detail("3F", {"lpp_code": lpp, "quantity": q, "lpp_unit_price": price,
                                         "total_billed": q * price, "unit_purchase_price": 0, "unit_gap": 0,
                                         "total_gap": 0}))
        code = act.code
    else:
        code = act.code
        if act.detail:
            coef, unit, details = _details(act, code, day, u)
    code, key = _resolve(code, ctx, day, tariffs)
    if key is None:
        return []
    family = tariffs.family(ctx.speciality, key)
    if family is None:
        return []
    if key.value_cents is not None:
        unit = key.value_cents
    elif unit < 0:
        unit = _declared_unit(code, u)
    tariff = round_half_up(unit * coef * qty, 100)
    billed = tariff
    lo_hi, categories = C.SECTOR2_EXCESS
    c2s = ctx.c2s_at(day)
    if ctx.convention == 2 and key.category in categories and not c2s:
        billed = int(math.ceil(tariff * (lo_hi[0] + u() * (lo_hi[1] - lo_hi[0])) / 100.0)) * 100
    if act.detail == "ccam:CROWN" and not c2s:
        billed = C.CROWN_BILLED[0] + int(u() * (C.CROWN_BILLED[1] - C.CROWN_BILLED[0])) // 100 * 100
    base = min(billed, tariff)
    exo = tariffs.exonerations[ctx.exo]
    flagged = ctx.exo != 0 and exo["exonerating"] != "no" and (ctx.exo == 21 or u() < C.ALD_FLAG_RATE)
    rate = _rate(key, family, ctx, flagged, day, tariffs)
    fields = {
        "treatment_mode": 0, "discipline": 0, "complement_code": 0, "line_exo_flag": int(flagged),
        "executor_rpps": ctx.executor_rpps, "executor_speciality": int(ctx.speciality), "care_date": day,
        "act_code": code, "act_code_suffix": "", "quantity": qty, "coefficient": coef,
        "count": qty if key.category == "transport" else 1, "unit_price": unit, "base": base, "rate_pct": rate,
        "amo_amount": round_half_up(base * rate, 100), "billed_amount": billed, "amc_amount": 0, "_key": key,
    }
    return [Line("4", fields, details)]


def _flat_rule(lines: list[Line], tariffs: Tariffs) -> None:
    """L08: the 24 EUR flat share per care date and practitioner, as PS software declares it."""
    groups: dict[tuple[dt.date, int], list[Line]] = {}
    for line in lines:
        f = line.fields
        if f["act_code"] in FLAT_RULE_CODES and f["rate_pct"] < 100:
            groups.setdefault((f["care_date"], f["executor_rpps"]), []).append(line)
    for (day, _), members in groups.items():
        total = sum(m.fields["base"] for m in members)
        coef = sum(m.fields["coefficient"] * m.fields["quantity"] for m in members
                   if not m.fields["_key"].priced_by_unit)
        if (total < tariffs.param("FLAT_FEE_THRESHOLD_TARIFF", day)
                and coef < tariffs.param("FLAT_FEE_THRESHOLD_COEF", day)):
            continue
        left = min(tariffs.param("FLAT_FEE_HEAVY_ACT", day), total)
        for m in sorted(members, key=lambda m: -m.fields["base"]):
            share = min(m.fields["base"], left)
            left -= share
            m.fields["amo_amount"] = m.fields["base"] - share
