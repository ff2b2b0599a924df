"""The beneficiary side of fraud scoring (stream/fraud.py, fraud.md §4): beneficiary-day sums,
drug dispensings and the beneficiary-day score, on hand-made line features; the grouping the
fraud step sums with."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fseflow.processors import fraud as fk
from fseflow.processors.fraud_lines import COLUMNS
from fseflow.stream import fraud

NURSE, GP, PHARMACY = 24, 1, 50
DAY = 20_500
CIP_A, CIP_B = 3400930000011, 3400930000028


def lines(*rows: dict[str, object]) -> dict[str, np.ndarray]:
    """Line features: every column 0 (act "AMI", bene 1, care date DAY) unless a row says otherwise."""
    base = {"act": b"AMI", "bene": 1, "care_date": DAY, "quantity": 1, "ps": 1, "practitioner": 1,
            "speciality": NURSE}
    return {k: np.array([r.get(k, base.get(k, 0)) for r in rows], dtype=dt) for k, dt in COLUMNS.items()}


def test_beneficiary_days_sum_lines_hits_and_identical_auxiliary_acts() -> None:
    cols = lines(*[{"at_stake_cents": 300} for _ in range(5)],             # 5 identical nurse acts
                 {"practitioner": 2, "at_stake_cents": 100, "f03": 1},     # the same act by another PS
                 {"care_date": DAY + 1, "f04": 1, "at_stake_cents": 50},
                 *[{"bene": 2, "speciality": GP, "act": b"G"} for _ in range(6)],  # a physician's: not F06
                 {"bene": -1})                                              # an unknown beneficiary: left out
    bd = fraud.bene_days(cols)
    assert bd.bene.tolist() == [1, 1, 2] and bd.day.tolist() == [DAY, DAY + 1, DAY]
    assert bd.lines.tolist() == [6, 1, 6]
    assert bd.at_stake_cents.tolist() == [1_600, 50, 0]
    assert bd.f03.tolist() == [1, 0, 0] and bd.f04.tolist() == [0, 1, 0]
    assert bd.max_identical.tolist() == [5, 1, 0]


def test_dispensings_sum_boxes_per_drug_day_and_pharmacy() -> None:
    cols = lines({"cip13": CIP_A, "quantity": 2, "ps": 7, "speciality": PHARMACY},
                 {"cip13": CIP_A, "quantity": 3, "ps": 7, "speciality": PHARMACY},
                 {"cip13": CIP_A, "quantity": 1, "ps": 8, "speciality": PHARMACY},
                 {"cip13": CIP_B, "quantity": 4, "ps": 7, "speciality": PHARMACY},
                 {"cip13": CIP_A, "quantity": 9, "ps": 7, "bene": -1},
                 {"quantity": 5})                                           # not a drug line
    dp = fraud.dispensings(cols)
    assert list(zip(dp.cip13.tolist(), dp.ps.tolist(), dp.boxes.tolist())) == [(CIP_A, 7, 5), (CIP_A, 8, 1),
                                                                              (CIP_B, 7, 4)]
    assert (dp.bene == 1).all() and (dp.day == DAY).all()


def test_beneficiary_day_score_combines_rule_hits() -> None:
    w = fk.weights()
    z = np.zeros(7, np.int64)
    f03 = z.copy(); f03[1] = 1
    f04 = z.copy(); f04[2] = 1
    ident = z.copy(); ident[3] = 5; ident[4] = 4; ident[1] = 5
    boxes = z.copy(); boxes[5] = 7; boxes[4] = 6
    pharm = z.copy(); pharm[6] = 3
    s = fraud.score_bene_days(f03, f04, ident, boxes, pharm)
    assert s.score[0] == 0.0
    assert s.score[1] == pytest.approx(1 - (1 - w.weight[fk.F03]) * (1 - w.weight[fk.F06]))
    assert s.score[2] == pytest.approx(w.weight[fk.F04]) and s.score[2] >= w.alert_threshold
    assert s.score[3] == pytest.approx(w.weight[fk.F06])
    assert s.score[4] == 0.0   # 4 identical acts, 6 boxes: at the thresholds, not past them
    assert s.score[5] == pytest.approx(w.weight[fk.F09]) == s.score[6]
    assert fk.INDICATORS[s.top[2, 0]] == "F04" and fk.INDICATORS[s.top[6, 0]] == "F09"
    assert {fk.INDICATORS[c] for c in s.top[1] if c >= 0} == {"F03", "F06"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 2), st.integers(10**12, 10**12 + 2)), max_size=40))
def test_group_is_np_unique_of_the_key_records(rows: list[tuple[int, int, int]]) -> None:
    a, b, c = (np.array([r[k] for r in rows], np.int64) for k in range(3))
    first, inv = fraud.group(a, b, c) if rows else fraud.group(a)
    if not rows:
        assert first.shape == inv.shape == (0,)
        return
    uniq, u_first, u_inv = np.unique(np.rec.fromarrays([a, b, c], names="a,b,c"), return_index=True,
                                     return_inverse=True)
    assert first.tolist() == u_first.tolist() and inv.tolist() == u_inv.ravel().tolist()


def test_act_ids_are_the_sorted_distinct_codes() -> None:
    acts = np.array([b"AMI", b"G", b"AMI", b"PH7", b"C", b"MCG"], "S5")
    codes, ids = fraud.act_ids(acts)
    assert codes.tolist() == [b"AMI", b"C", b"G", b"MCG", b"PH7"] and codes[ids].tolist() == acts.tolist()


@pytest.mark.slow
def test_drug_months_add_boxes_and_pharmacies_across_steps_in_postgresql(fresh_db: str) -> None:
    """F09 at its grain in PostgreSQL (fraud_drug_months): the boxes of one drug for one
    beneficiary add up over the month across steps, the pharmacies are a set, and the day whose
    dispensing takes the month past a threshold is kept with the month's figures."""
    from fseflow.infra import db, fraud_store

    def step(conn, k: int, *rows: dict[str, object]) -> None:
        with conn.transaction():
            fraud_store.add_step(conn, "t", {0: (k, {})}, fraud.step_sums(lines(*rows)))

    drug = {"cip13": CIP_A, "speciality": PHARMACY, "act": b"PH4"}
    with db.connect(fresh_db, autocommit=True) as conn:
        step(conn, 1, drug | {"quantity": 4, "ps": 7, "practitioner": 7})
        step(conn, 2, drug | {"quantity": 3, "ps": 8, "practitioner": 8, "care_date": DAY + 1},
             drug | {"quantity": 1, "ps": 7, "practitioner": 7, "care_date": DAY + 1, "cip13": CIP_B})
        step(conn, 3, drug | {"quantity": 1, "ps": 8, "practitioner": 8, "care_date": DAY + 2})
        months = conn.execute("SELECT cip13, boxes, pharmacies FROM fraud_drug_months WHERE bene = 1"
                              " ORDER BY cip13").fetchall()
        days = conn.execute("SELECT day - date '1970-01-01', boxes, pharmacies FROM fraud_beneficiary_days"
                            " WHERE bene = 1 ORDER BY day").fetchall()
    assert months == [(CIP_A, 8, [7, 8]), (CIP_B, 1, [7])]
    # day 1: 4 boxes, no hit, not kept; day 2: 7 boxes > 6, kept; day 3: the month's 8 boxes
    assert days == [(DAY + 1, 7, 2), (DAY + 2, 8, 2)]
