"""The fault rig's CI part: a small flow through `fseflow serve` (its own embedded broker and
PostgreSQL, its own processes), a fault injected by pid mid-flow, and the result checked against
the offline engine to the cent (benchmarks/faults.py). The full matrix is
`python -m fseflow.benchmarks.faults`."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from fseflow.benchmarks import faults

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, argparse.Namespace]:
    out = tmp_path_factory.mktemp("faults")
    o = faults.parser().parse_args(["--invoices", "2000", "--population", "20000", "--seed", "3",
                                    "--timeout", "240", "--out", str(out)])
    faults.prepare(out / "flow", o)
    assert o.expected > 1_500
    return out, o


@pytest.mark.parametrize("fault", ["kill-broker", "kill-postgres", "kill-serve", "sigterm"])
def test_a_fault_mid_flow_loses_and_doubles_nothing(rig: tuple[Path, argparse.Namespace], fault: str) -> None:
    out, o = rig
    r = faults.run_fault(fault, out / "flow", out / fault, o)
    detail = f"{r}\nlogs in {out / fault}"
    assert r.error is None, detail
    assert (r.invoices, r.written) == (o.expected, o.expected), detail
    assert r.lost == r.doubled == r.differ == r.refusals_lost == 0, detail
    assert r.ledger_exact and r.reconciled, detail
    assert r.exit_s is not None and r.exit_s <= faults.EXIT_WITHIN, detail
    assert r.leftovers == 0, detail
    assert r.personal_data == 0, detail
    assert r.exact


def test_the_personal_data_scan_finds_what_it_looks_for(rig: tuple[Path, argparse.Namespace], tmp_path: Path) -> None:
    """The scan the rig runs on its logs: a NIR, an IBAN and a PS name of the directory are found
    (and named by kind and line only); timestamps and offsets of 13 digits are not."""
    out, _ = rig
    flow = out / "flow"
    bene = (flow / "beneficiaries.csv").read_text().splitlines()[1].split(",")
    pros = (flow / "professionals.csv").read_text().splitlines()[1].split(",")
    log = tmp_path / "a.log"
    log.write_text(f"ok 1796677092775 offset 0\nbad {bene[0]}\niban {pros[6]}\nname {pros[7]}\n")
    hits = faults.personal_data_in([log], flow)
    assert [(line, kind) for _, line, kind in hits] == [(2, "NIR"), (3, "IBAN"), (4, "name")]
