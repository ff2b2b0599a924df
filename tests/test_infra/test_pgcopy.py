"""infra/pgcopy.py: numpy columns reach PostgreSQL through binary COPY exactly as given."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from fseflow.days import to_days
from fseflow.infra import db
from fseflow.infra.pgcopy import binary_copy, copy_into


def test_binary_copy_round_trips_every_type(fresh_db: str) -> None:
    days = np.array([to_days(dt.date(1999, 12, 31)), to_days(dt.date(2026, 11, 23)), 0], np.int32)
    cols = [("bigint", np.array([-1, 2**62, 0], np.int64)), ("date", days),
            ("smallint", np.array([-32768, 7, 32767], np.int16)), ("integer", np.array([2**31 - 1, -5, 0], np.int32)),
            ("float8", np.array([0.5, -1e300, 0.0]))]
    with db.connect(fresh_db) as conn:
        conn.execute("CREATE TEMP TABLE t (a bigint, d date, s smallint, i integer, f float8)")
        copy_into(conn.cursor(), "t", cols)
        rows = conn.execute("SELECT * FROM t").fetchall()
    assert rows == [(-1, dt.date(1999, 12, 31), -32768, 2**31 - 1, 0.5),
                    (2**62, dt.date(2026, 11, 23), 7, -5, -1e300),
                    (0, dt.date(1970, 1, 1), 32767, 0, 0.0)]


def test_binary_copy_refuses_unknown_types_and_ragged_columns() -> None:
    with pytest.raises(ValueError, match="column 0 has type 'text'"):
        binary_copy([("text", np.zeros(1))])
    with pytest.raises(ValueError, match="column 1 has 2 rows, the first has 1"):
        binary_copy([("bigint", np.zeros(1, np.int64)), ("bigint", np.zeros(2, np.int64))])
    assert binary_copy([("bigint", np.zeros(0, np.int64))]).startswith(b"PGCOPY\n\xff\r\n\x00")
