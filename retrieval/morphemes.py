"""Korean content morphemes with Kiwi, for BM25 (the process-wide Kiwi of `encoder.kiwi_analysis`).

Kept: `encoder.kiwi_tags.BM25_TAGS` (irregular-conjugation suffixes such as `VV-I` folded):
  NNG/NNP common and proper nouns, NR numerals, VV/VA verb and adjective stems, XR roots,
  SL foreign (Latin) words (lower-cased), SN numbers, SH hanja.
Dropped: particles (J*), endings (E*), affixes (XP*/XS*), bound nouns (NNB), adverbs (MAG), pronouns, symbols, etc.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from encoder.kiwi_analysis import KIWI_LOCK, analyse, kiwi
from encoder.kiwi_tags import BM25_TAGS, base_tag


def _content(tokens) -> list[str]:
    out = []
    for token in tokens:
        if base_tag(token.tag) in BM25_TAGS:
            out.append(token.form.lower() if token.tag == "SL" else token.form)
    return out


def content_morphemes(text: str) -> list[str]:
    """The content morphemes of one text, in order (repeats kept: BM25 counts them)."""
    if not text.strip():
        return []
    return _content(analyse([text])[0])


def content_morphemes_many(texts: Iterable[str]) -> list[list[str]]:
    """`content_morphemes` for many texts (Kiwi analyses the batch in one call)."""
    texts = list(texts)
    result: list[list[str]] = [[] for _ in texts]
    todo = [i for i, t in enumerate(texts) if t.strip()]
    for i, tokens in zip(todo, analyse([texts[i] for i in todo])):
        result[i] = _content(tokens)
    return result


SENTENCE_BLOCK_CHARS = 4000  # Kiwi's sentence splitting grows faster than linearly: long texts go in blocks


def _block_end(text: str, start: int, limit: int) -> int:
    """Where the block starting at `start` ends: a line break, else a sentence end, else a space in its second half."""
    end = start + limit
    if end >= len(text):
        return len(text)
    half = start + limit // 2
    for marker in ("\n", ". ", " "):
        cut = text.rfind(marker, half, end)
        if cut != -1:
            return cut + len(marker)
    return end


def sentence_spans(text: str, block_chars: int = SENTENCE_BLOCK_CHARS) -> list[tuple[int, int]]:
    """(start, end) character offsets of the sentences of `text` (Kiwi's `split_into_sents`, block by block)."""
    return sentence_spans_many([text], block_chars)[0]


def sentence_spans_many(texts: Sequence[str], block_chars: int = SENTENCE_BLOCK_CHARS) -> list[list[tuple[int, int]]]:
    """`sentence_spans` of every text, all their blocks in one Kiwi call: Kiwi analyses a list on all its workers,
    one text at a time on one. Blocks are cut as Kiwi asks for them, so no second copy of the texts is held."""
    places: list[tuple[int, int]] = []  # (text number, where the block starts), in the order Kiwi reads the blocks

    def blocks() -> Iterator[str]:
        for number, text in enumerate(texts):
            start = 0
            while start < len(text):
                end = _block_end(text, start, block_chars)
                places.append((number, start))
                yield text[start:end]
                start = end

    spans: list[list[tuple[int, int]]] = [[] for _ in texts]
    with KIWI_LOCK:
        for i, sentences in enumerate(kiwi().split_into_sents(blocks())):
            number, start = places[i]
            spans[number].extend((start + s.start, start + s.end) for s in sentences)
    return spans
