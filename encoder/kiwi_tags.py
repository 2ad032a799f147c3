"""The Kiwi (Sejong) part-of-speech tags ksearch treats as content, in one place.

`CONTENT_TAGS` is what a content morpheme is; each use keeps a subset of it, for the reason given here.
Kiwi marks irregular conjugations with a suffix (`VV-I`, `VA-R`): compare `base_tag(tag)`.
"""

from __future__ import annotations

CONTENT_TAGS = ("NNG", "NNP", "NNB", "NR", "SN", "SL", "SH", "VV", "VA", "MAG", "XR")
"""Common, proper and bound nouns, numerals, numbers, foreign (Latin) words, hanja, verb and adjective stems,
general adverbs, roots: what the encoder's Kiwi pre-segmentation keeps (`encoder.segmentation`)."""

BM25_TAGS = frozenset(CONTENT_TAGS) - {"NNB", "MAG"}
"""What BM25 indexes (`retrieval.morphemes`): content without bound nouns (것, 수, 등) and adverbs, which occur in
almost every passage and only add noise to term matching."""

LEXICON_TAGS = tuple(t for t in CONTENT_TAGS if t not in {"NNB", "NR", "SN", "SL", "SH"})
"""Kiwi lexicon entries taken into a trained vocabulary (`encoder.training.vocabulary`): words only; numbers,
foreign script and hanja come from the training texts and the character pieces."""


def base_tag(tag: str) -> str:
    """`VV-I` -> `VV`: the tag without Kiwi's irregular-conjugation suffix."""
    return tag.split("-")[0]
