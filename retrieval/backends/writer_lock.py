"""The embedded index's writer lock file and the clean-up a writer does when it takes it."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from retrieval.backends.approximate_state import APPROXIMATE_PREFIX
from retrieval.backends.atomic_files import TEMP_PREFIX
from retrieval.backends.manifest import Manifest
from retrieval.errors import RetrievalError

log = logging.getLogger(__name__)

LOCK_FILE = ".writer.lock"


def take_writer_lock(root: Path) -> int:
    """An open descriptor holding the exclusive lock on `root`'s lock file; `RetrievalError` when another process
    holds it."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RetrievalError(f"index {root} is being written by another process; wait for it to finish") from None
    return fd


def remove_orphans(root: Path, manifest: Manifest) -> None:
    """Delete what a killed writer left: temporary files and the folders (and approximate indexes) `manifest` does not name."""
    m = manifest
    referenced = {s.name for s in m.segments} | ({m.bm25.name} if m.bm25 else set()) | ({m.ann.name} if m.ann else set())
    for entry in root.iterdir():
        name = entry.name
        orphan = name.startswith(TEMP_PREFIX) or (name.startswith(("seg-", "bm25-", APPROXIMATE_PREFIX))
                                                   and name not in referenced)
        if orphan:
            log.info("removing orphan %s", entry)
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
