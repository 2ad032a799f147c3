"""Sparse top-k from the approximate index's candidates (`impact.ImpactScorer`), scored exactly against the live rows,
then filtered and collapsed per document as an exact search would."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from retrieval.backends.base import SearchFilters
from retrieval.backends.live_view import LiveView
from retrieval.backends.top_k import top_k_rows

APPROXIMATE_DEPTH = 4  # candidates at least per wanted hit when filters or the document collapse may drop some


def approximate_top_k(view: LiveView, scorer, query_tokens: Mapping[str, float], k: int, filters: SearchFilters | None,
                      per_document: bool) -> tuple[list[int], dict[int, float]] | None:
    """(rows, exact score of each row) of the top k among `scorer`'s candidates (an `impact.ImpactScorer` of `view`'s
    rows); None when the filters and the document collapse leave fewer than k of them (the caller then searches
    exactly: rows outside the candidates may still match)."""
    cols, weights = view.query_columns(query_tokens)
    if not cols.size or k <= 0:
        return [], {}
    depth = k if filters is None and not per_document else APPROXIMATE_DEPTH * k
    rows, scores = scorer.candidates(cols, weights, candidates=max(depth, scorer.params.candidates))
    order = np.argsort(rows)  # row order breaks ties, as in the exact search
    rows, scores = rows[order], scores[order]
    keep = scores > 0
    if filters is not None and filters.domain is not None:
        keep &= view.domains[rows] == filters.domain
    picked = top_k_rows(scores, keep, k, view.doc_codes[rows] if per_document else None)  # positions in rows
    if len(picked) < k:
        return None
    return rows[picked].tolist(), {int(rows[i]): float(scores[i]) for i in picked}
