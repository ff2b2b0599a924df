"""The fraud side stream's state in PostgreSQL: practitioner-day and beneficiary-day sums,
offsets, alerts.

`add_step` runs in one transaction with the offsets it consumed: rows whose upstream record is
at or below the stored watermark are dropped first, so a replayed `fse.lines` record, or the
same lines sent again by a restarted liquidate agent, adds nothing. The sums are additive; the
scores are recomputed from the new totals.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import orjson
import psycopg

from fseflow.days import from_days, to_days
from fseflow.infra.pgcopy import copy_into
from fseflow.processors import fraud as fk
from fseflow.stream import fraud, fraud_month
from fseflow.stream.fraud_month import MonthFacts

_CREATE = ("CREATE TEMP TABLE IF NOT EXISTS stage_fraud_days (practitioner bigint, day date, ps bigint,"
           " speciality smallint, minutes_hundredths bigint, lines bigint, amo_cents bigint, at_stake_cents bigint,"
           " majorations bigint, f03 bigint, f04 bigint, billed_cents bigint, base_cents bigint, tp_lines bigint,"
           " coef_sum bigint, coef_lines bigint, invoices bigint, max_identical bigint) ON COMMIT DELETE ROWS;"
           "CREATE TEMP TABLE IF NOT EXISTS stage_fraud_links (practitioner bigint, month date, bene bigint,"
           " lines bigint, invoices bigint, days integer) ON COMMIT DELETE ROWS;"
           "CREATE TEMP TABLE IF NOT EXISTS stage_fraud_prescriptions (ps bigint, prescriber bigint, month date,"
           " invoices bigint, billed_cents bigint) ON COMMIT DELETE ROWS;"
           "CREATE TEMP TABLE IF NOT EXISTS stage_fraud_scores (practitioner bigint, day date, score float8,"
           " top jsonb) ON COMMIT DELETE ROWS;"
           "CREATE TEMP TABLE IF NOT EXISTS stage_fraud_bene_days (bene bigint, day date, lines bigint,"
           " at_stake_cents bigint, f03 bigint, f04 bigint, max_identical bigint, boxes bigint, pharmacies bigint,"
           " hit smallint) ON COMMIT DELETE ROWS;"
           "CREATE TEMP TABLE IF NOT EXISTS stage_fraud_dispensings (bene bigint, cip13 bigint, day date, ps bigint,"
           " boxes bigint) ON COMMIT DELETE ROWS;"
           "CREATE TEMP TABLE IF NOT EXISTS stage_fraud_bene_scores (bene bigint, day date, score float8,"
           " top jsonb) ON COMMIT DELETE ROWS")
_ADD = """
INSERT INTO fraud_practitioner_days AS t (practitioner, day, ps, speciality, minutes_hundredths, lines, amo_cents,
       at_stake_cents, majorations, f03, f04, billed_cents, base_cents, tp_lines, coef_sum, coef_lines, invoices,
       max_identical)
SELECT * FROM stage_fraud_days ORDER BY practitioner, day
ON CONFLICT (practitioner, day) DO UPDATE SET
    ps = least(t.ps, EXCLUDED.ps), speciality = least(t.speciality, EXCLUDED.speciality),
    minutes_hundredths = t.minutes_hundredths + EXCLUDED.minutes_hundredths, lines = t.lines + EXCLUDED.lines,
    amo_cents = t.amo_cents + EXCLUDED.amo_cents, at_stake_cents = t.at_stake_cents + EXCLUDED.at_stake_cents,
    majorations = t.majorations + EXCLUDED.majorations, f03 = t.f03 + EXCLUDED.f03, f04 = t.f04 + EXCLUDED.f04,
    billed_cents = t.billed_cents + EXCLUDED.billed_cents, base_cents = t.base_cents + EXCLUDED.base_cents,
    tp_lines = t.tp_lines + EXCLUDED.tp_lines, coef_sum = t.coef_sum + EXCLUDED.coef_sum,
    coef_lines = t.coef_lines + EXCLUDED.coef_lines, invoices = t.invoices + EXCLUDED.invoices,
    max_identical = greatest(t.max_identical, EXCLUDED.max_identical), updated_at = clock_timestamp()
RETURNING practitioner, day, ps, speciality, minutes_hundredths, f03, f04, max_identical, at_stake_cents, score
"""
_LINKS = """
INSERT INTO fraud_links AS t SELECT practitioner, month, bene, lines, invoices, days FROM stage_fraud_links
 ORDER BY practitioner, month, bene
ON CONFLICT (practitioner, month, bene) DO UPDATE SET lines = t.lines + EXCLUDED.lines,
    invoices = t.invoices + EXCLUDED.invoices, days = t.days | EXCLUDED.days
"""
_PRESCRIPTIONS = """
INSERT INTO fraud_prescriptions AS t SELECT ps, prescriber, month, invoices, billed_cents FROM stage_fraud_prescriptions
 ORDER BY ps, month, prescriber
ON CONFLICT (ps, month, prescriber) DO UPDATE SET invoices = t.invoices + EXCLUDED.invoices,
    billed_cents = t.billed_cents + EXCLUDED.billed_cents
"""
# month-to-date lines and majorations of each touched practitioner (F05's share rule)
_MONTH = """
SELECT s.practitioner, s.day, sum(t.lines), sum(t.majorations)
  FROM stage_fraud_days s JOIN fraud_practitioner_days t
    ON t.practitioner = s.practitioner AND t.day >= date_trunc('month', s.day)::date AND t.day <= s.day
 GROUP BY 1, 2
"""

# every statement takes its row locks in key order: several workers add to one practitioner's
# rows (fse.lines is partitioned like the beneficiaries), and no two deadlock. Only the
# days with a hit are kept (most of a flow's beneficiary-days score 0): a day is stored from
# the batch of its first hit (`hit`, from stream.fraud.score_bene_days) on, and every later
# line of that day adds to it.
_BENE_ADD = """
INSERT INTO fraud_beneficiary_days AS t (bene, day, lines, at_stake_cents, f03, f04, max_identical, boxes, pharmacies)
SELECT bene, day, lines, at_stake_cents, f03, f04, max_identical, boxes, pharmacies FROM stage_fraud_bene_days s
 WHERE s.hit = 1 OR EXISTS (SELECT 1 FROM fraud_beneficiary_days x WHERE x.bene = s.bene AND x.day = s.day)
 ORDER BY bene, day
ON CONFLICT (bene, day) DO UPDATE SET lines = t.lines + EXCLUDED.lines,
    at_stake_cents = t.at_stake_cents + EXCLUDED.at_stake_cents, f03 = t.f03 + EXCLUDED.f03,
    f04 = t.f04 + EXCLUDED.f04, max_identical = greatest(t.max_identical, EXCLUDED.max_identical),
    boxes = greatest(t.boxes, EXCLUDED.boxes), pharmacies = greatest(t.pharmacies, EXCLUDED.pharmacies),
    updated_at = clock_timestamp()
RETURNING bene, day, at_stake_cents, f03, f04, max_identical, boxes, pharmacies, score
"""
# the month's drug rows merged, and F09 of each beneficiary-day the step dispensed drugs on from
# the rows the upsert returns: for each of its drugs, the boxes and pharmacies of the care month
# so far (fraud.md: beneficiary × CIP13 × month); the worst drug counts
# (the inner GROUP BY makes each pharmacy distinct, and its sorted output lets the planner
# aggregate `ORDER BY ps` without a sort per group, unlike `DISTINCT ps ORDER BY ps` on the raw rows)
_DISPENSE_F09 = """
WITH merged AS (
INSERT INTO fraud_drug_months AS t (bene, cip13, month, boxes, pharmacies)
SELECT bene, cip13, month, sum(boxes), array_agg(ps ORDER BY ps)
  FROM (SELECT bene, cip13, date_trunc('month', day)::date AS month, ps, sum(boxes) AS boxes
          FROM stage_fraud_dispensings GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4) d
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (bene, cip13, month) DO UPDATE SET boxes = t.boxes + EXCLUDED.boxes,
    pharmacies = ARRAY(SELECT DISTINCT x FROM unnest(t.pharmacies || EXCLUDED.pharmacies) x ORDER BY x),
    updated_at = clock_timestamp()
RETURNING t.bene, t.cip13, t.month, t.boxes, cardinality(t.pharmacies) AS pharmacies)
SELECT s.bene, s.day, max(m.boxes), max(m.pharmacies)
  FROM (SELECT DISTINCT bene, cip13, day FROM stage_fraud_dispensings) s
  JOIN merged m ON m.bene = s.bene AND m.cip13 = s.cip13 AND m.month = date_trunc('month', s.day)::date
 GROUP BY 1, 2
"""
#: more days than any day number spans: (bene, day) as one sortable int64 key
_DAY_SPAN = 1 << 20


def fresh(cols: dict[str, np.ndarray], liq_partition: int, marks: dict[str, int]) -> np.ndarray:
    """Mask of the lines not yet counted: their upstream record is past the watermark of
    (liquidate partition, lots partition). Updates `marks` with the new watermarks."""
    keep = np.ones(cols["src_offset"].shape[0], bool)
    for q in np.unique(cols["src_partition"]).tolist():
        key = f"{liq_partition}:{q}"
        rows = cols["src_partition"] == q
        keep[rows] = cols["src_offset"][rows] > marks.get(key, -1)
        if rows.any():
            marks[key] = max(marks.get(key, -1), int(cols["src_offset"][rows].max()))
    return keep


def read_offsets(conn: psycopg.Connection[Any], app_id: str, partition: int) -> tuple[int, dict[str, int]]:
    row = conn.execute("SELECT next_offset, watermarks FROM fraud_offsets WHERE app_id = %s AND partition = %s"
                       " FOR UPDATE", (app_id, partition)).fetchone()
    return (int(row[0]), dict(row[1])) if row else (0, {})


def add_step(conn: psycopg.Connection[Any], app_id: str, offsets: dict[int, tuple[int, dict[str, int]]],
             sums: fraud.StepSums) -> list[dict[str, Any]]:
    """Add a step's sums, rescore its practitioner-days and beneficiary-days, store the offsets
    (partition → next offset, watermarks); returns the new day alerts. The caller holds the
    transaction."""
    alerts: list[dict[str, Any]] = []
    days = sums.days
    if days.practitioner.shape[0]:
        conn.execute(_CREATE)
        cur = conn.cursor()
        copy_into(cur, "stage_fraud_days", [("bigint", days.practitioner), ("date", days.day), ("bigint", days.ps),
                                            ("smallint", days.speciality), *(("bigint", c) for c in days.sums.T),
                                            ("bigint", days.max_identical)])
        lk, pr = sums.links, sums.prescriptions
        copy_into(cur, "stage_fraud_links", [("bigint", lk.practitioner), ("date", fraud.month_start(lk.month)),
                                             ("bigint", lk.bene), ("bigint", lk.lines), ("bigint", lk.invoices),
                                             ("integer", lk.days)])
        copy_into(cur, "stage_fraud_prescriptions", [("bigint", pr.ps), ("bigint", pr.prescriber),
                                                     ("date", fraud.month_start(pr.month)), ("bigint", pr.invoices),
                                                     ("bigint", pr.billed_cents)])
        ps, first = sums.billers
        conn.execute("INSERT INTO fraud_billers AS t (ps, first_billed) SELECT * FROM unnest(%s::bigint[], %s::date[])"
                     " ON CONFLICT (ps) DO UPDATE SET first_billed = least(t.first_billed, EXCLUDED.first_billed)"
                     " WHERE EXCLUDED.first_billed < t.first_billed", (ps.tolist(), [from_days(d) for d in first.tolist()]))
        conn.execute(_LINKS)
        conn.execute(_PRESCRIPTIONS)
        totals = conn.execute(_ADD).fetchall()
        month = {(p, d): (int(n), int(m)) for p, d, n, m in conn.execute(_MONTH)}
        alerts = _rescore(conn, totals, month)
        alerts += _add_beneficiaries(conn, sums.bene_days, sums.dispensings)
    parts = sorted(offsets)
    conn.execute("INSERT INTO fraud_offsets (app_id, partition, next_offset, watermarks)"
                 " SELECT %s, * FROM unnest(%s::int[], %s::bigint[], %s::jsonb[])"
                 " ON CONFLICT (app_id, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,"
                 " watermarks = EXCLUDED.watermarks",
                 (app_id, parts, [offsets[q][0] for q in parts], [orjson.dumps(offsets[q][1]).decode() for q in parts]))
    return alerts


def _rescore(conn: psycopg.Connection[Any], totals: list[tuple[Any, ...]],
             month: dict[tuple[int, dt.date], tuple[int, int]]) -> list[dict[str, Any]]:
    col = lambda k: np.array([r[k] for r in totals], np.int64)
    lines = np.array([month.get((r[0], r[1]), (0, 0))[0] for r in totals], np.int64)
    majs = np.array([month.get((r[0], r[1]), (0, 0))[1] for r in totals], np.int64)
    s = fraud.score_days(col(4), col(5), col(6), col(7), lines, majs, col(3))
    old = np.array([r[9] for r in totals], np.float64)
    threshold = fk.weights().alert_threshold
    alerts = []
    with conn.cursor().copy("COPY stage_fraud_scores FROM STDIN") as copy:
        # only the days whose score moved are written (most stay at 0), and the alerted ones (their
        # amount at stake grows)
        for i in np.flatnonzero((s.score != old) | (s.score >= threshold)).tolist():
            r = totals[i]
            values = {"F01_impossible": r[4] / 100, "F01_red": r[4] / 100, "F01_amber": r[4] / 100, "F03": int(r[5]),
                      "F04": int(r[6]), "F06": int(r[7]),
                      "F05": round(int(majs[i]) / int(lines[i]), 3) if lines[i] else 0.0}
            top = fraud.explain(s.top[i], s.hits[i], values)
            copy.write_row((r[0], r[1], float(s.score[i]), orjson.dumps(top).decode()))
            if s.score[i] >= threshold:
                alerts.append({"practitioner": int(r[0]), "day": r[1].isoformat(), "ps": int(r[2]),
                               "speciality": int(r[3]), "score": round(float(s.score[i]), 4),
                               "at_stake_cents": int(r[8]), "explanation": top})
    conn.execute("UPDATE fraud_practitioner_days t SET score = s.score, top = s.top FROM stage_fraud_scores s"
                 " WHERE t.practitioner = s.practitioner AND t.day = s.day")
    alerts.sort(key=lambda a: (a["practitioner"], a["day"]))   # row locks in key order, as every statement here
    for a in alerts:
        conn.execute("INSERT INTO fraud_alerts (practitioner, day, ps, speciality, score, at_stake_cents, explanation)"
                     " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (practitioner, day) DO UPDATE SET"
                     " score = EXCLUDED.score, at_stake_cents = EXCLUDED.at_stake_cents,"
                     " explanation = EXCLUDED.explanation",
                     (a["practitioner"], a["day"], a["ps"], a["speciality"], a["score"], a["at_stake_cents"],
                      orjson.dumps(a["explanation"]).decode()))
    return alerts


def _add_beneficiaries(conn: psycopg.Connection[Any], bd: fraud.BeneDays,
                       dp: fraud.Dispensings) -> list[dict[str, Any]]:
    """Add a step's beneficiary-days and dispensings, rescore the beneficiary-days it touched;
    returns their new alerts."""
    if not bd.bene.shape[0]:
        return []
    cur = conn.cursor()
    boxes, pharmacies = np.zeros((2, bd.bene.shape[0]), np.int64)
    if dp.bene.shape[0]:
        copy_into(cur, "stage_fraud_dispensings", [("bigint", dp.bene), ("bigint", dp.cip13), ("date", dp.day),
                                                   ("bigint", dp.ps), ("bigint", dp.boxes)])
        f09 = np.array([(b, to_days(d), x, p) for b, d, x, p in conn.execute(_DISPENSE_F09)], np.int64).reshape(-1, 4)
        # bd is in (bene, day) order and holds every dispensed beneficiary-day
        at = np.searchsorted(bd.bene * _DAY_SPAN + bd.day, f09[:, 0] * _DAY_SPAN + f09[:, 1])
        boxes[at], pharmacies[at] = f09[:, 2], f09[:, 3]
    # a day is kept from its first hit on: the hits of this batch alone, as the score counts them
    hit = fraud.score_bene_days(bd.f03, bd.f04, bd.max_identical, boxes, pharmacies).hits.any(axis=1)
    copy_into(cur, "stage_fraud_bene_days", [("bigint", bd.bene), ("date", bd.day), ("bigint", bd.lines),
                                             ("bigint", bd.at_stake_cents), ("bigint", bd.f03), ("bigint", bd.f04),
                                             ("bigint", bd.max_identical), ("bigint", boxes), ("bigint", pharmacies),
                                             ("smallint", hit.astype(np.int16))])
    w = fk.weights()
    totals = conn.execute(_BENE_ADD).fetchall()
    if not totals:
        return []
    totals.sort()
    col = lambda k: np.array([r[k] for r in totals], np.int64)
    boxes, pharmacies = col(6), col(7)
    s = fraud.score_bene_days(col(3), col(4), col(5), boxes, pharmacies)
    old = np.array([r[8] for r in totals], np.float64)
    alerts = []
    with cur.copy("COPY stage_fraud_bene_scores FROM STDIN") as copy:
        for i in np.flatnonzero((s.score != old) | (s.score >= w.alert_threshold)).tolist():
            r = totals[i]
            top = fraud.explain(s.top[i], s.hits[i], {"F03": int(r[3]), "F04": int(r[4]), "F06": int(r[5]),
                                                      "F09": {"boxes": int(boxes[i]), "pharmacies": int(pharmacies[i])}})
            copy.write_row((r[0], r[1], float(s.score[i]), orjson.dumps(top).decode()))
            if s.score[i] >= w.alert_threshold:
                alerts.append({"grain": "beneficiary-day", "bene": int(r[0]), "day": r[1].isoformat(),
                               "score": round(float(s.score[i]), 4), "at_stake_cents": int(r[2]), "explanation": top})
    conn.execute("UPDATE fraud_beneficiary_days t SET score = s.score, top = s.top FROM stage_fraud_bene_scores s"
                 " WHERE t.bene = s.bene AND t.day = s.day")
    for a in alerts:
        conn.execute("INSERT INTO fraud_beneficiary_alerts (bene, day, score, at_stake_cents, explanation)"
                     " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (bene, day) DO UPDATE SET score = EXCLUDED.score,"
                     " at_stake_cents = EXCLUDED.at_stake_cents, explanation = EXCLUDED.explanation",
                     (a["bene"], a["day"], a["score"], a["at_stake_cents"], orjson.dumps(a["explanation"]).decode()))
    return alerts


def top_beneficiaries(conn: psycopg.Connection[Any], day: dt.date | None = None, n: int = 20) -> list[dict[str, Any]]:
    """The highest-scored beneficiary-days (of `day`, else all), ties by amount at stake, with at
    most `alert_max_share` of the beneficiaries seen (of `day`'s month, else all) alerted."""
    where, args = ("WHERE day = %s", (day,)) if day else ("", ())
    rows = conn.execute(f"SELECT bene, day, score, at_stake_cents, explanation FROM fraud_beneficiary_alerts {where}"
                        f" ORDER BY score DESC, at_stake_cents DESC, bene, day", args).fetchall()
    if not rows:
        return []
    # the beneficiaries seen (only days with a hit are kept): those with care in the period's months
    period = ("WHERE month = date_trunc('month', %s::date)::date", (day,)) if day else ("", ())
    seen = conn.execute(f"SELECT count(DISTINCT bene) FROM fraud_links {period[0]}", period[1]).fetchone()[0]
    keep = fk.alerts(np.array([r[2] for r in rows], np.float64), np.array([r[3] for r in rows], np.int64),
                     population=max(int(seen), 1))
    return [{"bene": rows[i][0], "day": rows[i][1], "score": rows[i][2], "at_stake_cents": int(rows[i][3]),
             "explanation": rows[i][4]} for i in keep.tolist()[:n]]


def top_alerts(conn: psycopg.Connection[Any], day: dt.date | None = None, n: int = 20) -> list[dict[str, Any]]:
    """The highest-scored practitioner-days (of `day`, else all), ties by amount at stake, with
    at most `alert_max_share` of the practitioners seen alerted (fraud.md §4)."""
    where, args = ("WHERE day = %s", (day,)) if day else ("", ())
    rows = conn.execute(f"SELECT practitioner, day, ps, speciality, score, at_stake_cents, explanation FROM fraud_alerts"
                        f" {where} ORDER BY score DESC, at_stake_cents DESC, practitioner, day", args).fetchall()
    seen = conn.execute(f"SELECT count(DISTINCT practitioner) FROM fraud_practitioner_days {where}", args).fetchone()[0]
    if not rows:
        return []
    keep = fk.alerts(np.array([r[4] for r in rows], np.float64), np.array([r[5] for r in rows], np.int64),
                     population=max(int(seen), 1))
    out = []
    for i in keep.tolist()[:n]:
        p, d, ps, spec, score, stake, expl = rows[i]
        out.append({"practitioner": p, "day": d, "ps": ps, "speciality": spec, "score": score,
                    "at_stake_cents": int(stake), "explanation": expl})
    return out


# -- the month pass (stream/fraud_month.py) ---------------------------------------------------------
_MONTH_DAYS = """
SELECT practitioner, (array_agg(ps ORDER BY day))[1], (array_agg(speciality ORDER BY day))[1], count(*),
       sum(lines), sum(invoices), sum(amo_cents), sum(at_stake_cents), sum(billed_cents), sum(base_cents),
       sum(tp_lines), sum(majorations), sum(coef_sum), sum(coef_lines), sum(f03), sum(f04),
       max(minutes_hundredths), max(max_identical)
  FROM fraud_practitioner_days WHERE day >= %(m)s AND day < %(m)s + interval '1 month'
 GROUP BY practitioner ORDER BY practitioner
"""
_MONTH_LINKS = """
SELECT l.practitioner, count(*), sum(bit_count(l.days::bit(32))), sum(l.invoices),
       count(*) FILTER (WHERE NOT EXISTS (
           SELECT 1 FROM fraud_links o WHERE o.bene = l.bene AND o.practitioner <> l.practitioner
              AND o.month > %(m)s - make_interval(months => %(back)s) AND o.month <= %(m)s))
  FROM fraud_links l WHERE l.month = %(m)s GROUP BY 1
"""
_MONTH_BILLERS = """
SELECT ps, (SELECT first_billed FROM fraud_billers b WHERE b.ps = d.ps), coalesce(sum(billed_cents) FILTER (WHERE day >= %(m)s AND day < %(m)s + interval '1 month'), 0),
       coalesce(sum(billed_cents) FILTER (WHERE day >= %(m)s - interval '3 months'
                                           AND day < %(m)s - interval '2 months'), 0)
  FROM fraud_practitioner_days d WHERE ps = ANY(%(ps)s) GROUP BY ps
"""


def month_facts(conn: psycopg.Connection[Any], month: dt.date) -> MonthFacts:
    """The facts of `month` (its first day) from the running sums, as facts_from_lines computes them."""
    back = int(fk.weights().months[fk.F10])
    args = {"m": month, "back": back}
    rows = conn.execute(_MONTH_DAYS, args).fetchall()
    n = len(rows)

    def col(k: int, dtype: str = "i8") -> np.ndarray:
        return np.array([r[k] for r in rows], dtype=dtype).reshape(n)

    prac, ps = col(0), col(1)
    link = {r[0]: r[1:] for r in conn.execute(_MONTH_LINKS, args)}
    lcol = [np.array([int(link.get(p, (0, 0, 0, 0))[k]) for p in prac.tolist()], np.int64) for k in range(4)]
    billers = {r[0]: r[1:] for r in conn.execute(_MONTH_BILLERS, {**args, "ps": sorted(set(ps.tolist()))})}
    first = np.array([to_days(billers[p][0]) for p in ps.tolist()], np.int32)
    b_month = np.array([int(billers[p][1]) for p in ps.tolist()], np.int64)
    b_before = np.array([int(billers[p][2]) for p in ps.tolist()], np.int64)
    pr = conn.execute("SELECT ps, prescriber, invoices, billed_cents FROM fraud_prescriptions WHERE month = %s"
                      " ORDER BY ps, prescriber", (month,)).fetchall()
    arr = np.array(pr, np.int64).reshape(len(pr), 4)
    month_no = fraud.month_of(np.array([to_days(month)]))[0]
    presc = fraud.Prescriptions(arr[:, 0], arr[:, 1], np.full(len(pr), month_no, np.int32), arr[:, 2], arr[:, 3])
    presc_inv, top_share, hhi = fraud_month.concentration(presc, ps)
    return MonthFacts(prac, ps, col(2, "i2"), *(col(k) for k in range(3, 18)), *lcol, first, b_month, b_before,
                      presc_inv, top_share, hhi)


def score_month(conn: psycopg.Connection[Any], month: dt.date) -> int:
    """Score every practitioner of `month` against its peers and store the scores (replacing the
    month's previous pass); returns the practitioners scored."""
    month = month.replace(day=1)
    with conn.transaction():
        # one pass per month at a time; a concurrent one waits for it
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('fseflow.fraud.month'), %s)", (to_days(month),))
        facts = month_facts(conn, month)
        if not facts.practitioner.shape[0]:
            return 0
        start = conn.execute("SELECT min(first_billed) FROM fraud_billers").fetchone()[0]
        s = fraud_month.score_months(facts, to_days(month), to_days(start))
        conn.execute("DELETE FROM fraud_month_scores WHERE month = %s", (month,))
        with conn.cursor().copy("COPY fraud_month_scores (practitioner, month, ps, speciality, score,"
                                " at_stake_cents, explanation) FROM STDIN") as copy:
            for i in range(facts.practitioner.shape[0]):
                top = fraud.explain(s.top[i], s.hits[i], s.values[i])
                copy.write_row((int(facts.practitioner[i]), month, int(facts.ps[i]), int(facts.speciality[i]),
                                float(s.score[i]), int(facts.at_stake_cents[i]), orjson.dumps(top).decode()))
    return int(facts.practitioner.shape[0])


def score_touched(conn: psycopg.Connection[Any], since: dt.datetime | None) -> tuple[dt.datetime, int]:
    """Score the months whose practitioner-days changed after `since` (every month when None);
    returns the new `since` and the practitioner-months scored. The new `since` is a minute
    early: a batch stamped before the pass but committed after it is scored by the next one."""
    now = conn.execute("SELECT clock_timestamp() - interval '1 minute'").fetchone()[0]
    months = active_months(conn) if since is None else [r[0] for r in conn.execute(
        "SELECT DISTINCT date_trunc('month', day)::date FROM fraud_practitioner_days WHERE updated_at > %s"
        " ORDER BY 1", (since,))]
    return now, sum(score_month(conn, m) for m in months)


def active_months(conn: psycopg.Connection[Any]) -> list[dt.date]:
    """Months with practitioner-days (first days), oldest first."""
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT date_trunc('month', day)::date FROM fraud_practitioner_days ORDER BY 1")]


def top_month(conn: psycopg.Connection[Any], month: dt.date, n: int = 20) -> list[dict[str, Any]]:
    """The practitioners alerted for `month`: score >= the alert score, at most alert_max_share
    of the month's practitioners, by score then amount at stake (fraud.md §4); the first n."""
    rows = conn.execute("SELECT practitioner, ps, speciality, score, at_stake_cents, explanation FROM"
                        " fraud_month_scores WHERE month = %s ORDER BY practitioner", (month.replace(day=1),)).fetchall()
    if not rows:
        return []
    keep = fk.alerts(np.array([r[3] for r in rows], np.float64), np.array([r[4] for r in rows], np.int64),
                     population=len(rows))
    return [{"practitioner": rows[i][0], "month": month.replace(day=1), "ps": rows[i][1], "speciality": rows[i][2],
             "score": rows[i][3], "at_stake_cents": int(rows[i][4]), "explanation": rows[i][5]}
            for i in keep.tolist()[:n]]
