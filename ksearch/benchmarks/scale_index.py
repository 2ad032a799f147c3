"""Scale through a real `EmbeddedIndex`: a synthetic corpus written as an ingest writes it (batches, then
`finish_writes`, which builds the approximate index), then searched by a freshly opened reader through `search`.

What it shows: where the build happens (at the end of the ingest, timed there), that searches never build (a counter
of builds and the index folder's files, checked before and after the searches), the latency and recall of what a
user's search runs (the index's approximate path, not only its kernel), and how that latency splits between the
kernel (`ImpactScorer.candidates` on the reader's mapped postings, the same queries) and the Python around it."""

from __future__ import annotations

import gc
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse

from ksearch.benchmarks.latency import timed_calls
from ksearch.benchmarks.measure import rss_bytes
from retrieval.backends import EmbeddedIndex
from retrieval.backends.approximate_search import APPROXIMATE_DEPTH
from retrieval.backends.impact_file import builds_started
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


def _ingest(root: Path, csr: sparse.csr_matrix, features: Sequence[str]) -> dict:
    """Write `csr` into a new index at `root` as an ingest does (approximate search on at its size); timings."""
    start_builds = builds_started()
    writer = EmbeddedIndex.create(root, IndexMeta(name=root.name, model_id="synthetic", vocab_hash="synthetic"))
    writer.approximate_above = csr.shape[0]  # searches of this size approximate, so the ingest builds the index
    t0 = time.perf_counter()
    _write(writer, csr, features)
    t1 = time.perf_counter()
    writer.finish_writes()
    t2 = time.perf_counter()
    writer.close()
    ann = writer.manifest.ann
    return {"write_seconds": t1 - t0, "finish_writes_seconds": t2 - t1,
            "build_seconds_at_ingest": ann.build_seconds if ann else None,
            "builds_at_ingest": builds_started() - start_builds}


def bench_through_index(csr: sparse.csr_matrix, features: Sequence[str], queries: Sequence[Query], k: int,
                        home: Path) -> dict:
    """Ingest `csr`'s rows into a new embedded index under `home` (deleted afterwards), then search it; see the module doc."""
    size = csr.shape[0]
    root = home / f"bench-scale-{size}"
    shutil.rmtree(root, ignore_errors=True)
    try:
        out = _ingest(root, csr, features)
        gc.collect()
        before, start_builds, rss0 = _files(root), builds_started(), rss_bytes()
        reader = EmbeddedIndex.open(root)
        reader.approximate_above = size
        vectors = [{features[c]: float(w) for c, w in zip(cols, weights)} for cols, weights in queries]
        t0 = time.perf_counter()
        reader.search(vectors[0], k, per_document=False)  # assembles the live rows, maps the postings
        out["first_search_ms"] = (time.perf_counter() - t0) * 1000
        out["reader_rss_mb"] = (rss_bytes() - rss0) / 2**20
        out["latency_ms"], approx = timed_calls(lambda q: [h.id for h in reader.search(q, k, per_document=False)],
                                                vectors)
        out["documents_latency_ms"], _ = timed_calls(lambda q: reader.search(q, k), vectors)  # the CLI's default
        scorer = reader.approximate._loaded[1] if reader.approximate._loaded else None
        if scorer is not None:  # the kernel alone, on the reader's own scorer and query columns
            view = reader._view()
            columns = [view.query_columns(q) for q in vectors]
            wanted = max(scorer.params.candidates, APPROXIMATE_DEPTH * k)
            out["kernel_ms"], _ = timed_calls(lambda cw: scorer.candidates(*cw, candidates=wanted), columns)
            out["postings_mb"] = scorer.nbytes / 2**20
        out["builds_during_searches"] = builds_started() - start_builds
        out["searches_used_approximate"] = reader.approximate_status().state.value == "ready" and scorer is not None
        out["notice"] = reader.search_notice()
        after = _files(root)
        out["index_files_changed_by_searches"] = sum(1 for n in set(before) | set(after) if before.get(n) != after.get(n))
        reader.approximate_above = None
        out["exact_latency_ms"], exact = timed_calls(lambda q: [h.id for h in reader.search(q, k, per_document=False)],
                                                     vectors)
        out["recall_at_10"] = float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact) if e]))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out
