"""Query-side expansion gate: keep the words the model adds to a query only where Kiwi puts them near one of the
query's own words, so every expansion a reader sees can be traced to a word of the query.

Opt-in per model folder (ksearch.json `"expansion_gate": {"neighbours": 12, "min_score": 0.6,
"outside_weight": 0.0}`): on the shipped model it cost ranking quality on the dev splits (encoder/MODEL_CARD.md,
ablation), because some expansions Kiwi does not relate to the query still find the right passages.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, fields

from encoder.kiwi_neighbours import KiwiNeighbours


@dataclass(frozen=True)
class ExpansionGate:
    """Own tokens and their Kiwi neighbours keep their weight; every other expansion is scaled by `outside_weight`."""

    neighbours: int = 12
    min_score: float = 0.6
    outside_weight: float = 0.0  # 0: dropped

    def __post_init__(self) -> None:
        if self.neighbours < 1 or not 0.0 <= self.min_score <= 1.0 or not 0.0 <= self.outside_weight < 1.0:
            raise ValueError(f"expansion_gate: neighbours must be >= 1, min_score in [0, 1] and outside_weight in "
                             f"[0, 1), got {self}")

    @classmethod
    def parse(cls, value: object) -> "ExpansionGate | None":
        """ksearch.json's `expansion_gate`: absent, null or false (no gate), true (defaults) or an object of fields."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if not isinstance(value, Mapping):
            raise ValueError(f"expansion_gate: expected true, false or an object, got {value!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"expansion_gate: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
        try:
            return cls(**{k: (int if k == "neighbours" else float)(v) for k, v in value.items()})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"expansion_gate: {exc}") from None

    def lookup(self, vocabulary: list[str]) -> KiwiNeighbours:
        """The neighbour lookup this gate uses over a model's feature names."""
        return KiwiNeighbours(vocabulary, top_n=self.neighbours, min_score=self.min_score)

    def apply(self, vector: Mapping[str, float], own: Set[str], neighbours: KiwiNeighbours) -> dict[str, float]:
        """The gated query vector: `own` are the query's own feature names."""
        near = set(own).union(*(dict(neighbours.of(t)) for t in own))
        if self.outside_weight == 0.0:
            return {t: w for t, w in vector.items() if t in near}
        return {t: w if t in near else w * self.outside_weight for t, w in vector.items()}
