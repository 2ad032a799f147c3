"""Which query tokens are literal (in the query as the model segments it) and which the model added (expansions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from encoder.feature_names import normalize_token

TokenKind = Literal["literal", "expansion"]
LITERAL: TokenKind = "literal"
EXPANSION: TokenKind = "expansion"


@dataclass(frozen=True)
class QueryToken:
    """One weighted query token and whether it is literal or an expansion."""

    token: str
    weight: float
    kind: TokenKind


def model_words(encoder, text: str) -> list[str]:
    """The words of `text` as the encoder's model sees it (Kiwi morphemes for a segmenting model)."""
    return encoder.model_text([text])[0].split()


def classify_query_tokens(query_tokens: Mapping[str, float], words: Iterable[str]) -> list[QueryToken]:
    """Query tokens, heaviest first: literal when the token is one of the model words or part of one, else expansion."""
    normalized_words = [normalize_token(w) for w in words]
    exact = set(normalized_words)

    def kind(token: str) -> TokenKind:
        norm = normalize_token(token)
        if not norm:
            return EXPANSION
        if norm in exact or any(norm in w for w in normalized_words):
            return LITERAL
        return EXPANSION

    ordered = sorted(query_tokens.items(), key=lambda kv: (-kv[1], kv[0]))
    return [QueryToken(token, float(weight), kind(token)) for token, weight in ordered]


def kinds_by_token(tokens: Iterable[QueryToken]) -> dict[str, TokenKind]:
    """token -> literal | expansion."""
    return {t.token: t.kind for t in tokens}
