"""Expansion quality: are the words a model adds to a query related to it?

A probe query lists the words a careful reader accepts as expansions (`expected`). A top-N
expansion token (a weighted token that is not one of the query's own tokens) counts as related
when it is one of those words, shares a word with one (체포 in 긴급체포), or sits near a query
word or an expected word in Kiwi's morpheme embeddings. The measure was checked against manual
judgments (encoder/MODEL_CARD.md). Hand-written: no library scores expansions against a lexicon.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from encoder.kiwi_neighbours import DEGENERATE_RANK, degenerate
from encoder.kiwi_tags import CONTENT_TAGS, base_tag
from retrieval.evaluation import read_jsonl

EXPANSIONS_JUDGED = 10
NEIGHBOURS = 10  # Kiwi neighbours looked at per word (10 and 0.70: best agreement with manual judgments, MODEL_CARD.md)
NEIGHBOUR_MIN_SCORE = 0.70
PROBE_TAGS = frozenset(CONTENT_TAGS) - {"NNB", "NR", "SN", "SH"}  # words with meaning: no bound nouns or numbers


@dataclass(frozen=True)
class ProbeQuery:
    """An everyday query and the words a reader accepts as its expansions."""

    id: str
    domain: str
    text: str
    expected: tuple[str, ...]


@dataclass
class ProbeResult:
    """One query's top expansion tokens and which of them count as related."""

    query: ProbeQuery
    expansions: list[tuple[str, float]]
    related: list[bool] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"id": self.query.id, "text": self.query.text,
                "expansions": [{"token": t, "weight": round(w, 4), "related": r}
                               for (t, w), r in zip(self.expansions, self.related)]}


def read_probe(path: Path) -> list[ProbeQuery]:
    """Probe queries from JSONL lines with `id`, `domain`, `text` and `expected` (a list of words)."""
    return read_jsonl(path, lambda row: ProbeQuery(str(row["id"]), str(row.get("domain", "")), str(row["text"]),
                                                   tuple(str(w) for w in row["expected"])), ("id", "text", "expected"))


def _norm(word: str) -> str:
    return unicodedata.normalize("NFC", word.removeprefix("##").strip("▁ ")).lower()


def query_expansions(encoder, text: str, top: int = EXPANSIONS_JUDGED) -> list[tuple[str, float]]:
    """The `top` heaviest display tokens of the query vector that are not tokens of the query itself."""
    own = {_norm(t) for t in encoder.tokenizer.tokenize(encoder.model_text([text])[0])}
    shown: dict[str, float] = {}
    for name, weight in encoder.encode_queries([text])[0].items():
        token = encoder.display_token(name)
        if _norm(token) in own or not _norm(token):
            continue
        shown[token] = max(weight, shown.get(token, 0.0))
    return sorted(shown.items(), key=lambda kv: -kv[1])[:top]


class RelatednessJudge:
    """Decides whether an expansion token is related to a probe query (see the module docstring)."""

    def __init__(self) -> None:
        from encoder.kiwi_analysis import kiwi

        self.kiwi = kiwi()

    def content_words(self, text: str) -> list[tuple[str, str]]:
        """(form, tag) of the content morphemes of a text."""
        return [(t.form, base_tag(t.tag)) for t in self.kiwi.tokenize(text) if base_tag(t.tag) in PROBE_TAGS]

    @lru_cache(maxsize=100_000)
    def neighbours(self, form: str, tag: str) -> frozenset[str]:
        """Kiwi's near morphemes of one word; empty when the word is unknown or its embedding degenerate."""
        try:
            # the degenerate check reads the 20th neighbour, so fetch at least 20 and judge by the first NEIGHBOURS
            similar = self.kiwi.most_similar_morphemes((form, tag), top_n=max(NEIGHBOURS, DEGENERATE_RANK))
        except (ValueError, RuntimeError, KeyError):
            return frozenset()
        if degenerate(similar):  # a rare word's arbitrary cluster
            return frozenset()
        return frozenset(_norm(m.form) for m in similar[:NEIGHBOURS] if m.score >= NEIGHBOUR_MIN_SCORE)

    def related_words(self, query: ProbeQuery) -> tuple[set[str], set[str]]:
        """(accepted words, their Kiwi neighbours) for one probe query."""
        accepted = {_norm(w) for w in query.expected}
        near: set[str] = set()
        sources = self.content_words(query.text)
        for word in query.expected:
            sources += self.content_words(word)
        for form, tag in set(sources):
            accepted.add(_norm(form))
            near |= self.neighbours(form, tag)
        return accepted, near

    def judge(self, query: ProbeQuery, tokens: Sequence[str]) -> list[bool]:
        accepted, near = self.related_words(query)
        out = []
        for token in tokens:
            t = _norm(token)
            shares = len(t) >= 2 and any(len(a) >= 2 and (a in t or t in a) for a in accepted)
            out.append(t in accepted or t in near or shares)
        return out


def evaluate_expansions(encoder, probe: Sequence[ProbeQuery], top: int = EXPANSIONS_JUDGED) -> tuple[dict, list[ProbeResult]]:
    """Share of the top expansion tokens judged related (over all tokens and averaged per query)."""
    judge = RelatednessJudge()
    results = []
    for query in probe:
        expansions = query_expansions(encoder, query.text, top)
        results.append(ProbeResult(query, expansions, judge.judge(query, [t for t, _ in expansions])))
    tokens = [r for res in results for r in res.related]
    per_query = [sum(res.related) / len(res.related) for res in results if res.related]
    summary = {"queries": len(results), "expansion_tokens": len(tokens),
               "related_share": sum(tokens) / len(tokens) if tokens else 0.0,
               "related_share_per_query": sum(per_query) / len(per_query) if per_query else 0.0,
               "avg_expansions_per_query": len(tokens) / len(results) if results else 0.0}
    return summary, results
