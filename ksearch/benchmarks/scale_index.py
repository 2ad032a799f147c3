"""Scale through a real `EmbeddedIndex`: a synthetic corpus written as an ingest writes it (batches, then
`finish_writes`, which builds the Seismic index), then searched by a freshly opened reader through `search`.

What it shows: where the Seismic build happens (at the end of the ingest, timed there) and that searches never
build it (a counter of builds and the index folder's files, checked before and after the searches), so the
search latency is the search's own; the first search also loads the Seismic file (a reader's work)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse

from ksearch.benchmarks.latency import percentiles
from retrieval.backends import EmbeddedIndex
from retrieval.backends.seismic_build import builds_started
from retrieval.index_meta import IndexMeta
from retrieval.passage import Passage

WRITE_BATCH = 5_000  # passages per add(), as an ingest's write batches (larger: fewer segments to compact)

Query = tuple[np.ndarray, np.ndarray]


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def _write(index: EmbeddedIndex, csr: sparse.csr_matrix, features: Sequence[str]) -> None:
    names = np.asarray(features, dtype=object)
    for start in range(0, csr.shape[0], WRITE_BATCH):
        part = csr[start : start + WRITE_BATCH]
        passages, vectors = [], []
        for r in range(part.shape[0]):
            s, e = part.indptr[r], part.indptr[r + 1]
            row = start + r
            passages.append(Passage(id=f"s{row}#0", doc_id=f"s{row}", text=f"p{row}"))
            vectors.append(dict(zip(names[part.indices[s:e]].tolist(), part.data[s:e].astype(float).tolist())))
        index.add(passages, vectors)


def bench_through_index(csr: sparse.csr_matrix, features: Sequence[str], queries: Sequence[Query], k: int,
                        home: Path) -> dict:
    """Ingest `csr`'s rows into a new embedded index under `home` (deleted afterwards), then search it; see the module doc."""
    size = csr.shape[0]
    root = home / f"bench-scale-{size}"
    shutil.rmtree(root, ignore_errors=True)
    meta = IndexMeta(name=root.name, model_id="synthetic", vocab_hash="synthetic")
    try:
        start_builds = builds_started()
        writer = EmbeddedIndex.create(root, meta)
        writer.approximate_above = size  # searches of this size use Seismic, so the ingest builds it
        t0 = time.perf_counter()
        _write(writer, csr, features)
        t1 = time.perf_counter()
        writer.finish_writes()
        t2 = time.perf_counter()
        writer.close()
        builds_at_ingest = builds_started() - start_builds
        ann = writer.manifest.ann
        before = _files(root)

        reader = EmbeddedIndex.open(root)
        reader.approximate_above = size
        vectors = [{features[c]: float(w) for c, w in zip(cols, weights)} for cols, weights in queries]
        t3 = time.perf_counter()
        reader.search(vectors[0], k, per_document=False)  # loads the Seismic file
        first_ms = (time.perf_counter() - t3) * 1000
        times, approx = [], []
        for q in vectors:
            t = time.perf_counter()
            approx.append([h.id for h in reader.search(q, k, per_document=False)])
            times.append((time.perf_counter() - t) * 1000)
        builds_in_searches = builds_started() - start_builds - builds_at_ingest
        used_seismic = reader.approximate_status().state.value == "ready"
        notice = reader.search_notice()
        after = _files(root)
        files_changed = sum(1 for name in set(before) | set(after) if before.get(name) != after.get(name))
        reader.approximate_above = None
        exact = [[h.id for h in reader.search(q, k, per_document=False)] for q in vectors]
        recall = float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact) if e]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"write_seconds": t1 - t0, "finish_writes_seconds": t2 - t1,
            "seismic_build_seconds_at_ingest": ann.build_seconds if ann else None,
            "seismic_builds_at_ingest": builds_at_ingest, "seismic_builds_during_searches": builds_in_searches,
            "index_files_changed_by_searches": files_changed, "searches_used_seismic": used_seismic, "notice": notice,
            "first_search_ms": first_ms, "latency_ms": percentiles(times), "recall_at_10": recall}
