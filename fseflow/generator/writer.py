"""Writing the generated flow: B2 files, the manifest, ground truth and the summary.

Every file is written from sorted, seed-driven data only (no clock, no absolute path), so the
same seed and arguments give byte-identical outputs.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fseflow.generator.anomalies import BY_NAME
from fseflow.generator.files import B2Output

__all__ = ["B2_DIR", "write_b2_files", "truth_rows", "write_jsonl", "write_json", "write_manifest"]

B2_DIR = "b2"


def write_b2_files(outputs: list[B2Output], out_dir: Path, framing: str = "fixed") -> int:
    """Encode every file with the B2 codec into `out_dir/b2/`; returns the bytes written."""
    from fseflow.codecs.b2 import encode  # the codec is needed only when files are written

    folder = out_dir / B2_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("PS*.b2"):  # files of an earlier run would join this flow
        stale.unlink()
    total = 0
    for o in outputs:
        data = encode(o.b2, framing=framing)
        (folder / o.name).write_bytes(data)
        total += len(data)
    return total


def truth_rows(outputs: Iterable[B2Output]) -> list[dict[str, Any]]:
    """One row per anomalous invoice: where it is and which code the engine must report."""
    rows = []
    for o in outputs:
        for lot, b in o.placed:
            if b.anomaly is None:
                continue
            head = b.invoice.head
            rows.append({"file": o.name, "lot": lot, "ps": o.emitter, "invoice": f"{head['invoice_number']:09d}",
                         "nir": head["nir_opener"], "kind": b.anomaly, "code": BY_NAME[b.anomaly].code})
    return rows


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_json(data: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def manifest_files(flow: Path) -> list[Path]:
    """The B2 files of a generated flow (`flow/b2/`), in arrival order, as `manifest.csv` lists them."""
    import csv

    with open(flow / "manifest.csv", encoding="utf-8", newline="") as fh:
        return [flow / "b2" / row["file"] for row in csv.DictReader(fh)]


def write_manifest(outputs: list[B2Output], path: Path) -> None:
    """`manifest.csv`: the files in arrival order (reception date, then billing number)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("file,reception_date,emitter,file_sequence,lots,invoices\n")
        for o in outputs:
            fh.write(f"{o.name},{o.reception.isoformat()},{o.emitter},{o.sequence},{len(o.b2.lots)},"
                     f"{len(o.placed)}\n")
