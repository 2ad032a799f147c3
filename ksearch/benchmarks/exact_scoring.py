"""Exact sparse top-k on a synthetic matrix: the embedded index's kernel and the full-matrix kernel it replaced."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from retrieval.backends.postings import posting_scores
from retrieval.backends.top_k import top_k_rows


def index_top_k(csc: sparse.csc_matrix, cols: np.ndarray, weights: np.ndarray, k: int) -> list[int]:
    """What `EmbeddedIndex.search` does per passage: the query tokens' postings, then a partitioned top-k."""
    scores = posting_scores(csc, cols, weights)
    return top_k_rows(scores, scores > 0, k)


def full_matrix_top_k(csr: sparse.csr_matrix, cols: np.ndarray, weights: np.ndarray, k: int) -> list[int]:
    """The previous kernel, kept as a baseline: CSR x dense query over every row, then a full sort of positive scores."""
    q = np.zeros(csr.shape[1], dtype=np.float64)
    q[cols] = weights
    scores = np.asarray(csr @ q, dtype=np.float64)
    rows = np.flatnonzero(scores > 0)
    return rows[np.argsort(-scores[rows], kind="stable")][:k].tolist()


def matrix_mb(m: sparse.spmatrix) -> float:
    """Bytes of a CSR/CSC matrix's arrays, in MiB."""
    return (m.data.nbytes + m.indices.nbytes + m.indptr.nbytes) / 2**20
