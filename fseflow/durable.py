"""Files that survive a crash whole: written beside their name, synced, renamed into place.

The SEPA and returns files (codecs/sepa.py) and the spool's ARL, `.dup` and `.reason` files
(stream/spool.py) are written this way: a reader never sees half a file, and once the folder is
synced the rename itself survives a power cut.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Sync a folder: its renames and new names survive a crash, not only the files' bytes."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Write `data` to `path` whole or not at all: a temporary file beside it, synced, renamed
    (and the folder synced, unless the caller syncs it once for many files)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)


__all__ = ["fsync_dir", "replace_atomic"]
