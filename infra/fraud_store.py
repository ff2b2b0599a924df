"""The fraud side stream's state in PostgreSQL: practitioner-day sums, offsets, alerts.

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

from fseflow.days import from_days
from fseflow.processors import fraud as fk
from fseflow.stream import fraud

_CREATE = ("CREATE TEMP TABLE IF NOT EXISTS stage_fraud_days (practitioner bigint, day date, ps bigint,"
           " speciality smallint, minutes_hundredths bigint, lines bigint, amo_cents bigint, at_stake_cents bigint,"
           " majorations bigint, f03 bigint, f04 bigint, max_identical bigint) ON COMMIT DELETE ROWS;"
           "CREATE TEMP TABLE IF NOT EXISTS stage_fraud_scores (practitioner bigint, day date, score float8,"
           " top jsonb) ON COMMIT DELETE ROWS")
_ADD = """
INSERT INTO fraud_practitioner_days AS t (practitioner, day, ps, speciality, minutes_hundredths, lines, amo_cents,
       at_stake_cents, majorations, f03, f04, max_identical)
SELECT * FROM stage_fraud_days
ON CONFLICT (practitioner, day) DO UPDATE SET
    minutes_hundredths = t.minutes_hundredths + EXCLUDED.minutes_hundredths, lines = t.lines + EXCLUDED.lines,
    amo_cents = t.amo_cents + EXCLUDED.amo_cents, at_stake_cents = t.at_stake_cents + EXCLUDED.at_stake_cents,
    majorations = t.majorations + EXCLUDED.majorations, f03 = t.f03 + EXCLUDED.f03, f04 = t.f04 + EXCLUDED.f04,
    max_identical = greatest(t.max_identical, EXCLUDED.max_identical), updated_at = clock_timestamp()
RETURNING practitioner, day, ps, speciality, minutes_hundredths, f03, f04, max_identical, at_stake_cents
"""
# month-to-date lines and majorations of each touched practitioner (F05's share rule)
_MONTH = """
SELECT s.practitioner, s.day, sum(t.lines), sum(t.majorations)
  FROM stage_fraud_days s JOIN fraud_practitioner_days t
    ON t.practitioner = s.practitioner AND date_trunc('month', t.day) = date_trunc('month', s.day)
   AND t.day <= s.day
 GROUP BY 1, 2
"""


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


def add_step(conn: psycopg.Connection[Any], app_id: str, partition: int, next_offset: int,
             marks: dict[str, int], days: fraud.Days) -> list[dict[str, Any]]:
    """Add a step's practitioner-days, rescore them, store the offsets; returns the new alerts."""
    alerts: list[dict[str, Any]] = []
    if days.practitioner.shape[0]:
        conn.execute(_CREATE)
        with conn.cursor().copy("COPY stage_fraud_days FROM STDIN") as copy:
            for i in range(days.practitioner.shape[0]):
                copy.write_row((int(days.practitioner[i]), from_days(int(days.day[i])), int(days.ps[i]),
                                int(days.speciality[i]), *days.sums[i].tolist(), int(days.max_identical[i])))
        totals = conn.execute(_ADD).fetchall()
        month = {(p, d): (int(n), int(m)) for p, d, n, m in conn.execute(_MONTH)}
        alerts = _rescore(conn, totals, month)
    conn.execute("INSERT INTO fraud_offsets (app_id, partition, next_offset, watermarks) VALUES (%s, %s, %s, %s)"
                 " ON CONFLICT (app_id, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,"
                 " watermarks = EXCLUDED.watermarks", (app_id, partition, next_offset, orjson.dumps(marks).decode()))
    return alerts


def _rescore(conn: psycopg.Connection[Any], totals: list[tuple[Any, ...]],
             month: dict[tuple[int, dt.date], tuple[int, int]]) -> list[dict[str, Any]]:
    col = lambda k: np.array([r[k] for r in totals], np.int64)  # noqa: E731
    lines = np.array([month.get((r[0], r[1]), (0, 0))[0] for r in totals], np.int64)
    majs = np.array([month.get((r[0], r[1]), (0, 0))[1] for r in totals], np.int64)
    s = fraud.score_days(col(4), col(5), col(6), col(7), lines, majs)
    threshold = fk.weights().alert_threshold
    alerts = []
    with conn.cursor().copy("COPY stage_fraud_scores FROM STDIN") as copy:
        for i, r in enumerate(totals):
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
    for a in alerts:
        conn.execute("INSERT INTO fraud_alerts (practitioner, day, ps, speciality, score, at_stake_cents, explanation)"
                     " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (practitioner, day) DO UPDATE SET"
                     " score = EXCLUDED.score, at_stake_cents = EXCLUDED.at_stake_cents,"
                     " explanation = EXCLUDED.explanation",
                     (a["practitioner"], a["day"], a["ps"], a["speciality"], a["score"], a["at_stake_cents"],
                      orjson.dumps(a["explanation"]).decode()))
    return alerts


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
