"""Whether a weighted token is a text's own word or one the model added (an expansion).

A token belongs to a text when it is one of the text's words as the model segments it (Kiwi morphemes for a
segmenting model: 돌려주 for 돌려줘요, 빌리 for 빌려), part of one (보증 of 보증금), or a literal piece of the text.
The search results (`Searcher`) and the app's query analysis use this one test.
"""

from __future__ import annotations

from collections.abc import Iterable

from encoder.feature_names import fold_text, normalize_token


class OwnWords:
    """The words of one text: `token in words` says whether the token is the text's own."""

    def __init__(self, text: str, model_words: Iterable[str]) -> None:
        self.text = fold_text(text)
        self.words = [w for w in (normalize_token(w) for w in model_words) if w]
        self._exact = set(self.words)

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        norm = normalize_token(token)
        if not norm:
            return False  # an empty token is in no text
        return norm in self._exact or norm in self.text or any(norm in w for w in self.words)


def own_words(encoder, texts: list[str]) -> list[OwnWords]:
    """`OwnWords` of each text, segmented the way `encoder`'s model sees it (one batch)."""
    todo = [t for t in texts if t.strip()]
    segmented = dict(zip(todo, encoder.model_text(todo))) if todo else {}
    return [OwnWords(t, segmented.get(t, "").split()) for t in texts]
