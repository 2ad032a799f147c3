"""Hybrid ranking shared by `ksearch search` and `ksearch eval`.

    fused(p) = w * minmax_sparse(p) + (1 - w) * minmax_bm25(p),   w = KSEARCH_HYBRID_WEIGHT (default 0.5)

for passages p (the searcher then ranks a document by its best fused passage), over the union of each
retriever's top results (`HYBRID_CANDIDATES` documents' worth), where
minmax_X(p) = (s_X(p) - min_X) / (max_X - min_X) over X's own candidates (1.0 when they all tie),
and 0 for a result X did not return. This is what OpenSearch's normalization-processor does with
`min_max` + `arithmetic_mean` weights [w, 1 - w]; ksearch fuses client-side for both backends, so no
search pipeline is needed on the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.hits import Hit
from retrieval.query import HYBRID_SPARSE_WEIGHT

HYBRID_CANDIDATES = 100


def min_max(scores: Sequence[float]) -> list[float]:
    """Scale scores to [0, 1]; all-equal scores become 1.0."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0 for _ in scores]
    return [(s - low) / (high - low) for s in scores]


def fuse(sparse_hits: Sequence[Hit], bm25_hits: Sequence[Hit], k: int, *, sparse_weight: float = HYBRID_SPARSE_WEIGHT,
         key: str = "doc_id") -> list[Hit]:
    """Fuse two rankings (keyed by document id, or `key="id"` for passages); see the module docstring."""
    fused: dict[str, float] = {}
    hit_of: dict[str, Hit] = {}
    for hits, weight in ((sparse_hits, sparse_weight), (bm25_hits, 1.0 - sparse_weight)):
        for hit, norm in zip(hits, min_max([h.score for h in hits])):
            ident = getattr(hit, key)
            fused[ident] = fused.get(ident, 0.0) + weight * norm
            hit_of.setdefault(ident, hit)  # the sparse ranking's passage represents the document when it has one
    order = sorted(fused, key=lambda i: (-fused[i], i))[:k]
    return [hit_of[i].with_score(fused[i]) for i in order]
