"""`Hit`: one ranked passage (or document, represented by its best passage)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Hit:
    """A ranked passage with its score and its document's metadata."""

    id: str
    doc_id: str
    score: float
    title: str = ""
    domain: str = ""
    text: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def with_score(self, score: float) -> "Hit":
        """A copy with another score (used by hybrid fusion)."""
        return replace(self, score=score)


@dataclass(frozen=True)
class TokenContribution:
    """How one token adds to a sparse score: query weight x document weight."""

    query_weight: float
    document_weight: float

    @property
    def contribution(self) -> float:
        """The product added to the dot product."""
        return self.query_weight * self.document_weight
