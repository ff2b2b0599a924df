"""Benchmark: control + liquidation kernels (numba) against their pure-Python twin.

    python -m fseflow.benchmarks.kernels [--invoices 200000] [--flow DIR] [--twin-invoices 5000]

Generates a flow (or reads `--flow`, a `fseflow generate` folder), decodes every file, joins
the claims into one batch and times `engine.run_kernel` on it (lines/s on one core), then the
twin on the first invoices of the same batch. Prints the figures and the ratio; not a test.
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from fseflow.codecs import b2
from fseflow.processors import _hashtable as ht
from fseflow.processors.claims import InvoiceCols, LineCols, concat, prepare
from fseflow.processors.directory import load_beneficiaries, load_professionals
from fseflow.processors.engine import run_kernel
from fseflow.processors.reference import compile_reference
from fseflow.processors.twin import Twin


def load_flow(folder: Path) -> tuple[InvoiceCols, LineCols]:
    ref = compile_reference()
    parts = []
    for row in csv.DictReader(open(folder / "manifest.csv", encoding="utf-8")):
        data = (folder / "b2" / row["file"]).read_bytes()
        d = b2.decode(data, row["file"])
        if d.invoices["lot_idx"].shape[0]:
            parts.append(prepare(d.invoices, d.lines, d.lots, d.file.creation_date, ref))
    return concat(parts)


def head(ic: InvoiceCols, lc: LineCols, n: int) -> tuple[InvoiceCols, LineCols]:
    n_lines = int(ic.line_start[n - 1] + ic.line_count[n - 1])
    return InvoiceCols(*[c[:n] for c in ic]), LineCols(*[c[:n_lines] for c in lc])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--invoices", type=int, default=200_000)
    p.add_argument("--population", type=int, default=200_000)
    p.add_argument("--flow", type=Path, default=None)
    p.add_argument("--twin-invoices", type=int, default=5_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    folder = a.flow
    if folder is None:
        from fseflow.generator import generate

        folder = Path(tempfile.mkdtemp(prefix="fseflow-bench-"))
        generate(folder, invoices=a.invoices, seed=7, start_date=None, days=max(1, a.invoices // 56_000),
                 population=a.population)
    bene = load_beneficiaries(folder / "beneficiaries.csv")
    pros = load_professionals(folder / "professionals.csv")
    ic, lc = load_flow(folder)
    n_inv, n_lines = ic.ps.shape[0], lc.rec_type.shape[0]
    ref = compile_reference()
    run_kernel(*head(ic, lc, 10), bene, pros, ht.new_table())  # compile / load the cache
    best = float("inf")
    for _ in range(a.repeat):
        state = ht.new_table(1 << 16)
        t0 = time.perf_counter()
        out, state = run_kernel(ic, lc, bene, pros, state, ref.arrays)
        best = min(best, time.perf_counter() - t0)
    k = min(a.twin_invoices, n_inv)
    tic, tlc = head(ic, lc, k)
    twin = Twin(ref.acts, ref.natures, bene, pros)
    t0 = time.perf_counter()
    twin.run(tic, tlc, {})
    twin_s = time.perf_counter() - t0
    kernel_rate = n_lines / best
    twin_rate = tlc.rec_type.shape[0] / twin_s
    paid = int(out.inv_status.sum())
    print(f"flow: {n_inv:,} invoices, {n_lines:,} lines ({paid / n_inv:.1%} paid), from {folder}")
    print(f"numba kernels : {kernel_rate / 1e6:8.2f} M lines/s  ({n_inv / best / 1e6:.2f} M invoices/s, best of {a.repeat}, 1 core)")
    print(f"python twin   : {twin_rate / 1e3:8.2f} k lines/s  (on the first {k:,} invoices)")
    print(f"ratio         : {kernel_rate / twin_rate:8.0f} x")
    print(f"state entries : {int(np.asarray(state.used)[0]):,} in a table of {state.slots.shape[0]:,} slots")


if __name__ == "__main__":
    main()
