"""`generate`: the one entry point the CLI calls — population, directory, flow, anomalies, files.

Outputs in `out_dir`: `beneficiaries.csv`, `professionals.csv`, `b2/PS<n°>-<AAAAMMJJ>.b2`
(one per PS and reception day), `manifest.csv` (files in arrival order), `truth.jsonl`
(one row per anomalous invoice) and `summary.json`; with fraud on, `fraud_truth.jsonl` (one row
per fraudulent actor, fraud.py). Same seed and arguments → same bytes.
"""
from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from fseflow.days import NO_DATE, OPEN_END
from fseflow.generator import _shares as S, anomalies as A, care as C, fraud as F
from fseflow.generator._calendar import working_days
from fseflow.generator._invoices import Built, build_invoices
from fseflow.generator._tariffs import Tariffs
from fseflow.generator.exceptions import GeneratorError
from fseflow.generator.files import B2Output, assemble, number_invoices
from fseflow.generator.flow import plan_flow
from fseflow.generator.population import Population, build_population, write_beneficiaries
from fseflow.generator.professionals import Directory, build_directory, write_professionals
from fseflow.generator.writer import truth_rows, write_b2_files, write_json, write_jsonl, write_manifest

__all__ = ["generate", "Summary", "DEFAULT_START_DATE", "EARLIEST_START_DATE"]

#: default first reception day: a recent Monday, after every tariff change of letter_keys.csv
DEFAULT_START_DATE = dt.date(2026, 10, 5)
#: every code of the care mix has a tariff row from 2024-02-22 (AMK/AMS/AMC): care must follow it
EARLIEST_START_DATE = dt.date(2024, 4, 1)
MIN_POPULATION = 2_000
#: independent random streams, so that e.g. the invoice count never changes the population
_STREAMS = ("population", "directory", "plan", "invoices", "numbers", "anomalies", "files", "fraud")


@dataclass(frozen=True)
class Summary(Mapping[str, Any]):
    """What was generated (the content of summary.json); also readable as a mapping."""

    seed: int
    start_date: str
    days: int
    reception_days: list[str]
    population: dict[str, int]
    professionals: dict[str, int]
    files: int
    lots: int
    invoices: int
    lines: int
    fse_files: int
    paper_files: int
    fse_share_pct: float
    by_nature: dict[str, int]
    by_lot_family: dict[str, int]
    by_payee: dict[str, int]
    by_segment: dict[str, int]
    apias_files: int
    sig_files: int
    teleconsultations: int
    anomalies: dict[str, int]
    billed_cents: int
    amo_declared_cents: int
    bytes_written: int = 0
    fraud: dict[str, dict[str, int]] = field(default_factory=dict)   # per scheme, when fraud is on

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.fraud:
            del d["fraud"]  # fraud off: summary.json as without fraud
        return d

    def __getitem__(self, name: str) -> Any:
        if name not in self.__dataclass_fields__:
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)


def _population_counts(pop: Population) -> dict[str, int]:
    def count(mask: np.ndarray) -> int:
        return int(np.count_nonzero(mask))

    return {
        "persons": len(pop), "insured": count(pop.status < S.FAMILY), "active": count(pop.status == S.ACTIVE),
        "retired": count(pop.status == S.RETIRED), "other": count(pop.status == S.OTHER),
        "family_members": count(pop.status == S.FAMILY), "men": count(pop.sex == 1), "women": count(pop.sex == 2),
        "ald": count(pop.ald_start != NO_DATE), "c2s": count(pop.c2s_start != NO_DATE),
        "c2s_free": count(pop.c2s_free), "c2s_contribution": count((pop.c2s_start != NO_DATE) & ~pop.c2s_free),
        "apias_insured": count(pop.apias_event != NO_DATE), "sig_holders": count(pop.sig_start != NO_DATE),
        "sig_consumers": count(pop.sig_consumer), "deaths": count(pop.death != NO_DATE),
        "rights_closed": count((pop.rights_end != OPEN_END) & (pop.death == NO_DATE)),
        "pregnancies": count(pop.pregnancy_start != NO_DATE), "without_iban": count((pop.status < S.FAMILY)
                                                                                     & (pop.iban == b"")),
    }


def _as_date(value: dt.date | str | None) -> dt.date:
    if value is None:
        return DEFAULT_START_DATE
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _summarize(seed: int, start: dt.date, reception: list[dt.date], pop: Population, directory: Directory,
               built: list[Built], outputs: list[B2Output], kinds: list[str], written: int) -> Summary:
    heads = [b.invoice.head for b in built]
    lines = [line.fields for b in built for line in b.invoice.lines]
    n = len(built)
    paper = int(round(n * C.PAPER_SHARE / C.FSE_SHARE))

    def counts(values: Iterable[object]) -> dict[str, int]:
        return {str(k): v for k, v in sorted(Counter(values).items())}

    return Summary(
        seed=seed, start_date=start.isoformat(), days=len(reception), reception_days=[d.isoformat() for d in reception],
        population=_population_counts(pop),
        professionals={"billing_numbers": len(directory.professionals), "directory_rows": len(directory.rows()),
                       "structures": sum(p.is_structure for p in directory.professionals)},
        files=len(outputs), lots=sum(len(o.b2.lots) for o in outputs), invoices=n, lines=len(lines),
        fse_files=n, paper_files=paper, fse_share_pct=round(100 * n / (n + paper), 3),
        by_nature=counts(h["nature_assurance"] for h in heads), by_lot_family=counts(b.family for b in built),
        by_payee=counts(h["payee_code"] for h in heads), by_segment=counts(b.segment for b in built),
        apias_files=sum(h["nature_assurance"] == "AT" for h in heads),
        sig_files=sum(h["nature_assurance"] == "SG" or h["exo_reason"] == 21 for h in heads),
        teleconsultations=sum(b.segment == "teleconsultation" for b in built),
        anomalies={k: sum(b.anomaly == k for b in built) for k in kinds},
        billed_cents=sum(f["billed_amount"] for f in lines), amo_declared_cents=sum(f["amo_amount"] for f in lines),
        bytes_written=written,
    )


def generate(out_dir: str | os.PathLike[str], invoices: int, seed: int, start_date: dt.date | str | None = None,
             days: int = 1, population: int | None = None, *, anomaly_rates: Mapping[str, float] | None = None,
             framing: str = "fixed", write_b2: bool = True, fraud_rates: Mapping[str, float] | None = None
             ) -> Summary:
    """Generate a synthetic flow of `invoices` B2 invoices over `days` working days.

    `population` protected persons (default: full scale, 782,783); `anomaly_rates` overrides
    the default share of each anomaly kind (anomalies.ANOMALIES); `framing` is the B2 codec's
    ('fixed' records end to end, 'LF' or 'CRLF' lines). `write_b2=False` skips the B2 files.
    `fraud_rates` turns fraud schemes on (fraud.SCHEMES; e.g. fraud.FRAUD_DEFAULT_RATES).
    """
    start = _as_date(start_date)
    size = S.FULL_SCALE if population is None else int(population)
    if invoices < 1 or days < 1:
        raise GeneratorError("invoices and days must be at least 1")
    if size < MIN_POPULATION:
        raise GeneratorError(f"population must be at least {MIN_POPULATION}")
    if start < EARLIEST_START_DATE:
        raise GeneratorError(f"start date must be on or after {EARLIEST_START_DATE.isoformat()}")
    fraud = F.fraud_rates(fraud_rates)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    rng = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, seeds)}

    reception = working_days(start, days)
    pop = build_population(size, reception[0], rng["population"])
    directory = build_directory(size, rng["directory"])
    counts = A.anomaly_counts(invoices, anomaly_rates)
    resends = counts["duplicate_invoice"]
    if resends >= invoices:
        raise GeneratorError("more duplicates than invoices")
    tariffs = Tariffs()
    plan = plan_flow(pop, directory, reception, invoices, invoices - resends, tariffs, rng["plan"])
    built = build_invoices(plan, pop, directory, tariffs, rng["invoices"])
    number_invoices(built, directory, reception, rng["numbers"])
    built += A.inject(built, counts, pop, directory, reception, rng["anomalies"])
    actors = F.inject(built, fraud, pop, directory, reception, tariffs, rng["fraud"]) if fraud else []
    outputs = assemble(built, directory, reception, rng["files"])

    write_beneficiaries(pop, out / "beneficiaries.csv")
    write_professionals(directory, out / "professionals.csv")
    written = write_b2_files(outputs, out, framing) if write_b2 else 0
    write_manifest(outputs, out / "manifest.csv")
    write_jsonl(F.with_control_truth(outputs, truth_rows(outputs)), out / "truth.jsonl")
    F.write_truth(actors, pop, directory, out / "fraud_truth.jsonl", on=bool(fraud))

    summary = _summarize(seed, start, reception, pop, directory, built, outputs, list(counts), written)
    if fraud:
        summary = replace(summary, fraud=F.counts(actors))
    write_json(summary.as_dict(), out / "summary.json")
    return summary
