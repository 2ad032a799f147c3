"""What a stored passage vector must be: OpenSearch-safe feature names with finite weights > 0.

The encoder only produces such vectors; these checks stop anything else (a hand-built or corrupted
vector) before it is stored, where a NaN would poison every score it touches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from encoder.feature_names import is_safe_feature_name
from retrieval.errors import RetrievalError


class InvalidVectorError(RetrievalError, ValueError):
    """A passage vector that cannot be stored (the message names the passage, token and weight)."""


def unsafe_feature_name(vector: Mapping[str, float]) -> str | None:
    """A reason to refuse a vector whose token is not an OpenSearch-safe feature name, else None."""
    for name in vector:
        if not isinstance(name, str) or not is_safe_feature_name(name):
            return (f"feature {name!r} is not an OpenSearch-safe feature name ('.', spaces, control characters and "
                    f"the empty token must be encoded with encoder.token_to_feature)")
    return None


def vector_problem(vector: Mapping[str, float]) -> str | None:
    """Why `vector` cannot be stored (unsafe name, non-finite or non-positive weight), else None."""
    reason = unsafe_feature_name(vector)
    if reason is not None:
        return reason
    for name, weight in vector.items():
        try:
            value = float(weight)
        except (TypeError, ValueError):
            return f"weight of feature {name!r} is {weight!r}, not a number"
        if not math.isfinite(value):
            return f"weight of feature {name!r} is {value!r}: weights must be finite"
        if value <= 0:
            return f"weight of feature {name!r} is {value!r}: weights must be > 0"
    return None


def check_vectors(passage_ids: Sequence[str], vectors: Sequence[Mapping[str, float]]) -> None:
    """Raise `InvalidVectorError` for the first vector that cannot be stored."""
    for pid, vector in zip(passage_ids, vectors):
        reason = vector_problem(vector)
        if reason is not None:
            raise InvalidVectorError(f"passage {pid!r}: {reason}; nothing of this write was stored")
