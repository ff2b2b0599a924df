"""Reference data in PostgreSQL: idempotent loads, stable rows, and the very directories of the CSVs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from fseflow.exceptions import InputError
from fseflow.infra.db import load_directory, load_reference
from fseflow.processors.directory import load_beneficiaries, load_professionals

DATA = Path(__file__).resolve().parents[1] / "data"
BENE, PROS = DATA / "example-beneficiaries.csv", DATA / "example-professionals.csv"
CODE_TABLES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "processors" / "tables").glob("*.csv"))


def same_arrays(a: Any, b: Any) -> bool:
    """Equal named tuples of arrays (nested: the hash index tables too)."""
    if isinstance(a, tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same_arrays(x, y) for x, y in zip(a, b))
    return bool(a.dtype == b.dtype and np.array_equal(a, b))


def assert_directory_is_the_csvs(url: str, bene: Path, pros: Path) -> None:
    b, p = load_directory(url)
    assert same_arrays(b, load_beneficiaries(bene))
    assert same_arrays(p, load_professionals(pros))


def test_example_load_is_idempotent_and_gives_the_csv_directory(fresh_db: str) -> None:
    first = load_reference(fresh_db, BENE, PROS)
    assert first["beneficiaries"] == 3 and first["professionals"] == 3
    assert {t for t in first if t.startswith("ref_")} == {f"ref_{t}" for t in CODE_TABLES}
    assert all(first[f"ref_{t}"] > 0 for t in CODE_TABLES)
    again = load_reference(fresh_db, BENE, PROS)
    assert set(again.values()) == {0}
    assert_directory_is_the_csvs(fresh_db, BENE, PROS)
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM ref_reject_codes").fetchone() == (first["ref_reject_codes"],)


def test_generated_population_gives_the_csv_directory(fresh_db: str, small_flow: Path) -> None:
    bene, pros = small_flow / "beneficiaries.csv", small_flow / "professionals.csv"
    counts = load_reference(fresh_db, bene, pros)
    assert counts["beneficiaries"] == len(bene.read_text().splitlines()) - 1
    assert_directory_is_the_csvs(fresh_db, bene, pros)


def test_new_people_are_appended_and_known_ones_keep_their_row(fresh_db: str, tmp_path: Path) -> None:
    load_reference(fresh_db, BENE, PROS)
    header, first, second, third = BENE.read_text().splitlines()
    moved = first.split(",")
    moved[8] = "2030-12-31"  # rights_end of the first person changes
    newcomer = "2850583137042,29,000,1985-05-12,1,2,1,2010-01-01,,,,,,,,,"
    # the newcomer comes first in the new file: it still gets the next row, nothing is renumbered
    new = tmp_path / "b.csv"
    new.write_text("\n".join([header, newcomer, ",".join(moved), second, third]) + "\n")
    counts = load_reference(fresh_db, new, PROS)
    assert (counts["beneficiaries"], counts["beneficiaries_changed"]) == (1, 1)
    expected = tmp_path / "expected.csv"
    expected.write_text("\n".join([header, ",".join(moved), second, third, newcomer]) + "\n")
    assert_directory_is_the_csvs(fresh_db, expected, PROS)


@pytest.mark.parametrize("line, field, value, message", [
    (3, 3, "12/04/1985", "line 3: field birth_date: not an ISO date"),
    (2, 8, "2030-02-30", "line 2: field rights_end: not an ISO date"),
    (4, 0, "185048313704", "line 4: field nir: not a 13-character NIR"),
    (2, 6, "x", "line 2: field quality: not an integer"),
])
def test_a_bad_value_names_line_and_field_never_the_value(fresh_db: str, tmp_path: Path, line: int, field: int,
                                                         value: str, message: str) -> None:
    rows = [r.split(",") for r in BENE.read_text().splitlines()]
    original = rows[line - 1][field]
    rows[line - 1][field] = value
    bad = tmp_path / "b.csv"
    bad.write_text("\n".join(",".join(r) for r in rows) + "\n")
    with pytest.raises(InputError) as e:
        load_reference(fresh_db, bad, PROS)
    assert str(e.value) == f"{bad}: {message}"
    said = str(e.value).removeprefix(f"{bad}: ")  # (tmp_path's name holds the test's parameters)
    assert value not in said and (not original or original not in said)
    with psycopg.connect(fresh_db) as conn:  # nothing was written
        assert conn.execute("SELECT count(*) FROM beneficiaries").fetchone() == (0,)


def test_bad_shapes_and_repeated_people(fresh_db: str, tmp_path: Path) -> None:
    lines = BENE.read_text().splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join(lines[:2] + [lines[2].rsplit(",", 1)[0]]) + "\n")
    with pytest.raises(InputError, match=r"short.csv: line 3: expected 17 fields, found 16$"):
        load_reference(fresh_db, short, PROS)
    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(InputError, match=r"twice.csv: line 5: same beneficiary .* as line 2$"):
        load_reference(fresh_db, twice, PROS)
    with pytest.raises(InputError, match="header must be"):
        load_reference(fresh_db, PROS, PROS)
