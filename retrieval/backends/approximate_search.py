"""Sparse top-k from a Seismic index's candidates, re-scored exactly against the live rows."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import sparse

from retrieval.backends.approximate import SeismicScorer
from retrieval.backends.base import SearchFilters
from retrieval.backends.live_view import LiveView
from retrieval.backends.top_k import top_k_rows

APPROXIMATE_DEPTH = 4  # Seismic candidates per wanted hit when filters or the document collapse may drop some


def row_dot(matrix: sparse.csr_matrix, rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Dot product of a few CSR rows with a dense query (scipy's row indexing costs more than this for tens of rows)."""
    indptr = matrix.indptr
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    if not lengths.sum():
        return np.zeros(len(rows), dtype=np.float64)
    ends = np.cumsum(lengths)
    positions = np.arange(ends[-1]) + np.repeat(starts - (ends - lengths), lengths)
    values = matrix.data[positions] * q[matrix.indices[positions]]
    return np.bincount(np.repeat(np.arange(len(rows)), lengths), weights=values, minlength=len(rows))


def approximate_top_k(view: LiveView, scorer: SeismicScorer, query_tokens: Mapping[str, float], k: int,
                      filters: SearchFilters | None, per_document: bool) -> tuple[list[int], dict[int, float]] | None:
    """(rows, exact score of each row) of the top k among Seismic's candidates; None when the filters and the
    document collapse leave fewer than k of a full candidate list (the caller then searches exactly)."""
    cols, weights = view.query_columns(query_tokens)
    if not cols.size or k <= 0:
        return [], {}
    depth = k if filters is None and not per_document else APPROXIMATE_DEPTH * k
    rows = np.sort(np.asarray(scorer.top_k(cols, weights, depth), dtype=np.int64))  # row order breaks ties
    q = np.zeros(len(view.features), dtype=np.float64)
    q[cols] = weights
    scores = row_dot(view.matrix, rows, q)  # exact: Seismic stores weights in half precision
    keep = scores > 0
    if filters is not None and filters.domain is not None:
        keep &= view.domains[rows] == filters.domain
    picked = top_k_rows(scores, keep, k, view.doc_codes[rows] if per_document else None)  # positions in rows
    if len(picked) < k and rows.size >= depth:
        return None
    return rows[picked].tolist(), dict(zip(rows.tolist(), scores.tolist()))
