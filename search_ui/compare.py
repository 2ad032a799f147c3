"""Two rankings of the same query side by side: which documents both found, and each one's nDCG@10 when judged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from retrieval.evaluation import score_runs
from retrieval.hits import Hit


@dataclass(frozen=True)
class ComparedHit:
    """A hit of one column, with the columns that found its document and its relevance label (None: unjudged)."""

    rank: int
    hit: Hit
    found_by: tuple[str, ...]
    label: int | None = None


def compare_rankings(rankings: Mapping[str, Sequence[Hit]], labels: Mapping[str, int] | None = None) -> dict[str, list[ComparedHit]]:
    """For every column, its hits marked with the columns whose ranking holds the same document."""
    docs = {name: {h.doc_id for h in hits} for name, hits in rankings.items()}
    out: dict[str, list[ComparedHit]] = {}
    for name, hits in rankings.items():
        out[name] = [
            ComparedHit(rank, h, tuple(other for other in rankings if h.doc_id in docs[other]),
                        None if labels is None else int(labels.get(h.doc_id, 0)))
            for rank, h in enumerate(hits, start=1)
        ]
    return out


def ndcg_at_10(hits: Sequence[Hit], labels: Mapping[str, int], query_id: str = "q") -> float | None:
    """nDCG@10 of one ranking of documents against one query's labels (the project's ranx scoring); None when nothing is relevant."""
    if not any(r > 0 for r in labels.values()):
        return None
    run = {query_id: {h.doc_id: float(len(hits) - i) for i, h in enumerate(hits)}}  # rank order, ties impossible
    return score_runs({query_id: dict(labels)}, run)["ndcg@10"]
