"""Score décomptes against a generator's `truth.jsonl`: every injected anomaly found with its code,
and no reject on a clean invoice (the generator's promise, checked by the demo and the tests)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


@dataclass
class TruthScore:
    expected: int = 0
    found: int = 0
    clean_invoices: int = 0
    false_rejects: Counter[str] = field(default_factory=Counter)   # code → clean invoices rejected with it
    missed: Counter[str] = field(default_factory=Counter)          # anomaly kind → not found with its code
    extra: Counter[str] = field(default_factory=Counter)           # code rejected beside the injected one

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def exact(self) -> bool:
        return self.found == self.expected and not self.false_rejects and not self.missed and not self.extra


class TruthChecker:
    """Feed it every décompte record (`add`), then read `score()`."""

    def __init__(self, truth_path: Path) -> None:
        self.truth = {(r["file"], r["lot"], r["invoice"], r["ps"]): r
                      for r in map(orjson.loads, truth_path.read_bytes().splitlines())}
        self._score = TruthScore(expected=len(self.truth))
        self._seen: set[tuple[str, int, str, str]] = set()

    def add(self, rec: dict[str, Any]) -> None:
        if "lines" not in rec:  # a refused lot or file is never clean
            self._score.false_rejects.update(r["code"] for r in rec["rejects"])
            return
        key = (rec["file"], rec["lot"], rec["invoice"], rec["ps"])
        codes = {r["code"] for r in rec["rejects"]}
        t = self.truth.get(key)
        if t is None:
            self._score.clean_invoices += 1
            self._score.false_rejects.update(codes)
            return
        self._seen.add(key)
        if t["code"] in codes:
            self._score.found += 1
        else:
            self._score.missed[t["kind"]] += 1
        self._score.extra.update(codes - {t["code"]})

    def score(self) -> TruthScore:
        for key in self.truth.keys() - self._seen:
            self._score.missed[self.truth[key]["kind"]] += 1
        return self._score
