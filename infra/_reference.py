"""Reference data in PostgreSQL: beneficiaries, PS directory and the domain code tables.

`load_reference` copies the CSVs in (COPY into a text staging table, checks in SQL, then one
set-based upsert), `load_directory` rebuilds the kernels' in-memory directories from them with
the very parser of the CSV files, so both paths give identical arrays.

Row ids are the kernels' row numbers (their counter state is keyed by row): a known person keeps
its row and is updated in place, a new one is appended at max + 1, nothing is renumbered.
Values are checked in SQL before any cast, so no personal value can reach an error message or
the server's log; an error names the file, line and field only.
"""
from __future__ import annotations

import csv
import io
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import psycopg
from psycopg import sql

from fseflow.exceptions import FseflowError, InputError
from fseflow.infra.exceptions import MigrationError
from fseflow.processors.directory import (BENEFICIARY_COLUMNS, PROFESSIONAL_COLUMNS, Beneficiaries, Professionals,
                                          load_beneficiaries, load_professionals)

#: pg_advisory_xact_lock key of `load_reference`: row ids come from max(row_id), one loader at a time
LOAD_LOCK = 0x0F5EF1_0002
_COPY_CHUNK = 1 << 20

# the test a staged text value {v} must pass for its column's type (NULL = empty cell), and the
# message when it fails. pg_input_is_valid (PostgreSQL 16+) tests a cast without raising; the
# shape tests before it keep PostgreSQL's laxer forms out (01/02/2025, 0x1F, 1_000). No regular
# expressions on the beneficiaries: on the 8 M date cells of a full-scale file they cost 3x more.
_DIGITS = "translate({v}, '0123456789', '')"
_CHECKS = {
    "date": ("{v} IS NULL OR {v} = '' OR ({v} LIKE '____-__-__' AND pg_input_is_valid({v}, 'date'))",
             "not an ISO date"),
    "smallint": (f"ltrim(btrim({_DIGITS}), '+-') = '' AND pg_input_is_valid({{v}}, 'smallint')", "not an integer"),
    "int": ("btrim({v}) ~ '^[-+]?[0-9]{{1,18}}$'", "not an integer"),  # PS codes kept as text: 10k rows
    "nir": (f"length({{v}}) = 13 AND ({_DIGITS} = ''"
            f" OR (substr({{v}}, 6, 2) IN ('2A', '2B') AND translate(substr({{v}}, 1, 5) || substr({{v}}, 8),"
            " '0123456789', '') = ''))", "not a 13-character NIR"),
}
_CASTS = {"date": "NULLIF({c}, '')::date", "smallint": "btrim({c})::smallint"}


@dataclass(frozen=True)
class _People:
    table: str
    columns: tuple[str, ...]   # the CSV's, in order
    key: tuple[str, ...]       # one person (the kernels' index key)
    types: dict[str, str]      # column → check in _CHECKS; others are free text
    what: str                  # for the duplicate message


_DATES = ("birth_date", "rights_start", "rights_end", "ald_start", "ald_end", "c2s_start", "c2s_end", "sig_start",
          "sig_end", "death_date")
BENEFICIARIES = _People("beneficiaries", BENEFICIARY_COLUMNS, ("nir", "birth_date", "birth_rank", "quality"),
                        {"nir": "nir", **dict.fromkeys(_DATES, "date"),
                         **dict.fromkeys(("birth_rank", "sex", "quality"), "smallint")},
                        "same beneficiary (nir, birth date, birth rank, quality)")
PROFESSIONALS = _People("professionals", PROFESSIONAL_COLUMNS, ("ps_number", "rpps"),
                        {**dict.fromkeys(("ps_number", "rpps", "speciality", "tariff_zone"), "int"),
                         "convention": "smallint"},
                        "same billing number and RPPS")


def _csv_rows(path: Path, columns: tuple[str, ...] | None) -> Iterator[list[str]]:
    """Rows after the header, each checked for its field count (a COPY error would quote the line)."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or (columns is not None and tuple(h.strip() for h in header) != columns):
                raise InputError(f"{path}: header must be {','.join(columns or ())}")
            width = len(header)
            yield header
            for n, row in enumerate(reader, start=2):
                if len(row) != width:
                    raise InputError(f"{path}: line {n}: expected {width} fields, found {len(row)}")
                yield row
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 (byte {e.start})") from None


def _stage(conn: psycopg.Connection[Any], p: _People, path: Path) -> None:
    """The CSV as text rows of a temp table `stage`, `ord` = data line number - 1."""
    for _ in _csv_rows(path, p.columns):  # header and field counts first: 3x faster than writing rows
        pass
    cols = sql.SQL(", ").join(map(sql.Identifier, p.columns))
    conn.execute(sql.SQL("CREATE TEMP TABLE stage (ord bigint GENERATED ALWAYS AS IDENTITY, {}) ON COMMIT DROP")
                 .format(sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in p.columns)))
    query = sql.SQL("COPY stage ({}) FROM STDIN WITH (FORMAT csv, HEADER true)").format(cols)
    with conn.cursor().copy(query) as copy, open(path, "rb") as fh:
        while chunk := fh.read(_COPY_CHUNK):
            copy.write(chunk)


def _check(conn: psycopg.Connection[Any], p: _People, path: Path) -> None:
    checked = list(p.types.items())
    first_bad = sql.SQL(", ").join(
        sql.SQL("min(ord) FILTER (WHERE NOT coalesce({}, false))").format(
            sql.SQL(_CHECKS[kind][0]).format(v=sql.Identifier(col)))
        for col, kind in checked)
    bad = conn.execute(sql.SQL("SELECT {} FROM stage").format(first_bad)).fetchone() or ()
    found = [(ord_, col, kind) for ord_, (col, kind) in zip(bad, checked) if ord_ is not None]
    if found:
        ord_, col, kind = min(found)
        raise InputError(f"{path}: line {ord_ + 1}: field {col}: {_CHECKS[kind][1]}")


def _typed(p: _People) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL(_CASTS.get(p.types.get(c, ""), "{c}") + " AS {c}").format(c=sql.Identifier(c)) for c in p.columns)


def _load_people(conn: psycopg.Connection[Any], p: _People, path: Path) -> dict[str, int]:
    _stage(conn, p, path)
    _check(conn, p, path)
    conn.execute(sql.SQL("CREATE TEMP TABLE typed ON COMMIT DROP AS SELECT ord, {} FROM stage").format(_typed(p)))
    conn.execute("ANALYZE typed")  # temp tables get no autovacuum statistics: the joins below need them
    key = sql.SQL(", ").join(map(sql.Identifier, p.key))
    if conn.execute(sql.SQL("SELECT 1 FROM typed GROUP BY {} HAVING count(*) > 1 LIMIT 1").format(key)).fetchone():
        again, first = conn.execute(sql.SQL(
            "SELECT (array_agg(ord ORDER BY ord))[2] AS again, min(ord) FROM typed GROUP BY {}"
            " HAVING count(*) > 1 ORDER BY again LIMIT 1").format(key)).fetchone() or (0, 0)
        raise InputError(f"{path}: line {again + 1}: {p.what} as line {first + 1}")
    # a NULL key (an empty birth date) equals NULL, as in the NULLS NOT DISTINCT unique index; the
    # other key columns are NOT NULL and compared with `=`, which lets the planner hash-join
    same = sql.SQL(" AND ").join(
        sql.SQL("t.{c} IS NOT DISTINCT FROM t2.{c}" if p.types.get(c) == "date" else "t.{c} = t2.{c}")
        .format(c=sql.Identifier(c)) for c in p.key)
    rest = [c for c in p.columns if c not in p.key]
    table = sql.Identifier(p.table)
    changed = conn.execute(sql.SQL(
        "UPDATE {t} AS t SET ({rest}) = ROW({new}) FROM typed AS t2 WHERE {same} AND ({old}) IS DISTINCT FROM ({new})"
    ).format(t=table, rest=sql.SQL(", ").join(map(sql.Identifier, rest)), same=same,
             new=sql.SQL(", ").join(sql.SQL("t2.{}").format(sql.Identifier(c)) for c in rest),
             old=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in rest))).rowcount
    cols = sql.SQL(", ").join(map(sql.Identifier, p.columns))
    insert = sql.SQL(
        "INSERT INTO {t} (row_id, {cols}) SELECT (SELECT coalesce(max(row_id), -1) FROM {t})"
        " + row_number() OVER (ORDER BY t2.ord), {cols} FROM typed AS t2"
        " WHERE NOT EXISTS (SELECT 1 FROM {t} AS t WHERE {same})").format(t=table, cols=cols, same=same)
    if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table)).fetchone() == (True,):
        added = conn.execute(insert).rowcount
    else:
        with _indexes_dropped(conn, p.table):
            added = conn.execute(insert).rowcount
    conn.execute("DROP TABLE stage, typed")
    return {p.table: added, f"{p.table}_changed": changed}


@contextmanager
def _indexes_dropped(conn: psycopg.Connection[Any], table: str) -> Iterator[None]:
    """Drop a table's indexes and build them again after: a first load of 783k rows inserts in
    1.8 s + 3.1 s of index builds, against 9.3 s into the (random-order) unique index."""
    found = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid)"
        " FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid"
        " WHERE i.indrelid = %s::regclass", (table,)).fetchall()
    t = sql.Identifier(table)
    for index, _, constraint, _ in found:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(t, sql.Identifier(constraint))
                     if constraint else sql.SQL("DROP INDEX {}").format(sql.SQL(index)))
    yield
    conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for _, indexdef, constraint, constraintdef in found:
        conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(t, sql.Identifier(constraint),
                                                                          sql.SQL(constraintdef))
                     if constraint else sql.SQL(indexdef))


def _reference_tables() -> list[tuple[str, Path]]:
    folder = resources.files("fseflow.processors.tables")
    return sorted((f"ref_{f.name.removesuffix('.csv')}", Path(str(f))) for f in folder.iterdir()
                  if f.name.endswith(".csv"))


def _load_table(conn: psycopg.Connection[Any], table: str, path: Path) -> int:
    """Replace a code table when its CSV differs; rows written (0 when unchanged)."""
    header, *rows = list(_csv_rows(path, None))
    db_cols = [r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = %s ORDER BY ordinal_position", (table,))]
    if db_cols != ["ord", *header]:
        raise MigrationError(f"{path.name}: columns differ from table {table}: add a migration")
    wanted = [(i, *(v if v != "" else None for v in r)) for i, r in enumerate(rows)]
    t = sql.Identifier(table)
    have = conn.execute(sql.SQL("SELECT * FROM {} ORDER BY ord").format(t)).fetchall()
    if have == wanted:
        return 0
    conn.execute(sql.SQL("DELETE FROM {}").format(t))
    with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(t)) as copy:
        for row in wanted:
            copy.write_row(row)
    return len(wanted)


def load_reference(url: str, beneficiaries_csv: str | Path, professionals_csv: str | Path) -> dict[str, int]:
    """Load both directories and the code tables in one transaction; rows added or changed per table.

    Idempotent: loading the same files again returns zeros and changes nothing.
    """
    from fseflow.infra.db import connect

    with connect(url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOAD_LOCK,))
        conn.execute("SET LOCAL work_mem = '256MB'")  # hash joins of 783k rows in memory, not in batches
        counts = _load_people(conn, BENEFICIARIES, Path(beneficiaries_csv))
        counts |= _load_people(conn, PROFESSIONALS, Path(professionals_csv))
        for table, path in _reference_tables():
            counts[table] = _load_table(conn, table, path)
    return counts


def _copy_out(conn: psycopg.Connection[Any], p: _People) -> io.StringIO:
    n, end = conn.execute(sql.SQL("SELECT count(*), coalesce(max(row_id) + 1, 0) FROM {}")
                          .format(sql.Identifier(p.table))).fetchone() or (0, 0)
    if n != end:
        raise FseflowError(f"table {p.table}: row ids are not 0..{n - 1}: the kernels' rows would shift")
    buf = bytearray()
    query = sql.SQL("COPY (SELECT {} FROM {} ORDER BY row_id) TO STDOUT WITH (FORMAT csv, HEADER true)").format(
        sql.SQL(", ").join(map(sql.Identifier, p.columns)), sql.Identifier(p.table))
    with conn.cursor().copy(query) as copy:
        for chunk in copy:
            buf += chunk
    return io.StringIO(buf.decode("utf-8"), newline="")


def load_directory(url: str) -> tuple[Beneficiaries, Professionals]:
    """The kernels' directories from PostgreSQL, identical to loading the CSVs that were loaded."""
    from fseflow.infra.db import connect

    with connect(url) as conn:
        # one snapshot for both tables (a loader may commit in between); ISO dates as the CSVs have them
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.execute("SET datestyle TO ISO")
        bene = _copy_out(conn, BENEFICIARIES)
        pros = _copy_out(conn, PROFESSIONALS)
    return (load_beneficiaries(bene, name="PostgreSQL table beneficiaries"),
            load_professionals(pros, name="PostgreSQL table professionals"))


__all__ = ["load_reference", "load_directory", "LOAD_LOCK"]
