"""Kiwi's nearest morphemes of a word: its embeddings were learned on a large Korean corpus, so they know that
체포 is near 연행 and 구속. The expansion anchor trains towards these neighbourhoods; the query-side expansion
gate keeps only expansions inside them. Hand-written: no library maps Kiwi's neighbours onto a model vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

DEGENERATE_SCORE = 0.85  # a word whose 20th neighbour is this close has no usable embedding
DEGENERATE_RANK = 20
AMBIGUOUS_FORM_TAGS = ("NNG", "VV", "VA", "NNP", "MAG", "XR")  # tried for a form with several morphemes (열, 개, 물)


def similar_morphemes(kiwi, word: str, top_n: int) -> list:
    """Kiwi's nearest morphemes of `word`, best first; a form with several morphemes (물/NNG, 물/VV) gets the
    union over its content-tag readings, so an ambiguous word is not left without neighbours."""
    try:
        similar = kiwi.most_similar_morphemes(word, top_n=top_n)
        return [] if degenerate(similar) else similar
    except (ValueError, RuntimeError, KeyError):
        pass
    merged: list = []
    for tag in AMBIGUOUS_FORM_TAGS:
        try:
            reading = kiwi.most_similar_morphemes((word, tag), top_n=top_n)
        except (ValueError, RuntimeError, KeyError):
            continue
        if not degenerate(reading):
            merged += reading
    return sorted(merged, key=lambda m: -m.score)


def degenerate(similar: list) -> bool:
    """True for a rare word's embedding: its "neighbours" are an arbitrary cluster (침침하 -> 뤽상부르, 쓰담쓰담)."""
    return len(similar) >= DEGENERATE_RANK and similar[DEGENERATE_RANK - 1].score >= DEGENERATE_SCORE


def is_word(token: str) -> bool:
    """A vocabulary entry worth looking up: no special token, no word piece, no single non-Hangul character."""
    return not token.startswith(("[", "##")) and (len(token) >= 2 or "\uac00" <= token <= "\ud7a3")


class KiwiNeighbours:
    """A vocabulary word's Kiwi neighbours that are also vocabulary words (cosine ≥ `min_score`, at most `top_n`)."""

    def __init__(self, vocabulary: Iterable[str], *, top_n: int = 12, min_score: float = 0.6) -> None:
        from encoder.kiwi_analysis import kiwi

        self.kiwi = kiwi()
        self.vocabulary = frozenset(vocabulary)
        self.top_n, self.min_score = top_n, min_score
        self.of = lru_cache(maxsize=200_000)(self._of)

    def _of(self, word: str) -> tuple[tuple[str, float], ...]:
        if not is_word(word):
            return ()
        out: list[tuple[str, float]] = []
        for m in similar_morphemes(self.kiwi, word, max(self.top_n * 3, DEGENERATE_RANK)):
            if m.score < self.min_score:
                break
            if m.form in self.vocabulary and m.form != word and all(m.form != w for w, _ in out):
                out.append((m.form, float(m.score)))
                if len(out) == self.top_n:
                    break
        return tuple(out)
