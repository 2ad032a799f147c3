"""Per-vector pruning, named and defined like OpenSearch neural-search's prune types."""

from __future__ import annotations

import math
from enum import Enum

from pydantic import BaseModel, model_validator


class PruneType(str, Enum):
    NONE = "none"
    TOP_K = "top_k"  # keep the k largest weights
    MAX_RATIO = "max_ratio"  # keep weights >= ratio * max weight
    ABS_VALUE = "abs_value"  # keep weights >= ratio
    ALPHA_MASS = "alpha_mass"  # keep the largest weights while their running sum <= ratio * total


class Pruning(BaseModel):
    """A prune type and its parameter (`ratio` in OpenSearch's terms; k for top_k)."""

    type: PruneType = PruneType.NONE
    ratio: float = 0.0

    @model_validator(mode="after")
    def _check(self) -> "Pruning":
        t, r = self.type, self.ratio
        if t is PruneType.TOP_K and (r < 1 or r != int(r)):
            raise ValueError(f"top_k pruning needs a positive whole number, got {r}")
        if t is PruneType.MAX_RATIO and not 0 <= r < 1:
            raise ValueError(f"max_ratio pruning needs 0 <= ratio < 1, got {r}")
        if t is PruneType.ALPHA_MASS and not 0 < r <= 1:
            raise ValueError(f"alpha_mass pruning needs 0 < ratio <= 1, got {r}")
        if t is PruneType.ABS_VALUE and (r < 0 or not math.isfinite(r)):
            raise ValueError(f"abs_value pruning needs a finite threshold >= 0, got {r}")
        return self

    @classmethod
    def parse(cls, spec: str | None) -> "Pruning":
        """Parse `"top_k:40"`, `"max_ratio:0.1"`, `"none"` (CLI and settings form)."""
        if not spec or spec == "none":
            return cls()
        name, _, value = spec.partition(":")
        try:
            return cls(type=PruneType(name), ratio=float(value))
        except ValueError as exc:
            raise ValueError(f"bad pruning spec {spec!r}: expected TYPE:VALUE with TYPE one of "
                             f"{[p.value for p in PruneType]}; {exc}") from None

    def __str__(self) -> str:
        return "none" if self.type is PruneType.NONE else f"{self.type.value}:{self.ratio:g}"

    def apply(self, vector: dict[str, float]) -> dict[str, float]:
        """Return the pruned vector, sorted by weight (largest first)."""
        t, r = self.type, self.ratio
        if t is PruneType.NONE:
            return vector if _is_sorted(vector) else dict(sorted(vector.items(), key=lambda kv: kv[1], reverse=True))
        items = sorted(vector.items(), key=lambda kv: kv[1], reverse=True)
        if t is PruneType.TOP_K:
            items = items[: int(r)]
        elif t is PruneType.MAX_RATIO and items:
            floor = items[0][1] * r
            items = [kv for kv in items if kv[1] >= floor]
        elif t is PruneType.ABS_VALUE:
            items = [kv for kv in items if kv[1] >= r]
        elif t is PruneType.ALPHA_MASS:
            limit, running, kept = r * sum(w for _, w in items), 0.0, []
            for kv in items:
                running += kv[1]
                if running > limit:
                    break
                kept.append(kv)
            items = kept
        return dict(items)


def _is_sorted(vector: dict[str, float]) -> bool:
    weights = list(vector.values())
    return all(a >= b for a, b in zip(weights, weights[1:]))
