"""Where `ksearch adapt` writes: a models folder whose entries are never half-written and never overwritten.

A model is built in a staging folder under `models_dir/.adapt-work/NAME/` and renamed to `models_dir/NAME` only when
complete (a rename within one file system is atomic), so Ctrl-C or a crash leaves either no model or the old one.
An existing folder is replaced only with `force`, and only when its marker file says `ksearch adapt` wrote it:
models made any other way are never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

MARKER_FILE = "adapt.json"  # in an adapted model folder: parent, corpus fingerprint, recipe, and who wrote it
WRITER = "ksearch adapt"
WORK_FOLDER = ".adapt-work"  # under the models folder: one work folder per model name (resumable state, staging)


class ModelFolderError(RuntimeError):
    """The model folder cannot be written (the message says why and what to do)."""


def work_dir(models_dir: Path, name: str) -> Path:
    """The work folder of model `name`: prepared pairs, checkpoints, the staging copy."""
    return models_dir / WORK_FOLDER / name


def written_by_adapt(folder: Path) -> bool:
    """Whether `folder` holds a model that `ksearch adapt` wrote (its marker file says so)."""
    try:
        return json.loads((folder / MARKER_FILE).read_text(encoding="utf-8")).get("written_by") == WRITER
    except (OSError, ValueError, AttributeError):
        return False


def check_writable(target: Path, force: bool) -> None:
    """Raise `ModelFolderError` unless `target` is free, or `force` is given and `target` is ksearch adapt's own."""
    if not target.exists():
        return
    if not force:
        raise ModelFolderError(f"{target} already exists; ksearch adapt never overwrites a model: choose another "
                               f"--out name, or pass --force to replace a model that ksearch adapt wrote earlier")
    if not written_by_adapt(target):
        raise ModelFolderError(f"{target} was not written by ksearch adapt (it has no {MARKER_FILE} saying so); "
                               f"--force replaces only ksearch adapt's own output: choose another --out name")


def install(staging: Path, target: Path, *, force: bool) -> None:
    """Move the complete model folder `staging` to `target` (see the module docstring)."""
    check_writable(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    old = staging.parent / (staging.name + ".replaced")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.rename(target, old)  # our own earlier output (checked above); removed once the new one is in place
    try:
        os.rename(staging, target)
    except OSError:
        if old.exists() and not target.exists():
            os.rename(old, target)  # put the earlier model back
        raise
    _fsync_dir(target.parent)
    if old.exists():
        shutil.rmtree(old)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def work_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on a work folder (one `ksearch adapt` per model name at a time)."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ModelFolderError(f"another ksearch adapt is writing this model ({folder} is locked)") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
