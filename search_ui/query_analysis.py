"""Which query tokens are literal (in the query as the model segments it) and which the model added (expansions),
and which expansions Kiwi puts near a word of the query (the rest the model learnt on its own)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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
    near: str = ""  # an expansion's query word that it is a Kiwi neighbour of ("" when none, or not looked up)


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


def with_origins(tokens: Sequence[QueryToken], neighbours) -> list[QueryToken]:
    """The tokens with `near` set on each expansion that is a Kiwi neighbour (encoder.kiwi_neighbours) of a literal
    token, the heaviest such literal token first."""
    origin: dict[str, str] = {}
    for t in tokens:
        if t.kind == LITERAL:
            for word, _ in neighbours.of(t.token):
                origin.setdefault(word, t.token)
    return [replace(t, near=origin.get(t.token, "")) if t.kind == EXPANSION else t for t in tokens]


def origins_caption(tokens: Sequence[QueryToken], top: int = 30) -> str:
    """One line on where the heaviest `top` tokens' expansions come from: near a query word, or the model alone."""
    shown = [t for t in tokens[:top] if t.kind == EXPANSION]
    near = [f"{t.token} ← {t.near}" for t in shown if t.near]
    alone = [t.token for t in shown if not t.near]
    if not shown:
        return "No expansions: every token is a word of the query."
    return (f"Expansions near a query word in Kiwi's embeddings: {', '.join(near) or 'none'}. "
            f"Added by the model alone, near no query word (mostly unrelated on everyday queries, see the model card): {', '.join(alone) or 'none'}.")
