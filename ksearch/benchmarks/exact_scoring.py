"""Exact sparse top-k over a CSR/CSC matrix: the embedded index's kernel and an inverted (postings) kernel."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from retrieval.backends.top_k import top_k_rows


def library_top_k(csr: sparse.csr_matrix, cols: np.ndarray, weights: np.ndarray, k: int) -> list[int]:
    """What `EmbeddedIndex.search` does per passage: CSR x dense query, then `top_k_rows` over positive scores."""
    q = np.zeros(csr.shape[1], dtype=np.float64)
    q[cols] = weights
    scores = np.asarray(csr @ q, dtype=np.float64)
    return top_k_rows(scores, scores > 0, k)


def inverted_top_k(csc: sparse.csc_matrix, cols: np.ndarray, weights: np.ndarray, k: int) -> list[int]:
    """Exact dot product over the query tokens' postings only (CSC columns), then an argpartition top-k."""
    indptr, indices, data = csc.indptr, csc.indices, csc.data
    rows = np.concatenate([indices[indptr[c]:indptr[c + 1]] for c in cols]) if len(cols) else np.zeros(0, np.int32)
    vals = np.concatenate([data[indptr[c]:indptr[c + 1]] * w for c, w in zip(cols, weights)]) if len(cols) else rows
    scores = np.bincount(rows, weights=vals, minlength=csc.shape[0])
    if k >= scores.size:
        top = np.arange(scores.size)
    else:
        top = np.argpartition(-scores, k)[:k]
    top = top[np.lexsort((top, -scores[top]))]
    return [int(r) for r in top if scores[r] > 0]


def matrix_mb(m: sparse.spmatrix) -> float:
    """Bytes of a CSR/CSC matrix's arrays, in MiB."""
    return (m.data.nbytes + m.indices.nbytes + m.indptr.nbytes) / 2**20
