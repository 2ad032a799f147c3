"""Scale: exact embedded query latency and memory on synthetic corpora of growing size, and the approximate method
(impact-ordered postings, `retrieval/backends/impact.py`) with recall@10 against exact.

The kernels are timed on the matrices directly; with `through_index` each corpus is also ingested into a real
`EmbeddedIndex` and searched through it (`scale_index.py`: the index's own approximate path, where its build happens,
and that searches build nothing)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ksearch.benchmarks.bench_data import ensure_index, load_queries
from ksearch.benchmarks.encode import hardware_string
from ksearch.benchmarks.exact_scoring import full_matrix_top_k, index_top_k, matrix_mb
from ksearch.benchmarks.latency import timed_calls
from ksearch.benchmarks.measure import measure, rss_bytes
from ksearch.benchmarks.scale_index import bench_through_index
from ksearch.benchmarks.synthetic import real_distribution, synthetic_matrix
from retrieval.backends import BackendConfig
from retrieval.backends.impact import METHOD, ImpactParams, ImpactScorer
from retrieval.query import prepare_query_tokens

Query = tuple[np.ndarray, np.ndarray]  # (columns, weights)
# (posting_fraction, candidates) measured beside the default
IMPACT_OPERATING_POINTS = ((0.05, 1000), (0.1, 300), (0.1, 700), (0.12, 500), (0.15, 500), (0.2, 1000))


def encode_queries(encoder, texts: list[str], feature_index: dict[str, int]) -> list[Query]:
    """Real query vectors, as column ids of the index's feature space (tokens no passage has are dropped)."""
    out = []
    for vector in encoder.encode_queries(texts):
        items = [(feature_index[t], w) for t, w in prepare_query_tokens(vector).items() if t in feature_index]
        out.append((np.array([c for c, _ in items], dtype=np.int64), np.array([w for _, w in items], dtype=np.float64)))
    return out


def time_queries(fn: Callable[[np.ndarray, np.ndarray, int], list[int]], queries: Sequence[Query], k: int) -> tuple[dict, list[list[int]]]:
    """Latency percentiles (wall and CPU ms, `latency.timed_calls`) of fn over the queries and each query's result rows."""
    return timed_calls(lambda q: fn(q[0], q[1], k), queries)


def recall_at_k(approx: list[list[int]], exact: list[list[int]], k: int) -> float:
    """Mean |approx top-k & exact top-k| / |exact top-k|."""
    scores = [len(set(a[:k]) & set(e[:k])) / len(e[:k]) for a, e in zip(approx, exact) if e]
    return float(np.mean(scores)) if scores else 0.0


def bench_impact(csr, queries: list[Query], exact: list[list[int]], k: int, params: ImpactParams) -> dict:
    """Impact-ordered postings (`retrieval/backends/impact.py`): build time and memory, latency and recall@10 vs exact
    at its default settings and at IMPACT_OPERATING_POINTS."""
    ImpactScorer(csr[:2]).top_k(np.array([0]), np.array([1.0]), k)  # compiles (or loads) the kernels: not the build's time
    scorer, m = measure(lambda: ImpactScorer(csr, params))
    points = []
    for fraction, candidates in dict.fromkeys([(params.posting_fraction, params.candidates), *IMPACT_OPERATING_POINTS]):
        ms, approx = time_queries(lambda c, w, kk: scorer.top_k(c, w, kk, posting_fraction=fraction, candidates=candidates),
                                  queries, k)
        points.append({"posting_fraction": fraction, "candidates": candidates, "latency_ms": ms,
                       "recall_at_10": recall_at_k(approx, exact, 10)})
    return {"method": METHOD, "params": params.to_json(), "build_seconds": m.seconds,
            "build_extra_mb": m.peak_extra_mb, "postings_mb": scorer.nbytes / 2**20,
            "latency_ms": points[0]["latency_ms"], "recall_at_10": points[0]["recall_at_10"], "operating_points": points}


def bench_size(dist: dict, size: int, queries: list[Query], k: int, baseline_queries: int,
               impact_params: ImpactParams | None = None, index_home: Path | None = None,
               features: Sequence[str] = ()) -> dict:
    """Exact (index kernel and the full-matrix baseline) and approximate latency, memory and recall on one synthetic
    corpus; through a real index under `index_home` when given."""
    gc.collect()
    base = rss_bytes()
    t0 = time.perf_counter()
    csr = synthetic_matrix(dist, size, seed=size)
    csc = csr.tocsc()
    build_s = time.perf_counter() - t0
    row: dict = {"passages": size, "build_seconds": build_s, "mean_nonzero": float(csr.nnz / size),
                 "csr_mb": matrix_mb(csr), "csc_mb": matrix_mb(csc), "rss_extra_mb": (rss_bytes() - base) / 2**20}
    full, _ = time_queries(lambda c, w, kk: full_matrix_top_k(csr, c, w, kk), queries[:baseline_queries], k)
    exact_ms, exact = time_queries(lambda c, w, kk: index_top_k(csc, c, w, kk), queries, k)
    row["exact_index_ms"] = exact_ms  # EmbeddedIndex's kernel: postings of the query tokens + partitioned top-k
    row["exact_full_matrix_ms"] = full  # the kernel it replaced: CSR x dense query + full sort
    del csc
    if impact_params is not None:
        row["impact"] = bench_impact(csr, queries, exact, k, impact_params)
        gc.collect()
        if index_home is not None:
            row["index"] = bench_through_index(csr, features, queries, k, index_home)
    del csr
    return row


def sample_inputs(encoder, corpus: Path, queries_path: Path, splits: Path | None, *, config: BackendConfig,
                  index_name: str = "bench-sample", max_queries: int = 200):
    """The real index's live view (CSR matrix, feature names), its vector distribution and real query vectors."""
    store = ensure_index(corpus, index_name, encoder, backend="embedded", config=config)
    view = store._view()  # the live CSR matrix and feature names of the real passage vectors
    dist = real_distribution(view.matrix)
    queries = encode_queries(encoder, load_queries(queries_path, splits, "all", max_queries), view.feature_index)
    store.close()
    return view, dist, queries


def run_scale_bench(encoder, corpus: Path, queries_path: Path, splits: Path | None, *, config: BackendConfig,
                    index_name: str = "bench-sample", sizes: Sequence[int] = (10_000, 100_000), k: int = 10,
                    max_queries: int = 200, baseline_queries: int = 50, approximate: bool = True,
                    through_index: bool = True) -> dict:
    """Sample the real index's vector statistics, then benchmark every size; see the module docstring."""
    view, dist, queries = sample_inputs(encoder, corpus, queries_path, splits, config=config, index_name=index_name,
                                        max_queries=max_queries)
    impact = ImpactParams() if approximate else None
    home = config.home if through_index else None
    rows = [bench_size(dist, n, queries, k, baseline_queries, impact, home, view.features) for n in sizes]
    for prev, cur in zip(rows, rows[1:]):
        factor = cur["passages"] / prev["passages"]
        cur["growth_vs_previous"] = {
            "size_factor": factor,
            "exact_index_p50_factor": cur["exact_index_ms"]["p50"] / max(prev["exact_index_ms"]["p50"], 1e-9),
            "exact_full_matrix_p50_factor": cur["exact_full_matrix_ms"]["p50"] / max(prev["exact_full_matrix_ms"]["p50"], 1e-9),
            "memory_factor": cur["csr_mb"] / max(prev["csr_mb"], 1e-9)}
    return {"benchmark": "scale", "model": encoder.model_id, "hardware": hardware_string(),
            "real_index": {"passages": int(view.matrix.shape[0]), "features": int(view.matrix.shape[1]),
                           "mean_nonzero": float(view.matrix.nnz / max(1, view.matrix.shape[0]))},
            "queries": len(queries), "mean_query_tokens": float(np.mean([len(c) for c, _ in queries])) if queries else 0.0,
            "k": k, "approximate": f"{METHOD} (retrieval/backends/impact.py)" if impact else "not requested",
            "sizes": rows}
