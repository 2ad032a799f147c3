"""The query module: one prepared sparse query vector, and the OpenSearch request bodies built from it.

Both backends consume the same `prepare_query_tokens` output, so the embedded index and OpenSearch
rank with exactly the same query weights. OpenSearch's limits are applied here:

* weights must be in (0, 64]: non-finite and non-positive weights are dropped, larger ones clipped to 64
  (`rank_feature`'s boost and `neural_sparse`'s `query_tokens` both reject others);
* at most 1024 tokens (the default `indices.query.bool.max_clause_count` of `rank_feature` bools): the
  heaviest are kept;
* a token is addressed as `FIELD.TOKEN` in a `rank_feature` query and OpenSearch splits the path at the
  last '.', so every token must be an OpenSearch-safe feature name (`encoder.token_to_feature`); an unsafe
  one is refused with `ValueError`, never silently sent;
* a BM25 query longer than 200 words keeps its first 200 distinct words (each analysed term is one clause).

`neural_sparse_text_query` is the server-side form: `query_text` + `model_id`, encoded by a model deployed in
the cluster (ml-commons, `ksearch model export-opensearch`). A model that reads Kiwi-segmented text gets the
query segmented here, by the client, since the cluster cannot run Kiwi.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

from encoder import is_safe_feature_name

if TYPE_CHECKING:
    from encoder.segmentation import KiwiSegmenter

MAX_QUERY_WEIGHT = 64.0
MAX_QUERY_TOKENS = 1024
SPARSE_FIELD = "sparse"  # rank_features field holding passage vectors
TEXT_FIELD = "text"  # analysed text field for BM25
DOMAIN_FIELD = "domain"  # keyword field for the domain filter
MAX_BM25_QUERY_WORDS = 200  # distinct words of a long BM25 query kept (Korean words analyse to a few terms each)
HYBRID_SPARSE_WEIGHT = 0.5  # see retrieval.hybrid: fused = w * minmax(sparse) + (1 - w) * minmax(bm25)


def prepare_query_tokens(vector: Mapping[str, float], *, max_tokens: int = MAX_QUERY_TOKENS,
                         max_weight: float = MAX_QUERY_WEIGHT) -> dict[str, float]:
    """Drop non-finite/non-positive weights, clip to `max_weight`, keep the `max_tokens` heaviest (sorted)."""
    for name in vector:
        if not is_safe_feature_name(name):
            raise ValueError(f"query token {name!r} is not an OpenSearch-safe feature name "
                             f"(encode it with encoder.token_to_feature)")
    kept = [(n, min(float(w), max_weight)) for n, w in vector.items() if math.isfinite(float(w)) and float(w) > 0]
    kept.sort(key=lambda kv: (-kv[1], kv[0]))
    return dict(kept[:max_tokens])


def _with_domain(query: dict[str, Any], domain: str | None, domain_field: str) -> dict[str, Any]:
    if domain is None:
        return query
    return {"bool": {"must": [query], "filter": [{"term": {domain_field: domain}}]}}


def neural_sparse_query(tokens: Mapping[str, float], *, field: str = SPARSE_FIELD, domain: str | None = None,
                        domain_field: str = DOMAIN_FIELD) -> dict[str, Any]:
    """The `neural_sparse` query clause with raw `query_tokens` (no model on the cluster)."""
    prepared = prepare_query_tokens(tokens)
    return _with_domain({"neural_sparse": {field: {"query_tokens": prepared}}}, domain, domain_field)


def neural_sparse_text_query(text: str, model_id: str, *, segmenter: "KiwiSegmenter | None" = None,
                             field: str = SPARSE_FIELD, domain: str | None = None,
                             domain_field: str = DOMAIN_FIELD) -> dict[str, Any]:
    """The `neural_sparse` clause with `query_text` + `model_id`: the cluster's deployed model encodes the query.

    `segmenter`: the model's pre-segmentation (`KiwiSegmenter.for_model`); the text is sent segmented, as the
    model was trained to read it. A text with nothing to encode is refused with `ValueError`.
    """
    if not model_id:
        raise ValueError("neural_sparse with query_text needs the model_id of a deployed model (without one, "
                         "OpenSearch 3.1+ falls back to an English analyzer)")
    query_text = segmenter.segment([text])[0] if segmenter is not None else text
    if not query_text.strip():
        raise ValueError(f"query {text!r} has nothing to encode" + (" after Kiwi segmentation" if segmenter else ""))
    return _with_domain({"neural_sparse": {field: {"query_text": query_text, "model_id": model_id}}}, domain, domain_field)


def rank_feature_query(tokens: Mapping[str, float], *, field: str = SPARSE_FIELD, domain: str | None = None,
                       domain_field: str = DOMAIN_FIELD) -> dict[str, Any]:
    """A `bool` of `should` `rank_feature` clauses, one per token, linear, boosted by the query weight."""
    prepared = prepare_query_tokens(tokens)
    for name in prepared:  # prepare_query_tokens refuses unsafe names already; this holds even if that changes
        if "." in name:
            raise ValueError(f"query token {name!r} contains '.', which OpenSearch reads as a path separator in a "
                             f"rank_feature field: encode it with encoder.token_to_feature")
    should = [{"rank_feature": {"field": f"{field}.{name}", "linear": {}, "boost": weight}} for name, weight in prepared.items()]
    query: dict[str, Any] = {"bool": {"should": should, "minimum_should_match": 1 if should else 0}}
    if domain is not None:
        query["bool"]["filter"] = [{"term": {domain_field: domain}}]
    return query


def bm25_query_text(text: str, max_words: int = MAX_BM25_QUERY_WORDS) -> str:
    """`text` as is when it has at most `max_words` words; else its first `max_words` distinct words.

    Every analysed term of a `match` query is one bool clause, and OpenSearch refuses more than 1024 of them
    (`maxClauseCount`), so a very long query (pasted text) is cut down instead of failing.
    """
    words = text.split()
    if len(words) <= max_words:
        return text
    return " ".join(list(dict.fromkeys(words))[:max_words])


def bm25_query(text: str, *, field: str = TEXT_FIELD, domain: str | None = None,
               domain_field: str = DOMAIN_FIELD) -> dict[str, Any]:
    """A `match` query on the analysed text field (long texts cut by `bm25_query_text`)."""
    return _with_domain({"match": {field: {"query": bm25_query_text(text)}}}, domain, domain_field)


def search_body(query: dict[str, Any], *, size: int = 10, source_excludes: tuple[str, ...] = (SPARSE_FIELD,)) -> dict[str, Any]:
    """Wrap a query clause into a `_search` request body."""
    return {"size": size, "query": query, "_source": {"excludes": list(source_excludes)}}


def neural_sparse_body(tokens: Mapping[str, float], *, size: int = 10, domain: str | None = None,
                       field: str = SPARSE_FIELD) -> dict[str, Any]:
    """`{"query": {"neural_sparse": {FIELD: {"query_tokens": {...}}}}}` (+ domain filter)."""
    return search_body(neural_sparse_query(tokens, field=field, domain=domain), size=size)


def neural_sparse_text_body(text: str, model_id: str, *, segmenter: "KiwiSegmenter | None" = None, size: int = 10,
                            domain: str | None = None, field: str = SPARSE_FIELD) -> dict[str, Any]:
    """`{"query": {"neural_sparse": {FIELD: {"query_text": ..., "model_id": ...}}}}` (+ domain filter)."""
    return search_body(neural_sparse_text_query(text, model_id, segmenter=segmenter, field=field, domain=domain), size=size)


def rank_feature_body(tokens: Mapping[str, float], *, size: int = 10, domain: str | None = None,
                      field: str = SPARSE_FIELD) -> dict[str, Any]:
    """The `rank_feature` form of the sparse query (works without the neural-search plugin)."""
    return search_body(rank_feature_query(tokens, field=field, domain=domain), size=size)


def bm25_body(text: str, *, size: int = 10, domain: str | None = None, field: str = TEXT_FIELD) -> dict[str, Any]:
    """BM25 `match` request body (+ domain filter)."""
    return search_body(bm25_query(text, field=field, domain=domain), size=size)
