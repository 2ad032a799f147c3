"""Build a Seismic index file in a child process, with a progress bar, and put it in place atomically.

Seismic's build holds the GIL until it returns (minutes at a million passages), so built in the process that
also serves searches (the app ingests uploads in its own process) it would freeze every other thread. A child
process leaves the parent free, hands its peak memory back to the system when it exits, and keeps Seismic's
own console output (its phases) out of the parent's stdout, where `--json` output goes; the parent shows the
phases in its progress bar instead.

The child writes into a temporary folder (`TEMP_PREFIX`, ignored by readers and removed by the next writer);
the finished file is fsynced and renamed to its final name, which no reader uses until the writer commits a
manifest naming it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse

from retrieval.backends.approximate import SeismicParams, SeismicScorer
from retrieval.backends.atomic_files import TEMP_PREFIX, fsync_path, write_npy
from retrieval.errors import RetrievalError

POLL_SECONDS = 0.25
LOG_FILE = "build.log"
_ROWS_LINE = re.compile(r"^rows (\d+)/(\d+)$")
# Seismic prints a line as each build phase ends: (its start, what runs next). Unknown output just shows no phase.
PHASES = (("saved", "saved"), ("Building summaries", "saving"), ("Distributing and pruning", "building summaries"),
          ("Building the index", "pruning postings"))


_builds_started = 0


def builds_started() -> int:
    """How many builds this process has started (what a benchmark checks stays put while it searches)."""
    return _builds_started


def build_seismic_file(matrix: sparse.csr_matrix, params: SeismicParams, final: Path, *, progress: bool = False) -> float:
    """Build the Seismic index of `matrix`'s rows into `final` (a new name; atomic rename); return the seconds it took."""
    global _builds_started
    _builds_started += 1
    work = final.with_name(f"{TEMP_PREFIX}{final.name}-{os.getpid()}.d")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    start = time.perf_counter()
    try:
        write_npy(work / "indptr.npy", np.asarray(matrix.indptr, dtype=np.int64))
        write_npy(work / "indices.npy", np.asarray(matrix.indices, dtype=np.int32))
        write_npy(work / "data.npy", np.asarray(matrix.data, dtype=np.float32))
        (work / "job.json").write_text(json.dumps({"shape": list(matrix.shape), "params": params.to_json()}), encoding="utf-8")
        built = work / f"index{SeismicScorer.SUFFIX}"
        _run_child(work, matrix.shape[0], progress)
        if not built.is_file():
            raise RetrievalError(f"building the Seismic index {final} left no file; its log: {_log_tail(work)}")
        fsync_path(built)
        os.replace(built, final)
        fsync_path(final.parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return time.perf_counter() - start


def _run_child(work: Path, rows: int, progress: bool) -> None:
    """Run `python -m retrieval.backends.seismic_build WORK` with this process's import path; show its phases."""
    from tqdm import tqdm

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    with open(work / LOG_FILE, "wb") as log:
        child = subprocess.Popen([sys.executable, "-m", "retrieval.backends.seismic_build", str(work)],
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        with tqdm(total=rows, unit="passage", desc="Seismic index", disable=not progress, smoothing=0.1) as bar:
            while child.poll() is None:
                time.sleep(POLL_SECONDS)
                _show_phase(bar, work)
            _show_phase(bar, work)
    finally:
        if child.poll() is None:  # interrupted (Ctrl-C) or failed while waiting: do not leave it running
            child.kill()
            child.wait()
    if child.returncode != 0:
        raise RetrievalError(f"building the Seismic index failed (exit code {child.returncode}): {_log_tail(work)}")


def _show_phase(bar, work: Path) -> None:
    """Rows handed to Seismic so far, then the build phase Seismic's own output says it is in, as the bar's postfix."""
    lines = _log_lines(work)
    rows = [int(m.group(1)) for m in map(_ROWS_LINE.match, lines) if m]
    if rows and rows[-1] > bar.n:
        bar.update(rows[-1] - bar.n)
    phase = next((label for line in reversed(lines) for prefix, label in PHASES if line.startswith(prefix)), None)
    if phase is None and rows:
        phase = "reading rows"
    if phase is not None:
        bar.set_postfix_str(phase, refresh=False)
    bar.refresh()


def _log_lines(work: Path) -> list[str]:
    try:
        text = (work / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def _log_tail(work: Path, lines: int = 8) -> str:
    return " | ".join(_log_lines(work)[-lines:]) or "(no output)"


def _child_main(work: Path) -> None:
    """In the child: load the arrays, build the index, save it as `work/index.index.seismic`."""
    job = json.loads((work / "job.json").read_text(encoding="utf-8"))
    arrays = {name: np.load(work / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in ("indptr", "indices", "data")}
    matrix = sparse.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(job["shape"]))
    rows = matrix.shape[0]
    scorer = SeismicScorer(matrix, SeismicParams(**job["params"]), on_rows=lambda done: print(f"rows {done}/{rows}", flush=True))
    scorer.save(work / f"index{SeismicScorer.SUFFIX}")
    print("saved", flush=True)


if __name__ == "__main__":
    _child_main(Path(sys.argv[1]))
