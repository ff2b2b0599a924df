"""The `fseflow` command: generate, liquidate, demo.

Errors the user can act on (unreadable input) print one line naming the file, record and
field, and exit 2; they never print a personal value.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import orjson

from fseflow.days import to_days
from fseflow.exceptions import FseflowError, InputError

EXIT_INPUT = 2


def _date(s: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {s!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fseflow", description="Claims processor of the military health-insurance fund (régime 08).")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a synthetic flow: B2 files, beneficiaries, professionals, truth")
    g.add_argument("--invoices", type=int, required=True, help="invoices to generate")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--out", type=Path, required=True, help="output folder")
    g.add_argument("--start-date", type=_date, default=None, help="first reception day (default: a recent Monday)")
    g.add_argument("--days", type=int, default=1, help="working days of flow")
    g.add_argument("--population", type=int, default=None, help="protected persons (default: full scale, 782,783)")

    lq = sub.add_parser("liquidate", help="decode, control and liquidate B2 files; write one décompte per invoice")
    lq.add_argument("files", nargs="+", type=Path, metavar="FILE.b2")
    lq.add_argument("--beneficiaries", type=Path, required=True)
    lq.add_argument("--professionals", type=Path, required=True)
    lq.add_argument("--out", type=Path, required=True, help="décomptes, JSON lines")
    lq.add_argument("--as-of", type=_date, default=None,
                    help="reception and liquidation date (default: each file's creation date)")
    lq.add_argument("--quiet", action="store_true", help="no progress bar")

    d = sub.add_parser("demo", help="one realistic working day of flow, generated and liquidated end to end")
    d.add_argument("--invoices", type=int, default=56_000, help="invoices (default: one working day, ~56,000)")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--population", type=int, default=None)
    d.add_argument("--out", type=Path, default=None, help="keep the flow and décomptes here (default: a temp folder)")
    return p


def cmd_generate(a: argparse.Namespace) -> int:
    from fseflow.generator import generate

    t0 = time.perf_counter()
    summary = generate(a.out, invoices=a.invoices, seed=a.seed, start_date=a.start_date, days=a.days,
                       population=a.population)
    print(f"generated {summary.get('invoices', a.invoices):,} invoices in {summary.get('files', '?'):,} files "
          f"into {a.out} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


def _liquidate(files: list[Path], bene: Path, pros: Path, out: Path, as_of: dt.date | None, progress: bool,
               on_record=None):
    from fseflow.offline import Engine, liquidate_paths
    from fseflow.processors.directory import load_beneficiaries, load_professionals
    from fseflow.report import Progress

    t0 = time.perf_counter()
    engine = Engine(load_beneficiaries(bene), load_professionals(pros))
    load_s = time.perf_counter() - t0
    with Progress(len(files), enabled=progress) as bar, open(out, "wb") as fh:
        for rec in liquidate_paths(engine, files, None if as_of is None else to_days(as_of), on_file=bar.advance):
            fh.write(orjson.dumps(rec))
            fh.write(b"\n")
            if on_record is not None:
                on_record(rec)
    engine.summary.seconds["load"] = load_s
    engine.summary.seconds["total"] = time.perf_counter() - t0
    return engine.summary


def cmd_liquidate(a: argparse.Namespace) -> int:
    from fseflow.report import print_summary

    summary = _liquidate(list(a.files), a.beneficiaries, a.professionals, a.out, a.as_of, progress=not a.quiet)
    print_summary(summary, out=a.out)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from fseflow.generator import generate
    from fseflow.report import console, print_summary, print_truth
    from fseflow.truth import TruthChecker

    folder = a.out or Path(tempfile.mkdtemp(prefix="fseflow-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    console().print(f"[bold]fseflow demo[/]: one working day, {a.invoices:,} invoices, in {folder}")
    t0 = time.perf_counter()
    flow = folder / "flow"
    generate(flow, invoices=a.invoices, seed=a.seed, start_date=None, days=1, population=a.population)
    console().print(f"generated the flow in {time.perf_counter() - t0:.1f} s")
    files = manifest_files(flow)
    checker = TruthChecker(flow / "truth.jsonl")
    summary = _liquidate(files, flow / "beneficiaries.csv", flow / "professionals.csv", folder / "decomptes.jsonl",
                         None, progress=True, on_record=checker.add)
    print_summary(summary, out=folder / "decomptes.jsonl")
    print_truth(checker.score())
    return 0


def manifest_files(flow: Path) -> list[Path]:
    """The generated files in arrival order (manifest.csv)."""
    import csv

    with open(flow / "manifest.csv", encoding="utf-8", newline="") as fh:
        return [flow / "b2" / row["file"] for row in csv.DictReader(fh)]


def main(argv: Sequence[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        return {"generate": cmd_generate, "liquidate": cmd_liquidate, "demo": cmd_demo}[a.command](a)
    except InputError as e:
        print(f"fseflow: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except FseflowError as e:
        print(f"fseflow: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
