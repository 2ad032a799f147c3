"""Crash-safe file writes: write a temporary file, fsync, then `os.replace` it into place.

A process killed at any moment (SIGKILL) leaves either the old file or the new one, plus at
most a temporary file whose name starts with `TEMP_PREFIX`, which readers ignore and writers delete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

TEMP_PREFIX = ".tmp-"


def temp_path_for(final: Path) -> Path:
    """A temporary sibling of `final`, unique to this process."""
    return final.with_name(f"{TEMP_PREFIX}{final.name}-{os.getpid()}")


def fsync_path(path: Path) -> None:
    """Flush a file or directory to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(final: Path, value: Any) -> None:
    """Replace `final` with `value` as JSON, atomically."""
    tmp = temp_path_for(final)
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fsync_path(final.parent)


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write a plain (non-object) array as .npy and fsync it."""
    if array.dtype == object:
        raise TypeError(f"{path.name}: object arrays would need pickle")
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def write_jsonl(path: Path, records: Iterable[Any]) -> None:
    """Write one JSON value per line and fsync the file."""
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False))
            fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[Any]:
    """Read a file written by `write_jsonl`."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def install_directory(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written temporary directory to its final name (atomic rename)."""
    fsync_path(tmp_dir)
    os.replace(tmp_dir, final_dir)
    fsync_path(final_dir.parent)
