"""The embedded index's exact kernels: posting-list dot products and partitioned top-k, against plain references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from retrieval.backends.postings import posting_scores
from retrieval.backends.top_k import top_k_rows


def reference_top_k(scores, candidates, k, doc_codes=None):
    rows = [r for r in range(len(scores)) if candidates[r]]
    rows.sort(key=lambda r: (-scores[r], r))
    if doc_codes is not None:
        seen, kept = set(), []
        for r in rows:
            if doc_codes[r] not in seen:
                seen.add(doc_codes[r])
                kept.append(r)
        rows = kept
    return rows[:k]


@pytest.mark.parametrize("seed", range(6))
def test_posting_scores_equal_the_matrix_product(seed):
    rng = np.random.default_rng(seed)
    m = sparse.random(500, 80, density=0.1, format="csr", random_state=seed, dtype=np.float32)
    cols = rng.choice(80, size=12, replace=False)
    weights = rng.random(12) * 3
    q = np.zeros(80)
    q[cols] = weights
    np.testing.assert_allclose(posting_scores(m.tocsc(), cols, weights), m @ q, rtol=1e-6)
    assert not posting_scores(m.tocsc(), [], []).any()


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("per_document", [False, True])
def test_partitioned_top_k_is_exact_with_ties_and_documents(seed, per_document):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    scores = rng.integers(0, 6, size=n).astype(np.float64)  # few distinct values: many ties at the cut
    candidates = (scores > 0) & (rng.random(n) < 0.9)
    doc_codes = rng.integers(0, max(1, n // 5), size=n) if per_document else None
    for k in (1, 3, 10, 50, n + 5):
        assert top_k_rows(scores, candidates, k, doc_codes) == reference_top_k(scores, candidates, k, doc_codes)


def test_one_dominant_document_still_yields_k_documents():
    scores = np.concatenate([np.full(100, 9.0), np.arange(1, 6, dtype=np.float64)])
    doc_codes = np.concatenate([np.zeros(100, int), np.arange(1, 6)])
    assert top_k_rows(scores, scores > 0, 4, doc_codes) == [0, 104, 103, 102]
