"""Which partition of `fse.invoices` a beneficiary's invoices go to.

All of a beneficiary's invoices must meet in one partition, where their counters (PF and
franchise caps, duplicate indexes) live. The key is the beneficiary as the invoice names it:
the NIR of the opener and the rang. The mix is a fixed integer hash (splitmix64), the same in
every process and every version: changing it would move state between partitions.
"""
from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def beneficiary_partition(nir_id: np.ndarray, rang: np.ndarray, partitions: int) -> np.ndarray:
    """Partition per invoice (int32), from the decoded `nir_id` and `rang` columns."""
    with np.errstate(over="ignore"):
        h = nir_id.astype(np.int64).view(np.uint64) * np.uint64(1000) + rang.astype(np.uint64)
        h = (h ^ (h >> np.uint64(30))) * _M1
        h = (h ^ (h >> np.uint64(27))) * _M2
        h ^= h >> np.uint64(31)
    return (h % np.uint64(partitions)).astype(np.int32)
