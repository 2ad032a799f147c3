"""Synthetic passage vectors that follow a real index's sparsity: per-passage length distribution, token document
frequency and each token's own weight distribution (all sampled from the real passage vectors)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

OVERSAMPLE = 1.35  # draws per wanted token before removing repeats within a passage


def real_distribution(matrix: sparse.csr_matrix) -> dict:
    """What synthetic passages are sampled from: row lengths, token draw probabilities, per-token weights (CSC)."""
    csc = matrix.tocsc()
    df = np.diff(csc.indptr).astype(np.float64)
    return {"lengths": np.diff(matrix.indptr), "token_p": df / df.sum(), "csc": csc, "features": matrix.shape[1]}


def synthetic_matrix(dist: dict, rows: int, seed: int = 0, chunk: int = 100_000) -> sparse.csr_matrix:
    """A `rows` x features CSR matrix whose rows follow `dist` (tokens drawn by document frequency, no repeats in a row)."""
    rng = np.random.default_rng(seed)
    parts = [_chunk(dist, min(chunk, rows - start), rng) for start in range(0, rows, chunk)]
    return sparse.vstack(parts, format="csr") if len(parts) > 1 else parts[0]


def _chunk(dist: dict, rows: int, rng: np.random.Generator) -> sparse.csr_matrix:
    lengths = rng.choice(dist["lengths"], size=rows)
    draws = np.ceil(lengths * OVERSAMPLE).astype(np.int64) + 4
    row_of = np.repeat(np.arange(rows, dtype=np.int64), draws)
    cols = rng.choice(dist["features"], size=row_of.size, p=dist["token_p"]).astype(np.int64)
    # Keep each (row, token)'s first draw, in draw order: the first `length` distinct tokens of a row are
    # then a weighted sample without replacement. (A stable argsort; np.unique + lexsort took 7x longer.)
    codes = row_of * dist["features"] + cols
    order = np.argsort(codes, kind="stable")
    first = np.ones(codes.size, dtype=bool)
    first[1:] = codes[order[1:]] != codes[order[:-1]]
    keep_draw = np.zeros(codes.size, dtype=bool)
    keep_draw[order[first]] = True
    row_of, cols = row_of[keep_draw], cols[keep_draw]
    starts = np.searchsorted(row_of, np.arange(rows))
    rank = np.arange(row_of.size) - starts[row_of]
    keep = rank < lengths[row_of]  # truncate each row to its sampled length
    row_of, cols = row_of[keep], cols[keep]
    csc = dist["csc"]
    counts = np.diff(csc.indptr)[cols]
    weights = csc.data[csc.indptr[cols] + (rng.random(cols.size) * counts).astype(np.int64)]  # the token's own weights
    m = sparse.csr_matrix((weights.astype(np.float32), (row_of, cols)), shape=(rows, dist["features"]))
    m.sort_indices()
    return m
