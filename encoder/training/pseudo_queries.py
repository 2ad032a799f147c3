"""Pseudo-queries made from a corpus alone (no queries, no judgments): what `ksearch adapt` trains on.

Every pair is (query, positive passage) built from the passage's own text, in four kinds:

- title: a document's title -> its first passage. Titles name what a passage is about, as users do.
- keyphrase: the passage's most salient nouns (Kiwi NNG/NNP/SL/SH, ranked by tf-idf over this corpus), in text
  order -> the passage. Keyword queries: they teach the corpus's own terms (department names, drug brands, statute
  names) the weight their rarity in this corpus deserves.
- ict (the inverse cloze task, Lee et al. 2019): one sentence -> the rest of its passage. The query shares little
  wording with its positive, so the model must learn how this corpus's words relate (expansions) rather than
  exact overlap. As in the paper, one positive in ten keeps the sentence so lexical matching is not unlearned.
- cloze: for a passage of one sentence (no ict possible), the sentence with its salient nouns cut out -> the passage:
  the model learns to weight the missing terms from their context.

Analysis uses the process-wide Kiwi (`encoder.kiwi_analysis`); texts stay raw here (a pre-segmenting model's
segmentation is applied to the finished triples, as `ksearch train` does).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from encoder.kiwi_analysis import analyse
from encoder.kiwi_tags import BM25_TAGS, base_tag

NOUN_TAGS = ("NNG", "NNP", "SL", "SH")  # what a key phrase is made of: nouns, Latin and hanja words
KEYPHRASE_NOUNS = 3  # nouns per keyphrase query (fewer when the passage has fewer)
CLOZE_NOUNS = 2  # salient nouns cut out of a cloze query
ICT_KEEP_SENTENCE = 0.1  # share of ict positives that keep their sentence (Lee et al. 2019)
MIN_PIECE_CHARS = 8  # a sentence, or what is left of a passage, shorter than this makes no pair
ANALYSE_BATCH = 256  # passages per Kiwi call (Kiwi analyses a list on all its workers)
KINDS = ("title", "keyphrase", "ict", "cloze")

_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+|\n+")


@dataclass(frozen=True)
class CorpusPassage:
    """A passage as `ksearch ingest` indexes it, with its document's id and title."""

    doc_id: str
    title: str
    text: str
    first: bool = True  # the first passage of its document (title queries point there)


@dataclass(frozen=True)
class PassageTerms:
    """What Kiwi found in a passage: BM25 terms, and nouns with their character spans."""

    content: tuple[str, ...]
    nouns: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class PseudoQuery:
    """A query made from passage `passage` (an index into the passage list) and the text it should find."""

    query: str
    positive: str
    passage: int
    kind: str


def analyse_passages(texts: Sequence[str], *, progress: bool = False) -> list[PassageTerms]:
    """Kiwi terms of every text (one pass over the corpus, shared by the pseudo-queries and BM25 mining)."""
    out: list[PassageTerms] = []
    with tqdm(total=len(texts), desc="kiwi analysis", unit="passage", disable=not progress) as bar:
        for begin in range(0, len(texts), ANALYSE_BATCH):
            batch = list(texts[begin: begin + ANALYSE_BATCH])
            for tokens in analyse(batch):
                out.append(_terms(tokens))
            bar.update(len(batch))
    return out


def query_terms(texts: Sequence[str]) -> list[list[str]]:
    """BM25 terms of short texts (queries), the same way as `analyse_passages`."""
    texts = list(texts)
    todo = [i for i, t in enumerate(texts) if t.strip()]
    out: list[list[str]] = [[] for _ in texts]
    for begin in range(0, len(todo), ANALYSE_BATCH):
        chunk = todo[begin: begin + ANALYSE_BATCH]
        for i, tokens in zip(chunk, analyse([texts[i] for i in chunk])):
            out[i] = list(_terms(tokens).content)
    return out


def _terms(tokens) -> PassageTerms:
    content, nouns = [], []
    for token in tokens:
        tag, form = base_tag(token.tag), token.form
        if tag in BM25_TAGS:
            content.append(form.lower() if tag == "SL" else form)  # as retrieval.morphemes indexes BM25
        end = token.start + token.len
        if nouns and token.start == nouns[-1][2] and (tag in ("NNG", "NNP", "XSN")):
            # a compound written as one word (소액+사건+심판, 임차+권) is one key term
            nouns[-1] = (nouns[-1][0] + form, nouns[-1][1], end)
        elif tag in NOUN_TAGS:
            nouns.append((form, token.start, end))
    # one-syllable Korean nouns (것, 때, 곳) are rarely what a passage is about
    return PassageTerms(tuple(content), tuple(n for n in nouns if len(n[0]) > 1 or not "가" <= n[0] <= "힣"))


def salient_nouns(terms: Sequence[PassageTerms]) -> list[list[tuple[str, int, int]]]:
    """Per passage, its distinct nouns by tf-idf ((1 + log tf) x log((1 + N) / df)) over the passages, best first
    (the first span of each)."""
    df = Counter(form for t in terms for form in {n[0] for n in t.nouns})
    n = len(terms)
    out = []
    for t in terms:
        tf = Counter(form for form, _, _ in t.nouns)
        first = {}
        for noun in t.nouns:
            first.setdefault(noun[0], noun)
        score = {form: (1 + math.log(count)) * math.log((1 + n) / df[form]) for form, count in tf.items()}
        ranked = sorted(first.values(), key=lambda noun: (-score[noun[0]], noun[1]))
        out.append(ranked)
    return out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of the sentences of `text`, cut after . ! ? followed by a space, and at line breaks."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if text[start: match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return spans


def pseudo_queries(passages: Sequence[CorpusPassage], terms: Sequence[PassageTerms], rng: random.Random,
                   max_pairs: int | None = None) -> list[PseudoQuery]:
    """Every kind of pseudo-query each passage allows (see the module docstring), shuffled; at most `max_pairs`."""
    ranked = salient_nouns(terms)
    out: list[PseudoQuery] = []
    for i, (passage, nouns) in enumerate(zip(passages, ranked)):
        text = passage.text
        title = passage.title.strip()
        if passage.first and title and not text.startswith(title) and terms[i].content:
            out.append(PseudoQuery(title, text, i, "title"))
        key = sorted(nouns[:KEYPHRASE_NOUNS], key=lambda noun: noun[1])
        if key:
            out.append(PseudoQuery(" ".join(form for form, _, _ in key), text, i, "keyphrase"))
        sentences = [(a, b) for a, b in sentence_spans(text) if b - a >= MIN_PIECE_CHARS]
        if len(sentences) >= 2:
            a, b = rng.choice(sentences)
            rest = " ".join((text[:a] + text[b:]).split())
            if len(rest) >= MIN_PIECE_CHARS:
                positive = text if rng.random() < ICT_KEEP_SENTENCE else rest
                out.append(PseudoQuery(text[a:b].strip(), positive, i, "ict"))
        elif nouns:
            cut = {form for form, _, _ in nouns[:CLOZE_NOUNS]}
            query = _cut(text, [noun for noun in terms[i].nouns if noun[0] in cut])
            if len(query) >= MIN_PIECE_CHARS:
                out.append(PseudoQuery(query, text, i, "cloze"))
    rng.shuffle(out)
    return out[:max_pairs] if max_pairs is not None else out


def _cut(text: str, spans: Sequence[tuple[str, int, int]]) -> str:
    """`text` without the character spans given, spaces collapsed."""
    pieces, last = [], 0
    for _, start, end in sorted(spans, key=lambda s: s[1]):
        if start >= last:
            pieces.append(text[last:start])
            last = end
    pieces.append(text[last:])
    return " ".join("".join(pieces).split())
