"""Decode throughput: MB/s on a large synthetic B2 file, and the time per small daily file.

Run with `python -m fseflow.benchmarks.decode [--invoices N] [--framing fixed|LF|CRLF]`.
The large file is one encoded lot stamped with successive lot numbers (numpy), so building
it does not dominate the run. Not a test: it prints figures, it asserts only status 'P'.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from fseflow.codecs import b2
from fseflow.codecs.b2_layouts import LAYOUTS
from fseflow.codecs.model import Invoice
from fseflow.tests.test_codecs.factory import (
    bio_detail,
    ccam_detail,
    device_line,
    fee_line,
    file_model,
    hosp_line,
    invoice_model,
    lot_model,
    pharmacy_line,
    ucd_detail,
)

WIDTH = 128


def _invoice(i: int) -> Invoice:
    """A mix of the usual invoices: consultations, nurse acts, pharmacy, biology, CCAM, optics, hospital."""
    kind = i % 8
    lines = {
        0: [fee_line("G")],
        1: [fee_line("AMI", coefficient=200, unit_price=315, rate=60), fee_line("AMI", unit_price=315, rate=60)],
        2: [pharmacy_line("PH4"), pharmacy_line("PH7", boxes=1, price=1290), pharmacy_line("PH2", boxes=3)],
        3: [fee_line("B", coefficient=1700, unit_price=27, rate=60, details=[bio_detail(blocks=((1, 1104), (1, 1207)))])],
        4: [fee_line("ADC", unit_price=12540, details=[ccam_detail()]), fee_line("G")],
        5: [device_line()],
        6: [hosp_line(details=[ucd_detail(2000)])],
        7: [fee_line("G"), fee_line("MM", unit_price=4000)],
    }[kind]
    return invoice_model(lines, number=100000 + i)


def synthetic_file(n_invoices: int, per_lot: int = 125, framing: str = "fixed") -> bytes:
    """A valid B2 file of about `n_invoices` invoices in lots of `per_lot` (at most 999 lots)."""
    n_lots = max(1, min(999, -(-n_invoices // per_lot)))
    one = b2.encode(file_model([lot_model([_invoice(i) for i in range(per_lot)])]))
    recs = np.frombuffer(one, np.uint8).reshape(-1, WIDTH)
    head, lot, _end = recs[:1], recs[1:-1], recs[-1:]
    lots = np.tile(lot, (n_lots, 1))
    numbers = np.repeat(np.arange(1, n_lots + 1), len(lot))
    lf = LAYOUTS["1"]["lot_number"]
    for j, div in enumerate((100, 10, 1)):  # lot number digits at bytes 4-6 of every record
        lots[:, lf.start - 1 + j] = 48 + numbers // div % 10
    lot_end = b2.parse(one, "one").lots[0].end
    tail = LAYOUTS["999"].encode({
        "record_type": "999", "emitter_ps_number": 830004123, "lot_count": n_lots,
        "record_count": 2 + len(lots), "total_billed": lot_end["total_billed"] * n_lots,
        "total_amo_claimed": lot_end["total_amo_claimed"] * n_lots,
    })
    allrecs = np.concatenate([head, lots, np.frombuffer(tail, np.uint8).reshape(1, WIDTH)])
    if framing == "fixed":
        return allrecs.tobytes()
    term = np.frombuffer(b"\n" if framing == "LF" else b"\r\n", np.uint8)
    return np.hstack([allrecs, np.tile(term, (len(allrecs), 1))]).tobytes()


def _best(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best wall time and best CPU time of `repeat` runs (CPU time is the steadier figure when
    other jobs share the machine)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--invoices", type=int, default=100_000)
    ap.add_argument("--framing", default="fixed", choices=("fixed", "LF", "CRLF"))
    ap.add_argument("--small-files", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=7, help="runs of the large decode; the best is shown")
    args = ap.parse_args()

    big = synthetic_file(args.invoices, framing=args.framing)
    d = b2.decode(big, "big.b2")  # JIT warm-up (or cache load)
    assert d.status == "P", d.reasons[:3]
    wall, cpu = _best(lambda: b2.decode(big, "big.b2"), args.repeat)
    mb = len(big) / 1e6
    print(f"large file: {mb:.1f} MB, {len(d.invoices['lot_idx'])} invoices, {len(d.lines['invoice_idx'])} lines, "
          f"{len(d.lots)} lots, framing {args.framing}")
    print(f"  decode: {wall * 1e3:.1f} ms wall -> {mb / wall:.0f} MB/s; {cpu * 1e3:.1f} ms CPU -> {mb / cpu:.0f} MB/s")

    small = b2.encode(file_model([lot_model([_invoice(0), _invoice(1), _invoice(7)])]), framing="LF")
    assert b2.decode(small, "small.b2").status == "P"
    n = args.small_files
    wall, cpu = _best(lambda: [b2.decode(small, "small.b2") for _ in range(n)], 3)
    print(f"small file: {len(small)} bytes, 3 invoices: {wall / n * 1e6:.0f} us wall, {cpu / n * 1e6:.0f} us CPU per file")


if __name__ == "__main__":
    main()
