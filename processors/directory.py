"""The beneficiary rights table (B) and the PS directory (P), as arrays with hash indexes.

Both are loaded from the CSV layouts of the issue (`beneficiaries.csv`, `professionals.csv`),
from a file or from lines of CSV text (infra/db.py feeds the same parser from PostgreSQL).
A beneficiary's id in the kernels is its row number; the counters are keyed by it.
Period columns follow controls.md §2 B: an empty start means no such period, an empty end an
open one — both become day numbers so a kernel tests `start <= day <= end` and nothing else.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, NamedTuple, Union

import numpy as np

from fseflow.codecs.nir import nir_id
from fseflow.days import NO_DATE, OPEN_END, parse_iso
from fseflow.exceptions import InputError
from fseflow.processors import _hashtable as ht

BENEFICIARY_COLUMNS = (
    "nir", "key", "rang", "birth_date", "birth_rank", "sex", "quality", "rights_start", "rights_end",
    "ald_start", "ald_end", "c2s_start", "c2s_end", "sig_start", "sig_end", "death_date", "iban",
)
PROFESSIONAL_COLUMNS = ("ps_number", "rpps", "speciality", "convention", "department", "tariff_zone", "iban", "name")
PERIODS = ("rights", "ald", "c2s", "sig")
#: a CSV file's path, or the lines of a CSV text with its header (e.g. a COPY ... TO STDOUT stream)
Source = Union[str, Path, Iterable[str]]
# index kinds of the PS directory table
PS_BY_PAIR, PS_OWN, PS_BY_RPPS = 0, 1, 2


#: columns of Beneficiaries.rows: one 64-byte row per beneficiary, so the kernel reads a
#: beneficiary's dates and periods with one cache miss instead of one per array
ROW_BIRTH, ROW_DEATH, ROW_SEX, ROW_RANK, ROW_QUALITY, ROW_PERIODS = 0, 1, 2, 3, 4, 5
ROW_WIDTH = 16


class Beneficiaries(NamedTuple):
    """Every array but `nir_id` and `index` is a view into `rows` (n, 16) int32."""

    nir_id: np.ndarray       # int64
    birth_date: np.ndarray   # int32 day numbers
    birth_rank: np.ndarray   # int8
    quality: np.ndarray      # int8
    sex: np.ndarray          # int8
    periods: np.ndarray      # (n, 4, 2) int32: start, end of rights, ald, c2s, sig
    death_date: np.ndarray   # int32, NO_DATE = none
    index: ht.Table          # (nir_id, birth_date * 10 + birth_rank, quality) → row
    rows: np.ndarray         # (n, ROW_WIDTH) int32


class Professionals(NamedTuple):
    ps_number: np.ndarray    # int64
    rpps: np.ndarray         # int64
    speciality: np.ndarray   # int16
    convention: np.ndarray   # int8
    tariff_zone: np.ndarray  # int8
    index: ht.Table          # (PS_BY_PAIR, ps, rpps) / (PS_OWN, ps, 0) / (PS_BY_RPPS, rpps, 0) → row


def _rows(lines: Iterable[str], columns: tuple[str, ...], path: str | Path) -> list[list[str]]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != columns:
        raise InputError(f"{path}: header must be {','.join(columns)}")
    return list(reader)


def _read_rows(source: Source, columns: tuple[str, ...], name: str | None = None) -> tuple[list[list[str]], str | Path]:
    """The rows of a CSV file or text, and the name its errors give (the path, else `name`)."""
    if isinstance(source, (str, Path)):
        path: str | Path = Path(source)
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = _rows(fh, columns, path)
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: not UTF-8 (byte {e.start})") from None
    else:
        path = name or "<csv text>"
        rows = _rows(source, columns, path)
    for n, row in enumerate(rows, start=2):
        if len(row) != len(columns):
            raise InputError(f"{path}: line {n}: expected {len(columns)} fields, found {len(row)}")
    return rows, path


def _dates(values: list[str], empty: int, path: str | Path, column: str) -> np.ndarray:
    cache: dict[str, int] = {}
    out = np.empty(len(values), dtype=np.int32)
    for i, v in enumerate(values):
        d = cache.get(v)
        if d is None:
            try:
                d = cache[v] = parse_iso(v, empty)
            except ValueError:
                raise InputError(f"{path}: line {i + 2}: field {column}: not an ISO date") from None
        out[i] = d
    return out


def _ints(values: list[str], path: str | Path, column: str, dtype: str) -> np.ndarray:
    try:
        return np.array([int(v) for v in values], dtype=dtype)
    except ValueError:
        bad = next(i for i, v in enumerate(values) if not v.strip().lstrip("-").isdigit())
        raise InputError(f"{path}: line {bad + 2}: field {column}: not an integer") from None


def load_beneficiaries(source: Source, *, name: str | None = None) -> Beneficiaries:
    """From a CSV path, or lines of CSV text (`name` then names it in errors)."""
    rows, path = _read_rows(source, BENEFICIARY_COLUMNS, name)
    cols = {c: [r[i] for r in rows] for i, c in enumerate(BENEFICIARY_COLUMNS)}
    ids = np.array([nir_id(v) for v in cols["nir"]], dtype=np.int64)
    if (ids < 0).any():
        raise InputError(f"{path}: line {int(np.argmax(ids < 0)) + 2}: field nir: not a 13-character NIR")
    periods = np.empty((len(rows), len(PERIODS), 2), dtype=np.int32)
    for k, p in enumerate(PERIODS):
        # an empty start = no period at all: a start after every date never matches
        periods[:, k, 0] = _dates(cols[f"{p}_start"], OPEN_END, path, f"{p}_start")
        periods[:, k, 1] = _dates(cols[f"{p}_end"], OPEN_END, path, f"{p}_end")
    birth = _dates(cols["birth_date"], NO_DATE, path, "birth_date")
    rank = _ints(cols["birth_rank"], path, "birth_rank", "i1")
    quality = _ints(cols["quality"], path, "quality", "i1")
    index = ht.new_table(2 * len(rows) + 16)
    ht.build_index(index.slots, index.used, ids, birth.astype(np.int64) * 10 + rank,
                   quality.astype(np.int64), np.arange(len(rows), dtype=np.int64))
    packed = np.zeros((len(rows), ROW_WIDTH), dtype=np.int32)
    packed[:, ROW_BIRTH] = birth
    packed[:, ROW_DEATH] = _dates(cols["death_date"], NO_DATE, path, "death_date")
    packed[:, ROW_SEX] = _ints(cols["sex"], path, "sex", "i1")
    packed[:, ROW_RANK] = rank
    packed[:, ROW_QUALITY] = quality
    packed[:, ROW_PERIODS:ROW_PERIODS + 2 * len(PERIODS)] = periods.reshape(len(rows), -1)
    n = len(rows)
    return Beneficiaries(
        ids, packed[:, ROW_BIRTH], packed[:, ROW_RANK], packed[:, ROW_QUALITY], packed[:, ROW_SEX],
        packed[:, ROW_PERIODS:ROW_PERIODS + 2 * len(PERIODS)].reshape(n, len(PERIODS), 2),
        packed[:, ROW_DEATH], index, packed)


def load_professionals(source: Source, *, name: str | None = None) -> Professionals:
    """From a CSV path, or lines of CSV text (`name` then names it in errors)."""
    rows, path = _read_rows(source, PROFESSIONAL_COLUMNS, name)
    cols = {c: [r[i] for r in rows] for i, c in enumerate(PROFESSIONAL_COLUMNS)}
    ps = _ints(cols["ps_number"], path, "ps_number", "i8")
    rpps = _ints(cols["rpps"], path, "rpps", "i8")
    n = len(rows)
    index = ht.new_table(6 * n + 16)
    # a billing number's own row: its row with rpps zeros when it has one, else its only row (controls.md §2 P)
    own = np.where(rpps == 0, 0, 1)  # rows with rpps zeros first
    order = np.lexsort((own, ps))
    kinds = np.concatenate([np.full(n, PS_BY_PAIR), np.full(n, PS_OWN), np.full(n, PS_BY_RPPS)]).astype(np.int64)
    a = np.concatenate([ps, ps[order], rpps])
    b = np.concatenate([rpps, np.zeros(n, np.int64), np.zeros(n, np.int64)])
    rows_idx = np.concatenate([np.arange(n), order, np.arange(n)])
    keep = ~((kinds == PS_BY_RPPS) & (a == 0))  # structures' zero RPPS is not a prescriber
    ht.build_index(index.slots, index.used, kinds[keep], a[keep], b[keep], rows_idx[keep].astype(np.int64))
    return Professionals(ps, rpps, _ints(cols["speciality"], path, "speciality", "i2"),
                         _ints(cols["convention"], path, "convention", "i1"),
                         _ints(cols["tariff_zone"], path, "tariff_zone", "i1"), index)

