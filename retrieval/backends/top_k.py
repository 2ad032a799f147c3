"""Top-k selection over a dense score array, optionally one row (the best) per document."""

from __future__ import annotations

import numpy as np


def top_k_rows(scores: np.ndarray, candidates: np.ndarray, k: int, doc_codes: np.ndarray | None = None) -> list[int]:
    """Rows of the k best scores among `candidates` (a boolean mask), ties broken by row order;
    with `doc_codes`, only each document's best row counts.

    Only rows scoring at least the `want`-th best candidate are sorted (a partition finds that
    threshold), so the cost is linear in the candidates; `want` grows when collapsing documents
    leaves fewer than k. Every row tied with the threshold is kept, so the result is exact.
    """
    rows = np.flatnonzero(candidates)
    if rows.size == 0 or k <= 0:
        return []
    values = scores[rows]
    want = k if doc_codes is None else 4 * k
    while True:
        if want >= rows.size:
            picked = rows
        else:
            threshold = np.partition(values, rows.size - want)[rows.size - want]
            picked = rows[values >= threshold]
        order = picked[np.lexsort((picked, -scores[picked]))]
        if doc_codes is not None:
            _, first = np.unique(doc_codes[order], return_index=True)
            order = order[np.sort(first)]
        if order.size >= k or picked.size == rows.size:
            return order[:k].tolist()
        want *= 4
