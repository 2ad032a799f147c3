"""Approximate sparse top-k from impact-ordered postings: score the query's heaviest postings, re-score the best rows exactly.

Each token's postings are sorted by weight, heaviest first. A query scores only the postings whose impact (query
weight x passage weight) is among the heaviest `posting_fraction` of all its tokens' postings (one impact threshold
across the tokens, found by bisection), keeps the `candidates` rows with the best partial sums and re-scores those
exactly from the passage rows. The cost follows the postings scored, not the corpus size. It is "anytime"
(score-at-a-time) ranking, as in JASS (Lin & Trotman, ICTIR 2015), with Seismic's exact re-scoring of candidates.

Measured by `ksearch bench scale` beside Seismic; `EmbeddedIndex` still takes its approximate candidates from Seismic.
The kernels are compiled by numba (a dependency); the first search in a process compiles them
(or loads them from numba's cache).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

import numba
import numpy as np
from scipy import sparse


@dataclass
class ImpactParams:
    """Search settings; the defaults reached recall@10 >= 0.98 against exact scoring up to 1M synthetic passages
    shaped like the shipped model's vectors (docs/benchmarks.md, `ksearch bench scale`)."""

    posting_fraction: float = 0.1  # share of the query tokens' postings scored, heaviest impacts first
    candidates: int = 1000  # rows with the best partial sums, re-scored exactly

    def to_json(self) -> dict:
        """Plain dict for the results document."""
        return asdict(self)


BLOCK_ROWS = 1 << 15  # rows per accumulator block: its float32 partial sums (128 KiB) stay in the CPU's cache
SAMPLE_EVERY = 16  # every 16th weight of each token's postings, heaviest first: what sizes the impact threshold


@numba.njit(cache=True, nogil=True)
def _order_postings(indptr, indices, data, n_blocks, block_rows):  # pragma: no cover - compiled
    """Reorder each column's postings by (row block, weight descending) in place; return the block starts per column
    (n_cols x n_blocks+1) and every SAMPLE_EVERY-th weight of each column sorted descending, with its offsets."""
    n_cols = len(indptr) - 1
    starts = np.empty((n_cols, n_blocks + 1), dtype=np.int64)
    sample_ptr = np.zeros(n_cols + 1, dtype=np.int64)
    for c in range(n_cols):
        sample_ptr[c + 1] = sample_ptr[c] + (indptr[c + 1] - indptr[c] + SAMPLE_EVERY - 1) // SAMPLE_EVERY
    samples = np.empty(sample_ptr[n_cols], dtype=np.float32)
    for c in range(n_cols):
        s, e = indptr[c], indptr[c + 1]
        w = data[s:e].copy()
        by_weight = np.argsort(-w, kind="mergesort")
        for j in range(sample_ptr[c + 1] - sample_ptr[c]):
            samples[sample_ptr[c] + j] = w[by_weight[j * SAMPLE_EVERY]]
        rows = indices[s:e].copy()
        key = (rows[by_weight] // block_rows).astype(np.int64)
        order = by_weight[np.argsort(key, kind="mergesort")]  # stable: weight order within a block
        indices[s:e] = rows[order]
        data[s:e] = w[order]
        b = 0
        starts[c, 0] = s
        for p in range(s, e):
            while indices[p] // block_rows > b:
                b += 1
                starts[c, b] = p
        while b < n_blocks:
            b += 1
            starts[c, b] = e
    return starts, samples, sample_ptr


@numba.njit(cache=True, nogil=True)
def _estimated_postings(samples, sample_ptr, cols, qw, threshold):  # pragma: no cover - compiled
    """About how many postings of the query tokens have impact >= threshold (from each token's sampled weights)."""
    n = 0
    for i in range(len(cols)):
        s, e = sample_ptr[cols[i]], sample_ptr[cols[i] + 1]
        n += (_heavy_end(samples, s, e, threshold / qw[i]) - s) * SAMPLE_EVERY
    return n


@numba.njit(cache=True, nogil=True)
def _heavy_end(data, s, e, bound):  # pragma: no cover - compiled
    """First position in data[s:e] (weights descending) whose weight is below bound."""
    lo, hi = s, e
    while lo < hi:
        mid = (lo + hi) // 2
        if data[mid] >= bound:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def _search(p_indices, p_data, starts, samples, sample_ptr, r_indptr, r_indices, r_data, cols, qw, fraction,
            n_candidates, block_rows, acc, touched, rows_out, partial_out, qdense):  # pragma: no cover - compiled
    """(rows, exact scores) of the best `n_candidates` rows by partial score over the heaviest impacts; unsorted."""
    n_blocks = starts.shape[1] - 1
    total = 0
    top = 0.0
    for i in range(len(cols)):
        c = cols[i]
        total += starts[c, n_blocks] - starts[c, 0]
        if sample_ptr[c + 1] > sample_ptr[c] and samples[sample_ptr[c]] * qw[i] > top:
            top = samples[sample_ptr[c]] * qw[i]
    budget = np.int64(np.ceil(total * fraction))
    threshold = 0.0
    if budget < total:  # the highest impact threshold that lets about `budget` postings through
        lo, hi = 0.0, top
        for _ in range(32):
            mid = 0.5 * (lo + hi)
            if _estimated_postings(samples, sample_ptr, cols, qw, mid) >= budget:
                lo = mid
            else:
                hi = mid
        threshold = lo
    n_out = 0
    for b in range(n_blocks):
        base = b * block_rows
        n_touched = 0
        for i in range(len(cols)):
            c = cols[i]
            w = qw[i]
            s = starts[c, b]
            e = _heavy_end(p_data, s, starts[c, b + 1], threshold / w) if threshold > 0 else starts[c, b + 1]
            for p in range(s, e):
                impact = p_data[p] * w
                if impact > 0:
                    local = p_indices[p] - base
                    touched[n_touched] = local  # kept only if this is the row's first posting: no branch to mispredict
                    n_touched += acc[local] == 0
                    acc[local] += impact
        for j in range(n_touched):
            rows_out[n_out] = base + touched[j]
            partial_out[n_out] = acc[touched[j]]
            acc[touched[j]] = 0.0
            n_out += 1
    if n_out > n_candidates:
        cut = np.partition(partial_out[:n_out], n_out - n_candidates)[n_out - n_candidates]
    else:
        cut = -np.inf
    keep = min(n_out, n_candidates)
    rows = np.empty(keep, dtype=np.int64)
    n_rows = 0
    for j in range(n_out):
        if partial_out[j] > cut and n_rows < keep:
            rows[n_rows] = rows_out[j]
            n_rows += 1
    for j in range(n_out):  # rows tied with the cut fill what is left
        if partial_out[j] == cut and n_rows < keep:
            rows[n_rows] = rows_out[j]
            n_rows += 1
    for i in range(len(cols)):
        qdense[cols[i]] = qw[i]
    scores = np.zeros(n_rows, dtype=np.float64)
    for j in range(n_rows):
        row = rows[j]
        total_score = 0.0
        for p in range(r_indptr[row], r_indptr[row + 1]):
            total_score += r_data[p] * qdense[r_indices[p]]
        scores[j] = total_score
    for i in range(len(cols)):
        qdense[cols[i]] = 0.0
    return rows[:n_rows], scores


class ImpactScorer:
    """Impact-ordered postings over the rows of a CSR matrix (built in memory: a copy of the postings, reordered)."""

    def __init__(self, csr: sparse.csr_matrix, params: ImpactParams | None = None) -> None:
        """Reorder a column-major copy of `csr` by row block and weight (seconds at a million rows)."""
        self.params = params or ImpactParams()
        self.rows = sparse.csr_matrix(csr, dtype=np.float32)
        self.rows.sort_indices()
        postings = self.rows.tocsc()
        n_rows, self._n_cols = self.rows.shape
        self._block_rows = min(BLOCK_ROWS, max(1, n_rows))
        n_blocks = max(1, -(-n_rows // self._block_rows))
        self._p_indices = postings.indices.astype(np.int32, copy=True)
        self._p_data = postings.data.astype(np.float32, copy=True)
        self._starts, self._samples, self._sample_ptr = _order_postings(
            postings.indptr.astype(np.int64), self._p_indices, self._p_data, n_blocks, self._block_rows)
        self._r_indptr = self.rows.indptr.astype(np.int64)
        self._r_indices = self.rows.indices.astype(np.int32)
        self._r_data = self.rows.data
        self._scratch = threading.local()  # per-thread buffers: searches may run in several threads at once

    @property
    def nbytes(self) -> int:
        """Memory of the reordered postings and their look-up tables (the rows are a float32 CSR copy of the input's)."""
        return sum(a.nbytes for a in (self._p_indices, self._p_data, self._starts, self._samples, self._sample_ptr))

    def _buffers(self) -> tuple[np.ndarray, ...]:
        buffers = getattr(self._scratch, "buffers", None)
        if buffers is None:
            buffers = (np.zeros(self._block_rows, np.float32), np.empty(self._block_rows, np.int32),
                       np.empty(self.rows.shape[0], np.int64), np.empty(self.rows.shape[0], np.float32),
                       np.zeros(self._n_cols, np.float32))
            self._scratch.buffers = buffers
        return buffers

    def candidates(self, cols: np.ndarray, weights: np.ndarray, *, posting_fraction: float | None = None,
                   candidates: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, exact scores) of the rows the approximate pass keeps, unsorted; only positive query weights count."""
        cols = np.asarray(cols, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float32)
        keep = weights > 0
        cols, weights = cols[keep], weights[keep]
        if not cols.size or not self.rows.shape[0]:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        fraction = self.params.posting_fraction if posting_fraction is None else posting_fraction
        wanted = self.params.candidates if candidates is None else candidates
        return _search(self._p_indices, self._p_data, self._starts, self._samples, self._sample_ptr, self._r_indptr,
                       self._r_indices, self._r_data, cols, weights, float(fraction), int(wanted), self._block_rows,
                       *self._buffers())

    def top_k(self, cols: np.ndarray, weights: np.ndarray, k: int, *, posting_fraction: float | None = None,
              candidates: int | None = None) -> list[int]:
        """Approximate top-k rows for one query, best first (ties: lower row first); rows scoring 0 are left out."""
        rows, scores = self.candidates(cols, weights, posting_fraction=posting_fraction,
                                       candidates=max(k, candidates or self.params.candidates))
        order = np.lexsort((rows, -scores))[:k]
        return [int(rows[i]) for i in order if scores[i] > 0]
