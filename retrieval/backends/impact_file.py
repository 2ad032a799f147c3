"""The approximate index of one `EmbeddedIndex`: impact-ordered postings (`impact.py`) as `.npy` files in a folder
the manifest names. The writer builds them for a committed state; readers map the files (no copy, no build) and
search them against that state's live rows; a user is told, once, why a search answered exactly.

A build writes the arrays straight into memory-mapped files of a temporary folder (`TEMP_PREFIX`, ignored by readers
and removed by the next writer), fsyncs them and renames the folder to a name no earlier build used, which no reader
uses until the writer commits a manifest naming it. The kernels release the GIL, so other threads of the writer's
process (the app's searches during an upload's ingest) keep running while it builds.

numba is imported only when an approximate index is built or searched (`import numba` costs most of a second).
"""

from __future__ import annotations

import logging
import mmap
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from retrieval.backends.approximate_state import AnnState, AnnStatus, ann_status, new_ann_name
from retrieval.backends.atomic_files import TEMP_PREFIX, fsync_path, install_directory
from retrieval.backends.live_view import LiveView
from retrieval.backends.manifest import AnnRef, Manifest
from retrieval.errors import RetrievalError

log = logging.getLogger(__name__)

_builds_started = 0
# Linux 5.14+: map every page of a file at once. Pages a search touches first otherwise cost a page fault each: a
# fresh mapping's first 200 searches at 1M passages took 5.4 ms CPU p50, 3.4 ms with the pages mapped at load.
_PREFAULT = ((getattr(mmap, "MADV_POPULATE_READ", 22),) if sys.platform == "linux" else ()) + tuple(
    getattr(mmap, name) for name in ("MADV_WILLNEED",) if hasattr(mmap, name))


def builds_started() -> int:
    """How many builds this process has started (what a benchmark checks stays put while it searches)."""
    return _builds_started


def build_settings() -> dict:
    """The build settings of an index built now (`impact.build_settings`)."""
    from retrieval.backends.impact import build_settings as current

    return current()


def write_postings_folder(view: LiveView, final: Path, *, progress: bool = False) -> tuple[int, float]:
    """Build the impact-ordered postings of `view`'s rows into the new folder `final` (atomic rename); return
    (rows per block, seconds)."""
    from tqdm import tqdm

    from retrieval.backends.impact import build_postings, compile_search

    global _builds_started
    _builds_started += 1
    work = final.with_name(f"{TEMP_PREFIX}{final.name}-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    start = time.perf_counter()
    arrays: dict[str, np.memmap] = {}

    def allocate(name: str, shape: tuple, dtype: type) -> np.ndarray:
        arrays[name] = np.lib.format.open_memmap(work / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
        return arrays[name]

    try:
        with tqdm(total=view.postings.nnz, unit="posting", unit_scale=True, desc="approximate index",
                  disable=not progress) as bar:
            built = build_postings(view.postings, allocate=allocate, on_postings=bar.update)
        for name, array in arrays.items():
            array.flush()
            fsync_path(work / f"{name}.npy")
        del arrays
        install_directory(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    compile_search(view.matrix)
    return built.block_rows, time.perf_counter() - start


def load_postings(folder: Path, view: LiveView, block_rows: int):
    """The postings in `folder` (built for `view`'s rows), memory-mapped read-only; `ValueError` when they do not fit."""
    from retrieval.backends.impact import ARRAYS, ImpactPostings

    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in ARRAYS}
    for array in arrays.values():
        _prefault(array)
    n_rows, n_cols = view.matrix.shape
    if arrays["indices"].shape != (view.matrix.nnz,) or arrays["starts"].shape[0] != n_cols:
        raise ValueError(f"{arrays['indices'].size} postings of {arrays['starts'].shape[0]} tokens, the rows have "
                         f"{view.matrix.nnz} of {n_cols}")
    return ImpactPostings(**arrays, block_rows=block_rows, n_rows=n_rows)


def _prefault(array: np.memmap) -> None:
    """Ask the kernel to map (else at least to read ahead) the whole file now, so that searches do not fault it in."""
    mapping = getattr(array, "_mmap", None)  # numpy.memmap's own mmap object
    for advice in _PREFAULT if mapping is not None else ():
        try:
            mapping.madvise(advice)
            return
        except (OSError, ValueError):  # an older kernel: try the next advice
            continue


class ImpactFile:
    """Loads, builds and reports on the approximate indexes of the index folder `root` (named by its manifests)."""

    def __init__(self, root: Path, params=None) -> None:
        """`params`: the search settings (`impact.ImpactParams`; default: its defaults)."""
        self.root = root
        self._params = params
        self._loaded: tuple[str, object] | None = None  # (folder name, its ImpactScorer)
        self._ready: tuple | None = None  # (manifest, passages, approximate_above, scorer) of the last usable state
        self._unreadable: dict[str, str] = {}  # folder name -> why it could not be loaded
        self._noticed: set[tuple] = set()  # notices already logged

    @property
    def params(self):
        """The search settings (`impact.ImpactParams`)."""
        if self._params is None:
            from retrieval.backends.impact import ImpactParams

            self._params = ImpactParams()
        return self._params

    def status(self, manifest: Manifest, passages: int, approximate_above: int | None) -> AnnStatus:
        """The state of `manifest`'s approximate index for searches configured with `approximate_above`."""
        if approximate_above is None or passages < approximate_above:  # no build settings needed: numba stays unloaded
            return ann_status(manifest, self.root.name, passages, approximate_above, {})
        status = ann_status(manifest, self.root.name, passages, approximate_above, build_settings())
        if status.state is AnnState.READY and manifest.ann.name in self._unreadable:
            return AnnStatus(AnnState.UNREADABLE, self.root.name, passages, manifest.last_seq, approximate_above,
                             manifest.ann, self._unreadable[manifest.ann.name])
        return status

    def scorer(self, manifest: Manifest, view: LiveView, approximate_above: int | None):
        """The `impact.ImpactScorer` of `view` (the live rows of `manifest`), its postings mapped from the folder the
        manifest names; None, the reason logged once, when there is none usable."""
        ready = self._ready
        if ready is not None and ready[0] is manifest and ready[1:3] == (len(view.passages), approximate_above):
            return ready[3]  # the same committed state as the last search: no status to work out again
        status = self.status(manifest, len(view.passages), approximate_above)
        if status.state is not AnnState.READY:
            self.notice_once(status)
            return None
        ref = manifest.ann
        loaded = self._loaded
        if loaded is not None and loaded[0] == ref.name:
            self._ready = (manifest, len(view.passages), approximate_above, loaded[1])
            return loaded[1]
        from retrieval.backends.impact import ImpactScorer

        try:
            postings = load_postings(self.root / ref.name, view, int(ref.params["block_rows"]))
            scorer = ImpactScorer(view.matrix, self.params, postings=postings)
        except (OSError, ValueError, KeyError) as exc:  # a folder replaced by a later writer, or damaged
            self._unreadable[ref.name] = f"{type(exc).__name__}: {exc}"
            self.notice_once(self.status(manifest, len(view.passages), approximate_above))
            return None
        self._loaded = (ref.name, scorer)
        self._ready = (manifest, len(view.passages), approximate_above, scorer)
        return scorer

    def notice_once(self, status: AnnStatus) -> None:
        """Log the status's notice, once per state of the index."""
        key = (status.state, status.last_seq, status.ref.name if status.ref else None)
        if status.notice() and key not in self._noticed:
            self._noticed.add(key)
            log.warning("%s", status.notice())

    def build(self, manifest: Manifest, view: LiveView, *, progress: bool = False) -> AnnRef:
        """Write the approximate index of `view` (the live rows of `manifest`) under a new name; the caller commits
        the entry."""
        if not view.passages:
            raise RetrievalError(f"index {self.root} has no passages to build an approximate index of")
        name = new_ann_name(manifest.last_seq)
        log.info("building the approximate index of %s (%d passages)", self.root.name, len(view.passages))
        try:
            block_rows, seconds = write_postings_folder(view, self.root / name, progress=progress)
        except OSError as exc:
            raise RetrievalError(f"building the approximate index of {self.root} failed: {exc}") from exc
        log.info("built the approximate index of %s in %.1f s", self.root.name, seconds)
        return AnnRef(name=name, seq=manifest.last_seq, params={**build_settings(), "block_rows": block_rows},
                      passages=len(view.passages), build_seconds=round(seconds, 3))
