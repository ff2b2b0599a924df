"""Fraud detection measured against the generator's ground truth (fraud.md §5).

    python -m fseflow.benchmarks.fraud_eval [--invoices N --days D --population P --seed S] [--explain]

Generates a month of flow with the fraud schemes at their default (realistic, low) rates, runs
the stream's own decode and liquidate steps on it (no services: the same functions the agents
call), then the month pass of the fraud side stream (stream/fraud_month.py: the facts the agents'
running sums hold, counted from the same line features; the stream tests check both agree) on
every month of the flow, and alerts with the 1 % cap of fraud.md §4. It prints, per scheme,
recall (actors alerted / actors) and precision@k (k = the scheme's actors), and overall
precision against `fraud_truth.jsonl`; `--explain` prints every actor's score and explanation
and the highest-scored innocents.

Seeds: weights were tuned on seed 1 (F03, F06, F08, F10) and seed 2 (F05, and the family-level
peer fallback); the default seed 3 was held out. A command that prints figures, not a timed test.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson


def line_features(flow: Path) -> dict[str, np.ndarray]:
    """Every line feature the liquidate agent would send to the fraud side stream for the flow."""
    from fseflow.processors.directory import load_beneficiaries, load_professionals
    from fseflow.processors.reference import compile_reference
    from fseflow.stream import decode as dec
    from fseflow.stream.ingest import received
    from fseflow.stream.liquidate import liquidate_step
    from fseflow.stream.state import PartitionState

    from fseflow.generator import manifest_files

    bene, pros = load_beneficiaries(flow / "beneficiaries.csv"), load_professionals(flow / "professionals.csv")
    ref = compile_reference()
    state, seen, parts, offset = PartitionState(0), {}, [], 0
    files = manifest_files(flow)
    for i in range(0, len(files), 256):
        items = [(received(f.read_bytes(), f.name, at=0.0), 0, i + k) for k, f in enumerate(files[i:i + 256])]
        out = dec.decode_step(items, ref, 1, seen)
        for value in out.invoices.values():
            offset += 1
            res = liquidate_step(state, [dec.unpack_invoices(value)], offset, bene, pros, ref)
            if res.lines:
                parts.append(res.lines)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run(flow: Path) -> tuple[dict[int, float], dict[int, int], int, dict[int, list[dict[str, Any]]]]:
    """Per practitioner: best month score, its amount at stake and explanation; practitioners seen.
    The month pass of the stream (stream/fraud_month.py) on every month of the flow, as
    `fraud_store.score_month` runs it on the running sums."""
    from fseflow.stream import fraud, fraud_month

    cols = line_features(flow)
    months = np.unique(fraud.month_of(cols["care_date"]))
    start = int(cols["liq_date"].min())
    best: dict[int, float] = defaultdict(float)
    stake: dict[int, int] = defaultdict(int)
    why: dict[int, list[dict[str, Any]]] = {}
    for m in months.tolist():
        f = fraud_month.facts_from_lines(cols, m)
        s = fraud_month.score_months(f, int(fraud.month_start(np.array([m]))[0]), start)
        for i, p in enumerate(f.practitioner.tolist()):
            sc, st = float(s.score[i]), int(f.at_stake_cents[i])
            if p not in why or sc > best[p] or (sc == best[p] and st > stake[p]):
                best[p], stake[p] = sc, st
                why[p] = fraud.explain(s.top[i], s.hits[i], s.values[i])
    return best, stake, len(best), why


def evaluate(flow: Path, best: dict[int, float], stake: dict[int, int], population: int) -> dict[str, Any]:
    from fseflow.processors import fraud as fk

    ids = list(best)
    scores = np.array([best[p] for p in ids], np.float64)
    amounts = np.array([stake[p] for p in ids], np.int64)
    alerted_ix = fk.alerts(scores, amounts, population=population)
    alerted = [ids[i] for i in alerted_ix.tolist()]
    ranked = [ids[i] for i in np.lexsort((-amounts, -scores)).tolist()]
    truth = [orjson.loads(x) for x in (flow / "fraud_truth.jsonl").read_bytes().splitlines() if x.strip()]
    actors: dict[str, list[set[int]]] = defaultdict(list)
    for t in truth:  # an actor is found if its practitioner id (RPPS) or billing number is alerted
        actors[t["scheme"]].append({int(x) for x in (t.get("rpps"), t.get("ps_number")) if x and int(x)})
    fraudulent = set().union(*[a for lst in actors.values() for a in lst]) if actors else set()
    per_scheme = {}
    for scheme, lst in sorted(actors.items()):
        found = sum(1 for a in lst if a & set(alerted))
        k = len(lst)
        top_k = set(ranked[:k])
        per_scheme[scheme] = {"actors": k, "alerted": found, "recall": found / k if k else None,
                              "precision_at_k": sum(1 for a in lst if a & top_k) / k if k else None}
    tp = sum(1 for p in alerted if p in fraudulent)
    return {"practitioners": population, "alerted": len(alerted), "alerted_share": len(alerted) / max(population, 1),
            "precision": tp / len(alerted) if alerted else None,
            "recall": sum(1 for lst in actors.values() for a in lst if a & set(alerted)) / max(1, sum(map(len, actors.values()))),
            "schemes": per_scheme}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fseflow.benchmarks.fraud_eval", description=__doc__.split("\n")[0])
    p.add_argument("--invoices", type=int, default=60_000)
    p.add_argument("--days", type=int, default=21, help="working days (default 21: a month)")
    p.add_argument("--population", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=3, help="default 3: held out (weights tuned on seeds 1 and 2)")
    p.add_argument("--out", type=Path, default=Path("out/fraud-eval"))
    p.add_argument("--explain", action="store_true", help="print every actor's and the top innocents' scores")
    a = p.parse_args(argv)
    from fseflow.generator import generate
    from fseflow.generator.fraud import FRAUD_DEFAULT_RATES

    t0 = time.perf_counter()
    flow = a.out / f"flow-{a.seed}-{a.invoices}-{a.days}-{a.population}"
    if not (flow / "fraud_truth.jsonl").exists():
        generate(flow, invoices=a.invoices, seed=a.seed, days=a.days, population=a.population,
                 fraud_rates=FRAUD_DEFAULT_RATES)
    best, stake, n, why = run(flow)
    r = evaluate(flow, best, stake, n)
    if a.explain:
        _explain(flow, best, why)
    print(f"fraud detection, seed {a.seed}: {a.invoices:,} invoices over {a.days} working days, population "
          f"{a.population:,} ({time.perf_counter() - t0:.0f} s)")
    print(f"practitioners {r['practitioners']:,}, alerted {r['alerted']:,} ({r['alerted_share']:.2%}); overall "
          f"precision {_pct(r['precision'])}, recall {_pct(r['recall'])}")
    print(f"{'scheme':<22} {'actors':>6} {'alerted':>7} {'recall':>7} {'prec@k':>7}")
    for scheme, s in r["schemes"].items():
        print(f"{scheme:<22} {s['actors']:>6} {s['alerted']:>7} {_pct(s['recall']):>7} {_pct(s['precision_at_k']):>7}")
    (a.out / f"fraud-eval-{a.seed}.json").write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2))
    return 0


def _explain(flow: Path, best: dict[int, float], why: dict[int, list[dict[str, Any]]]) -> None:
    truth = [orjson.loads(x) for x in (flow / "fraud_truth.jsonl").read_bytes().splitlines() if x.strip()]
    guilty = set()
    for t in truth:
        ids = [int(x) for x in (t.get("rpps"), t.get("ps_number")) if x and int(x)]
        guilty.update(ids)
        p = next((i for i in ids if i in best), None)
        print(f"  {t['scheme']:<20} {p}: {best.get(p, 0.0):.3f} {why.get(p)}")
    print("  top innocents:")
    for p in sorted((p for p in best if p not in guilty), key=lambda p: -best[p])[:12]:
        print(f"    {p}: {best[p]:.3f} {why[p]}")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.0%}"


if __name__ == "__main__":
    sys.exit(main())
