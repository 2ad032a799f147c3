"""The query module: prepared query vectors and OpenSearch request bodies."""

from __future__ import annotations

import math

import pytest

from retrieval.query import (
    MAX_QUERY_TOKENS,
    bm25_body,
    neural_sparse_body,
    prepare_query_tokens,
    rank_feature_body,
)


def test_prepare_clips_drops_and_keeps_heaviest():
    vector = {"보증금": 100.0, "전세": 2.5, "zero": 0.0, "neg": -1.0, "nan": math.nan, "inf": math.inf}
    assert prepare_query_tokens(vector) == {"보증금": 64.0, "전세": 2.5}
    many = {f"t{i}": 1 + i / 10_000 for i in range(3000)}
    kept = prepare_query_tokens(many)
    assert len(kept) == MAX_QUERY_TOKENS
    assert min(kept.values()) > max(w for t, w in many.items() if t not in kept)


def test_unsafe_token_is_refused():
    with pytest.raises(ValueError, match="OpenSearch-safe"):
        prepare_query_tokens({"제623조.": 1.0})
    assert prepare_query_tokens({"제623조%2E": 1.0}) == {"제623조%2E": 1.0}


def test_neural_sparse_body_with_and_without_domain():
    body = neural_sparse_body({"보증금": 70.0, "x": -1}, size=5)
    assert body["size"] == 5
    assert body["query"] == {"neural_sparse": {"sparse": {"query_tokens": {"보증금": 64.0}}}}
    filtered = neural_sparse_body({"보증금": 1.0}, domain="legal")["query"]
    assert filtered["bool"]["must"] == [{"neural_sparse": {"sparse": {"query_tokens": {"보증금": 1.0}}}}]
    assert filtered["bool"]["filter"] == [{"term": {"domain": "legal"}}]


def test_rank_feature_body():
    query = rank_feature_body({"보증금": 2.0, "전세": 80.0}, domain="medical")["query"]["bool"]
    assert query["should"] == [
        {"rank_feature": {"field": "sparse.전세", "linear": {}, "boost": 64.0}},
        {"rank_feature": {"field": "sparse.보증금", "linear": {}, "boost": 2.0}},
    ]
    assert query["filter"] == [{"term": {"domain": "medical"}}]
    big = rank_feature_body({f"t{i}": 1.0 for i in range(2000)})["query"]["bool"]["should"]
    assert len(big) == 1024 and all("." not in c["rank_feature"]["field"][len("sparse."):] for c in big)


def test_bm25_body():
    assert bm25_body("전세 보증금", size=3)["query"] == {"match": {"text": {"query": "전세 보증금"}}}
    filtered = bm25_body("전세 보증금", domain="legal")["query"]["bool"]
    assert filtered["must"] == [{"match": {"text": {"query": "전세 보증금"}}}]
    assert filtered["filter"] == [{"term": {"domain": "legal"}}]


def test_rank_feature_refuses_a_dotted_token_with_a_clear_error(monkeypatch):
    import retrieval.query as query

    with pytest.raises(ValueError, match="OpenSearch-safe"):  # the first line of defence
        rank_feature_body({"제623조.": 1.0})
    monkeypatch.setattr(query, "prepare_query_tokens", dict)  # the second, which `python -O` keeps too
    with pytest.raises(ValueError, match="contains '.'"):
        rank_feature_body({"제623조.": 1.0})
