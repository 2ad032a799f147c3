"""Which query tokens are literal (in the query as the model segments it) and which the model added (expansions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from retrieval.own_words import OwnWords

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


def classify_query_tokens(query_tokens: Mapping[str, float], words: Iterable[str], text: str = "") -> list[QueryToken]:
    """Query tokens, heaviest first: literal when the token is the query's own (one of the model words, part of one,
    or a piece of `text`: retrieval.own_words, the test search results use), else expansion."""
    own = OwnWords(text, words)
    ordered = sorted(query_tokens.items(), key=lambda kv: (-kv[1], kv[0]))
    return [QueryToken(token, float(weight), LITERAL if token in own else EXPANSION) for token, weight in ordered]


def kinds_by_token(tokens: Iterable[QueryToken]) -> dict[str, TokenKind]:
    """token -> literal | expansion."""
    return {t.token: t.kind for t in tokens}
