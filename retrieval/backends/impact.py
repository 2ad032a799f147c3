"""Approximate sparse top-k from impact-ordered postings: score the query's heaviest postings, re-score the best rows exactly.

Each token's postings are sorted by weight, heaviest first. A query scores only the postings whose impact (query
weight x passage weight) is among the heaviest `posting_fraction` of all its tokens' postings (one impact threshold
across the tokens, found by bisection), keeps the `candidates` rows with the best partial sums and re-scores those
exactly from the passage rows. The cost follows the postings scored, not the corpus size. It is "anytime"
(score-at-a-time) ranking, as in JASS (Lin & Trotman, ICTIR 2015), with Seismic's exact re-scoring of candidates.

`EmbeddedIndex` takes its approximate candidates from here: its writer builds the postings into files
(`impact_file.py`), its readers map them. The kernels are compiled by numba (a dependency) and release the GIL;
the first call in a process compiles them (or loads them from numba's cache).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numba
import numpy as np
from scipy import sparse

METHOD = "impact-ordered postings"
BLOCK_ROWS = 1 << 15  # rows per accumulator block: its float32 partial sums (128 KiB) stay in the CPU's cache
SAMPLE_EVERY = 16  # every 16th weight of each token's postings, heaviest first: what sizes the impact threshold
ARRAYS = ("indices", "weights", "starts", "samples", "sample_ptr")  # an `ImpactPostings`' arrays, as stored
_TINY = float(np.finfo(np.float32).tiny)  # the least partial sum a row with a scored posting can have
CHUNK_POSTINGS = 1 << 22  # postings ordered per kernel call while building (the progress callback's step)


@dataclass
class ImpactParams:
    """Search settings; the defaults reached recall@10 >= 0.98 against exact scoring up to 1M synthetic passages
    shaped like the shipped model's vectors (docs/benchmarks.md, `ksearch bench scale`)."""

    posting_fraction: float = 0.1  # share of the query tokens' postings scored, heaviest impacts first
    candidates: int = 1000  # rows with the best partial sums, re-scored exactly

    def to_json(self) -> dict:
        """Plain dict for the results document."""
        return asdict(self)


def build_settings() -> dict:
    """What a built `ImpactPostings` depends on besides the rows: an index built with other settings is rebuilt."""
    return {"method": METHOD, "max_block_rows": BLOCK_ROWS, "sample_every": SAMPLE_EVERY}


@dataclass(frozen=True)
class ImpactPostings:
    """Each token's postings ordered by (row block, weight descending), with what a search needs to find the heavy ones:
    the block starts per token and every SAMPLE_EVERY-th weight of each token's postings, heaviest first."""

    indices: np.ndarray  # int32: the row of each posting
    weights: np.ndarray  # float32
    starts: np.ndarray  # int64, tokens x (blocks + 1): where each token's postings of each row block start
    samples: np.ndarray  # float32
    sample_ptr: np.ndarray  # int64, tokens + 1: each token's samples
    block_rows: int
    n_rows: int

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays."""
        return sum(getattr(self, name).nbytes for name in ARRAYS)


def block_rows_for(n_rows: int) -> int:
    """Rows per accumulator block of an index of `n_rows` rows."""
    return min(BLOCK_ROWS, max(1, n_rows))


def build_postings(postings: sparse.csc_matrix, *, allocate: Callable[[str, tuple, type], np.ndarray] | None = None,
                   on_postings: Callable[[int], None] | None = None) -> ImpactPostings:
    """Impact-ordered copy of `postings` (rows x tokens, column-major; not changed); `allocate(name, shape, dtype)`
    makes the output arrays (default: in memory; the index writes them into files), `on_postings(n)` reports progress."""
    allocate = allocate or (lambda name, shape, dtype: np.empty(shape, dtype=dtype))
    n_rows, n_cols = postings.shape
    block_rows = block_rows_for(n_rows)
    n_blocks = max(1, -(-n_rows // block_rows))
    indptr = np.asarray(postings.indptr, dtype=np.int64)
    per_col = (np.diff(indptr) + SAMPLE_EVERY - 1) // SAMPLE_EVERY
    sample_ptr = allocate("sample_ptr", (n_cols + 1,), np.int64)
    sample_ptr[0] = 0
    np.cumsum(per_col, out=sample_ptr[1:])
    out = {"indices": allocate("indices", (postings.nnz,), np.int32),
           "weights": allocate("weights", (postings.nnz,), np.float32),
           "starts": allocate("starts", (n_cols, n_blocks + 1), np.int64),
           "samples": allocate("samples", (int(sample_ptr[-1]),), np.float32)}
    c0 = 0
    while c0 < n_cols:  # column ranges of about CHUNK_POSTINGS postings
        c1 = max(c0 + 1, int(np.searchsorted(indptr, indptr[c0] + CHUNK_POSTINGS, side="right")) - 1)
        c1 = min(c1, n_cols)
        _order_columns(indptr, postings.indices, postings.data, c0, c1, block_rows, out["indices"], out["weights"],
                       out["starts"], out["samples"], sample_ptr)
        if on_postings is not None:
            on_postings(int(indptr[c1] - indptr[c0]))
        c0 = c1
    return ImpactPostings(**out, sample_ptr=sample_ptr, block_rows=block_rows, n_rows=n_rows)


@numba.njit(cache=True, nogil=True)
def _order_columns(indptr, indices, data, c0, c1, block_rows, out_indices, out_data, starts, samples,
                   sample_ptr):  # pragma: no cover - compiled
    """Columns c0..c1 of the CSC arrays into the outputs, each ordered by (row block, weight descending), with their
    block starts and sampled weights."""
    n_blocks = starts.shape[1] - 1
    for c in range(c0, c1):
        s, e = indptr[c], indptr[c + 1]
        w = data[s:e].astype(np.float32)
        by_weight = np.argsort(-w, kind="mergesort")
        for j in range(sample_ptr[c + 1] - sample_ptr[c]):
            samples[sample_ptr[c] + j] = w[by_weight[j * SAMPLE_EVERY]]
        rows = indices[s:e]
        key = rows[by_weight] // block_rows
        order = by_weight[np.argsort(key, kind="mergesort")]  # stable: weight order within a block
        for j in range(e - s):
            out_indices[s + j] = rows[order[j]]
            out_data[s + j] = w[order[j]]
        b = 0
        starts[c, 0] = s
        for p in range(s, e):
            while out_indices[p] // block_rows > b:
                b += 1
                starts[c, b] = p
        while b < n_blocks:
            b += 1
            starts[c, b] = e


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
def _search(p_indices, p_data, starts, samples, sample_ptr, r_indptr, r_indices, r_data, all_cols, all_qw, fraction,
            n_candidates, block_rows, acc, crossed, rows_out, partial_out, qdense):  # pragma: no cover - compiled
    """(rows, exact scores) of the best `n_candidates` rows by partial score over the heaviest impacts of the query's
    positive weights, unsorted; the exact scores count every weight. Columns outside the postings are left out."""
    n_blocks = starts.shape[1] - 1
    n_cols = starts.shape[0]
    n_q = 0
    for i in range(len(all_cols)):
        n_q += all_cols[i] >= 0 and all_cols[i] < n_cols and all_qw[i] > 0
    cols = np.empty(n_q, dtype=np.int64)  # the positive weights choose the candidates
    qw = np.empty(n_q, dtype=np.float32)
    n_q = 0
    for i in range(len(all_cols)):
        if all_cols[i] >= 0 and all_cols[i] < n_cols and all_qw[i] > 0:
            cols[n_q] = all_cols[i]
            qw[n_q] = all_qw[i]
            n_q += 1
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
    # A row is a candidate once its partial sum reaches `floor`: the n_candidates-th best sum collected so far (a
    # lower bound of the final cut), raised between blocks. Sums only grow (weights are > 0), so a row is recorded
    # once, when its sum crosses the floor: no per-row bookkeeping for the many rows that never reach it (at 1M
    # passages ~180,000 postings touch ~170,000 rows; recording every first touch took 2.5 of 3.5 ms per search,
    # recording crossings ~0.4 ms).
    n_out = 0
    floor = np.float32(_TINY)
    for b in range(n_blocks):
        base = b * block_rows
        n_crossed = 0
        scored = False
        for i in range(len(cols)):
            c = cols[i]
            w = qw[i]
            bound = threshold / w
            s, e = starts[c, b], starts[c, b + 1]
            if s < e and p_data[s] >= bound:
                scored = True
            # Heaviest first: stop at the first weight under the bound. (A binary search for it cost ~10 cache misses
            # per token and block, far from the postings then read.)
            for p in range(s, e):
                weight = p_data[p]
                if weight < bound:
                    break
                local = p_indices[p] - base
                before = acc[local]
                after = before + weight * w
                acc[local] = after
                if after >= floor and before < floor and n_crossed < len(crossed):  # (the last test: damaged files)
                    crossed[n_crossed] = local
                    n_crossed += 1
        for j in range(min(n_crossed, len(rows_out) - n_out)):
            rows_out[n_out] = base + crossed[j]
            partial_out[n_out] = acc[crossed[j]]
            n_out += 1
        if scored:
            acc[: min(block_rows, len(r_indptr) - 1 - base)] = 0.0
        if n_candidates > 0 and n_out >= 2 * n_candidates:
            floor = np.partition(partial_out[:n_out], n_out - n_candidates)[n_out - n_candidates]
            n_out = _compact(rows_out, partial_out, n_out, floor)
    rows = _best_rows(rows_out, partial_out, n_out, n_candidates)
    n_rows = len(rows)
    for i in range(len(all_cols)):
        if all_cols[i] >= 0 and all_cols[i] < n_cols:
            qdense[all_cols[i]] = all_qw[i]
    row_start = np.empty(n_rows, dtype=np.int64)
    row_end = np.empty(n_rows, dtype=np.int64)
    for j in range(n_rows):  # independent loads first: their cache misses overlap (a quarter of the re-scoring)
        row_start[j] = r_indptr[rows[j]]
        row_end[j] = r_indptr[rows[j] + 1]
    touched = 0
    for j in range(n_rows):  # one load per cache line of every row first: their misses overlap (~0.1-0.3 ms at 1M)
        for p in range(row_start[j], row_end[j], 16):
            touched += r_indices[p] + np.int32(r_data[p] > 0)
    if n_rows > 0:
        crossed[0] = touched  # (a use of the loads, so that the compiler keeps them; crossed is scratch)
    scores = np.zeros(n_rows, dtype=np.float64)
    for j in range(n_rows):
        total_score = 0.0
        for p in range(row_start[j], row_end[j]):
            total_score += r_data[p] * qdense[r_indices[p]]
        scores[j] = total_score
    for i in range(len(all_cols)):
        if all_cols[i] >= 0 and all_cols[i] < n_cols:
            qdense[all_cols[i]] = 0.0
    return rows, scores


@numba.njit(cache=True, nogil=True)
def _compact(rows_out, partial_out, n_out, floor):  # pragma: no cover - compiled
    """Keep (in order) the collected rows whose partial sum reaches floor; return how many."""
    k = 0
    for j in range(n_out):
        if partial_out[j] >= floor:
            rows_out[k] = rows_out[j]
            partial_out[k] = partial_out[j]
            k += 1
    return k


@numba.njit(cache=True, nogil=True)
def _best_rows(rows_out, partial_out, n_out, n_candidates):  # pragma: no cover - compiled
    """rows_out[j] of the `n_candidates` largest partial_out[j] (j < n_out), in scan order, those tied with the cut
    last (the first ones of them)."""
    if n_out <= n_candidates:
        return rows_out[:n_out].copy()
    cut = np.partition(partial_out[:n_out], n_out - n_candidates)[n_out - n_candidates]
    rows = np.empty(n_candidates, dtype=np.int64)
    n = 0
    for j in range(n_out):
        if partial_out[j] > cut:
            rows[n] = rows_out[j]
            n += 1
    for j in range(n_out):  # rows tied with the cut fill what is left
        if partial_out[j] == cut and n < n_candidates:
            rows[n] = rows_out[j]
            n += 1
    return rows


def compile_search(rows: sparse.csr_matrix) -> None:
    """Compile the search kernel (or load it from numba's cache) for the arrays a search over `rows` with mapped,
    read-only postings passes, so that a build pays for it rather than the first search (at 1M passages that search
    took 19.5 s in a process with numba's cache empty)."""
    n_cols = rows.shape[1]

    def mapped(a: np.ndarray) -> np.ndarray:  # what `np.load(mmap_mode="r")` gives the reader: read-only arrays
        a.flags.writeable = False
        return a

    _search(mapped(np.zeros(0, np.int32)), mapped(np.zeros(0, np.float32)), mapped(np.zeros((n_cols, 2), np.int64)),
            mapped(np.zeros(0, np.float32)), mapped(np.zeros(n_cols + 1, np.int64)),
            np.zeros(2, rows.indptr.dtype), np.zeros(0, rows.indices.dtype), np.zeros(0, np.float32),
            np.zeros(0, np.int64), np.zeros(0, np.float64), 0.1, 1, 1, np.zeros(1, np.float32), np.empty(1, np.int32),
            np.empty(1, np.int64), np.empty(1, np.float32), np.zeros(n_cols, np.float64))


class ImpactScorer:
    """Impact-ordered postings over the rows of a CSR matrix, which the exact re-scoring reads."""

    def __init__(self, csr: sparse.csr_matrix, params: ImpactParams | None = None, *,
                 postings: ImpactPostings | None = None) -> None:
        """Search `postings` (built for `csr`'s rows, e.g. mapped from an index's files), or build them here in memory
        (seconds at a million rows); `csr` is used as it is when it holds float32 weights."""
        self.params = params or ImpactParams()
        rows = csr if csr.format == "csr" and csr.dtype == np.float32 else sparse.csr_matrix(csr, dtype=np.float32)
        self.rows = rows
        self.postings = postings if postings is not None else build_postings(rows.tocsc())
        if self.postings.n_rows != rows.shape[0] or self.postings.starts.shape[0] != rows.shape[1]:
            raise ValueError(f"impact-ordered postings of {self.postings.n_rows} rows x {self.postings.starts.shape[0]} "
                             f"tokens do not fit a matrix of {rows.shape[0]} x {rows.shape[1]}")
        self._scratch = threading.local()  # per-thread buffers: searches may run in several threads at once

    @property
    def nbytes(self) -> int:
        """Bytes of the postings and their look-up tables (the rows are the caller's)."""
        return self.postings.nbytes

    def _buffers(self) -> tuple[np.ndarray, ...]:
        buffers = getattr(self._scratch, "buffers", None)
        if buffers is None:
            n_rows, n_cols = self.rows.shape
            block_rows = self.postings.block_rows
            buffers = (np.zeros(block_rows, np.float32), np.empty(block_rows, np.int32), np.empty(n_rows, np.int64),
                       np.empty(n_rows, np.float32), np.zeros(n_cols, np.float64))
            self._scratch.buffers = buffers
        return buffers

    def candidates(self, cols: np.ndarray, weights: np.ndarray, *, posting_fraction: float | None = None,
                   candidates: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, exact scores) of the rows the approximate pass keeps, unsorted; positive query weights choose the
        candidates, every weight counts in their scores."""
        fraction = self.params.posting_fraction if posting_fraction is None else posting_fraction
        wanted = max(1, self.params.candidates if candidates is None else candidates)
        p, r = self.postings, self.rows
        return _search(p.indices, p.weights, p.starts, p.samples, p.sample_ptr, r.indptr, r.indices, r.data,
                       np.asarray(cols, dtype=np.int64), np.asarray(weights, dtype=np.float64), float(fraction),
                       int(wanted), p.block_rows, *self._buffers())

    def top_k(self, cols: np.ndarray, weights: np.ndarray, k: int, *, posting_fraction: float | None = None,
              candidates: int | None = None) -> list[int]:
        """Approximate top-k rows for one query, best first (ties: lower row first); rows scoring 0 are left out."""
        rows, scores = self.candidates(cols, weights, posting_fraction=posting_fraction,
                                       candidates=max(k, candidates or self.params.candidates))
        order = np.lexsort((rows, -scores))[:k]
        return [int(rows[i]) for i in order if scores[i] > 0]
