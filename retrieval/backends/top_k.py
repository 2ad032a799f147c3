"""Top-k selection over a dense score array, optionally one row (the best) per document."""

from __future__ import annotations

import numpy as np


def top_k_rows(scores: np.ndarray, candidates: np.ndarray, k: int, doc_codes: np.ndarray | None = None) -> list[int]:
    """Rows of the k best scores among `candidates` (a boolean mask), ties broken by row order;
    with `doc_codes`, only each document's best row counts."""
    rows = np.flatnonzero(candidates)
    if rows.size == 0 or k <= 0:
        return []
    order = rows[np.argsort(-scores[rows], kind="stable")]
    if doc_codes is not None:
        _, first = np.unique(doc_codes[order], return_index=True)
        order = order[np.sort(first)]
    return order[:k].tolist()
