"""Exact sparse dot products read from posting lists (a CSC matrix: one column of passages per token).

A query touches only its own tokens' postings, so the cost follows the postings' length rather than
the corpus size; scipy has no "sum of a few weighted columns into a dense vector" primitive that
avoids building a dense query and visiting every row, hence this small kernel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse


def posting_scores(postings: sparse.csc_matrix, columns: Sequence[int], weights: Sequence[float]) -> np.ndarray:
    """Dot product of the query (columns, weights) with every row; rows sharing no token score 0."""
    n_rows = postings.shape[0]
    if len(columns) == 0:
        return np.zeros(n_rows, dtype=np.float64)
    indptr, indices, data = postings.indptr, postings.indices, postings.data
    rows = np.concatenate([indices[indptr[c]:indptr[c + 1]] for c in columns])
    values = np.concatenate([data[indptr[c]:indptr[c + 1]] * np.float64(w) for c, w in zip(columns, weights)])
    return np.bincount(rows, weights=values, minlength=n_rows)
