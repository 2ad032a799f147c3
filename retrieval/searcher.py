"""`Searcher`: text -> encoder -> prepared query -> backend -> ranked, explained hits (sparse, BM25, hybrid).

With `encoding="server"` the backend's deployed model encodes the query (OpenSearch `neural_sparse` with
`query_text`; the client only segments it for a model that reads Kiwi morphemes), so the ranking is the
cluster's. The cluster returns no query vector: the explanation (matched, expansion and missing tokens, the
app's highlighting) comes from the same model run here on the same text, whose vector equals the cluster's
within 1e-4 (tests/test_server_encoding.py). `rank_feature` needs a query vector and is client-side only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

from retrieval.backends.base import ENCODINGS, SearchBackend, SearchFilters
from retrieval.hits import Hit, TokenContribution
from retrieval.errors import RetrievalError
from retrieval.hybrid import HYBRID_CANDIDATES, fuse
from retrieval.own_words import OwnWords, own_words
from retrieval.query import HYBRID_SPARSE_WEIGHT, prepare_query_tokens

EXPANSION_TOKENS_SHOWN = 15
PASSAGES_PER_DOCUMENT = 3  # hybrid fuses this many passages per wanted document, so k documents survive the collapse


class SearchMode(str, Enum):
    """How hits are ranked."""

    SPARSE = "sparse"  # neural_sparse on OpenSearch ("neural_sparse" is accepted as a name)
    RANK_FEATURE = "rank_feature"  # the same dot product as rank_feature clauses (differs from SPARSE on OpenSearch only)
    BM25 = "bm25"
    HYBRID = "hybrid"

    @classmethod
    def _missing_(cls, value):
        return cls.SPARSE if value == "neural_sparse" else None


@dataclass
class ExplainedHit:
    """A hit with the tokens that explain it (display tokens as keys)."""

    hit: Hit
    matched_tokens: dict[str, float] = field(default_factory=dict)  # query weight x passage weight, largest first
    # tokens the model added: weighted in the query or passage vector but words of neither the query nor the passage
    # text (see retrieval.own_words); the larger of the two weights, heaviest first, all of them
    expansion_tokens: dict[str, float] = field(default_factory=dict)
    # the query's own words (weighted) that this passage has neither in its text nor in its vector: they add nothing
    unmatched_query_tokens: dict[str, float] = field(default_factory=dict)
    contributions: dict[str, TokenContribution] = field(default_factory=dict)  # display token -> its heaviest factors

    def top_expansion_tokens(self, n: int = EXPANSION_TOKENS_SHOWN) -> dict[str, float]:
        """The `n` heaviest expansion tokens (what `--json` and the command line show)."""
        return dict(list(self.expansion_tokens.items())[:n])

    def to_json(self) -> dict[str, Any]:
        """The `--json` form of one hit."""
        h = self.hit
        return {"id": h.id, "doc_id": h.doc_id, "title": h.title, "domain": h.domain, "score": round(h.score, 6),
                "text": h.text, "matched_tokens": self.matched_tokens, "expansion_tokens": self.top_expansion_tokens(),
                "unmatched_query_tokens": self.unmatched_query_tokens}


@dataclass
class SearchResult:
    """What `ksearch search` prints."""

    query_tokens: dict[str, float]  # display token -> weight
    took_ms: float  # encoding + ranking
    hits: list[ExplainedHit]
    encode_ms: float = 0.0  # the encoding part of took_ms (0 when the backend encoded the query inside the search)
    notice: str | None = None  # how the backend answered, when the user should know (e.g. exactly, not approximately)
    encoding: str = "client"  # who encoded the query for ranking: client | server (the backend's model)

    @property
    def search_ms(self) -> float:
        """The ranking part of took_ms (backend search, fusion)."""
        return self.took_ms - self.encode_ms

    def to_json(self) -> dict[str, Any]:
        """`{"query_tokens", "took_ms", "notice", "hits"}`."""
        return {"query_tokens": self.query_tokens, "took_ms": round(self.took_ms, 2), "notice": self.notice,
                "encoding": self.encoding, "hits": [h.to_json() for h in self.hits]}


class Searcher:
    """Ranks an index's passages for query texts with one encoder (whose vocabulary the index must share)."""

    def __init__(self, encoder, backend: SearchBackend, *, encoding: str = "client",
                 hybrid_weight: float = HYBRID_SPARSE_WEIGHT) -> None:
        """`encoding`: "client" (this encoder encodes queries) or "server" (the backend's `query_model_id` does);
        `hybrid_weight`: the sparse ranking's share of the hybrid fusion (retrieval.hybrid)."""
        if encoding not in ENCODINGS:
            raise ValueError(f"query encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
        if not 0.0 <= hybrid_weight <= 1.0:
            raise ValueError(f"hybrid weight must be between 0 and 1, not {hybrid_weight!r}")
        backend.check_encoder(encoder.model_id, encoder.vocab_hash)
        if encoding == "server" and backend.query_model_id is None:
            raise RetrievalError(f"index {backend.meta.name!r} has no model in the backend to encode queries: ingest it "
                                 f"with `--backend opensearch --encoding server`, or give a deployed model's id")
        self.encoder = encoder
        self.backend = backend
        self.encoding = encoding
        self.hybrid_weight = hybrid_weight

    def query_tokens(self, text: str) -> dict[str, float]:
        """The prepared query vector (feature name -> weight) both backends rank with."""
        return prepare_query_tokens(self.encoder.encode_queries([text])[0])

    def rank(self, text: str, mode: SearchMode | str = SearchMode.SPARSE, k: int = 10, *, domain: str | None = None,
             per_document: bool = True, query_tokens: Mapping[str, float] | None = None) -> list[Hit]:
        """The top-k hits of one mode (documents by their best passage unless `per_document=False`)."""
        mode = SearchMode(mode)
        filters = SearchFilters(domain=domain)
        server = self.encoding == "server"
        if server and mode is SearchMode.RANK_FEATURE:
            raise RetrievalError("rank_feature ranks with a query vector encoded here: with server-side query "
                                 "encoding, use sparse (neural_sparse) or hybrid")
        if mode is not SearchMode.BM25 and query_tokens is None and not server:
            query_tokens = self.query_tokens(text)
        if mode is SearchMode.SPARSE:
            return self._sparse(text, query_tokens, k, filters, per_document)
        if mode is SearchMode.RANK_FEATURE:
            return self.backend.search_rank_feature(query_tokens, k, filters=filters, per_document=per_document)
        if mode is SearchMode.BM25:
            return self.backend.search_bm25(text, k, filters=filters, per_document=per_document)
        # Fused per passage, then each document by its best fused passage: the passage shown is the one both
        # rankings favour (as OpenSearch, where passages are documents, normalises and then collapses)
        depth = max(k, HYBRID_CANDIDATES) * (PASSAGES_PER_DOCUMENT if per_document else 1)
        sparse = self._sparse(text, query_tokens, depth, filters, False)
        bm25 = self.backend.search_bm25(text, depth, filters=filters, per_document=False)
        fused = fuse(sparse, bm25, depth, key="id", sparse_weight=self.hybrid_weight)
        if not per_document:
            return fused[:k]
        best: dict[str, Hit] = {}
        for hit in fused:
            best.setdefault(hit.doc_id, hit)
        return list(best.values())[:k]

    def _sparse(self, text: str, query_tokens: Mapping[str, float] | None, k: int, filters: SearchFilters,
                per_document: bool) -> list[Hit]:
        if self.encoding == "server":
            return self.backend.search_text(text, k, segmenter=self.encoder.segmenter, filters=filters,
                                            per_document=per_document)
        return self.backend.search(query_tokens, k, filters=filters, per_document=per_document)

    def search(self, text: str, mode: SearchMode | str = SearchMode.SPARSE, k: int = 10, *, domain: str | None = None,
               per_document: bool = True) -> SearchResult:
        """Rank and explain: matched tokens and expansion tokens of every hit."""
        server = self.encoding == "server" and SearchMode(mode) is not SearchMode.BM25
        start = time.perf_counter()
        if server:  # the backend encodes the query inside the search; the tokens below only explain its ranking
            hits = self.rank(text, mode, k, domain=domain, per_document=per_document)
            took_ms, encode_ms = (time.perf_counter() - start) * 1000, 0.0
            tokens = self.query_tokens(text)
        else:
            tokens = self.query_tokens(text)
            encode_ms = (time.perf_counter() - start) * 1000
            hits = self.rank(text, mode, k, domain=domain, per_document=per_document, query_tokens=tokens)
            took_ms = (time.perf_counter() - start) * 1000
        vectors = self.backend.get_vectors([h.id for h in hits])
        query_words, *passage_words = own_words(self.encoder, [text, *[h.text for h in hits]])
        explained = [self._explain(h, tokens, vectors.get(h.id, {}), query_words, words)
                     for h, words in zip(hits, passage_words)]
        display = self.encoder.display_token
        shown: dict[str, float] = {}
        for name, weight in tokens.items():
            shown[display(name)] = max(weight, shown.get(display(name), 0.0))
        notice = None if SearchMode(mode) is SearchMode.BM25 else self.backend.search_notice()
        if server:
            said = (f"the query was encoded in the cluster by model {self.backend.query_model_id}; the tokens shown are "
                    f"{self.encoder.model_id} run here on the same text, to explain the ranking")
            notice = f"{notice}; {said}" if notice else said
        return SearchResult(query_tokens={t: round(w, 4) for t, w in shown.items()}, took_ms=took_ms, hits=explained,
                            encode_ms=encode_ms, notice=notice, encoding="server" if server else "client")

    def _explain(self, hit: Hit, tokens: Mapping[str, float], passage_vector: Mapping[str, float],
                 query_words: OwnWords, passage_words: OwnWords) -> ExplainedHit:
        display = self.encoder.display_token
        matched: dict[str, float] = {}
        factors: dict[str, TokenContribution] = {}
        for name, c in self.backend.explain(tokens, hit.id).items():
            matched[display(name)] = matched.get(display(name), 0.0) + c.contribution
            if display(name) not in factors or c.contribution > factors[display(name)].contribution:
                factors[display(name)] = c
        expansion: dict[str, float] = {}
        unmatched: dict[str, float] = {}
        for name in set(tokens) | set(passage_vector):
            shown = display(name)
            query_weight, passage_weight = tokens.get(name, 0.0), passage_vector.get(name, 0.0)
            if shown in query_words:
                if query_weight > 0 and shown not in passage_words and shown not in matched:
                    unmatched[shown] = max(query_weight, unmatched.get(shown, 0.0))
            elif shown not in passage_words:
                expansion[shown] = max(query_weight, passage_weight, expansion.get(shown, 0.0))
        return ExplainedHit(hit, _rounded(matched), _rounded(expansion), _rounded(unmatched), factors)


def _rounded(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights rounded to 4 places, heaviest first (ties by token)."""
    return {t: round(w, 4) for t, w in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))}
