"""Every worked vector of liquidation.md §5 is reproduced to the cent, by the twin and the kernel."""
from __future__ import annotations

from pathlib import Path

import pytest

from fseflow.processors.claims import (
    M_AMO, M_BASE, M_BUDGET, M_C2S, M_DEBT, M_FR, M_NET, M_PAID, M_PATIENT, M_PF, M_RATE,
)
from fseflow.processors.reference import BUDGETS
from fseflow.tests.builders import claims, write_beneficiaries, write_professionals
from fseflow.tests.test_processors.vectors import load_vectors, professionals
from fseflow.tests.test_processors.impls import IMPLS

VECTORS = load_vectors()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("vector", VECTORS, ids=[v.row["id"] for v in VECTORS])
def test_worked_vector(vector, impl, tmp_path: Path) -> None:
    bene = write_beneficiaries(tmp_path / "b.csv", [vector.beneficiary])
    pros = write_professionals(tmp_path / "p.csv", professionals())
    ic, lc = claims([vector.invoice])
    out, _ = impl(ic, lc, bene, pros, dict(vector.state))
    row = vector.row
    assert out.inv_rejects[0] == 0 and out.inv_status[0] == 1, "the vector's invoice must be paid"
    assert (out.line_status == 1).all()
    m = out.money
    assert {int(r) for r in m[:, M_RATE]} == {int(row["rate_pct"])}
    assert int(m[:, M_BASE].sum()) == int(row["base_cents"])
    assert int(m[:, M_AMO].sum()) == int(row["amo_cents"])
    assert int(m[:, M_C2S].sum()) == int(row["c2s_cents"])
    assert int(m[:, M_PF].sum()) == int(row["pf_cents"])
    assert int(m[:, M_FR].sum()) == int(row["franchise_cents"])
    assert int(m[:, M_NET].sum()) == int(row["amo_net_cents"])
    assert int(m[:, M_PAID].sum()) == int(row["paid_now_cents"])
    assert int(m[:, M_DEBT].sum()) == int(row["debt_cents"])
    assert int(m[:, M_PATIENT].sum()) == int(row["patient_share_cents"])
    assert {BUDGETS[b] for b in m[:, M_BUDGET]} == {row["budget"]}
    assert int(lc.billed_amount.sum()) == int(row["billed_cents"])
