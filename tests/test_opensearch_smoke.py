"""Smoke tests against a real OpenSearch node: rank_features, rank_feature, neural_sparse and nori."""

from __future__ import annotations

import math
import os
import struct
import uuid

import pytest

pytestmark = pytest.mark.opensearch

# Korean feature names, as a SPLADE encoder over a Korean vocabulary would produce them.
DOCS: dict[str, dict[str, float]] = {
    "lease-1": {"임대인": 1.7, "보증금": 2.3, "반환": 0.8},
    "lease-2": {"임차인": 0.9, "보증금": 1.1, "계약": 3.14159},
    "lease-3": {"임대인": 0.123456, "반환": 5.55, "##금": 0.01},
    "med-1": {"진료": 2.0, "환자": 1.3},
}
QUERY: dict[str, float] = {"임대인": 1.2, "보증금": 0.7, "반환": 2.5, "없는토큰": 9.0}


def trunc9(x: float) -> float:
    """``x`` as Lucene's FeatureField stores it: float32 keeping the top 9 significant bits (rounded down)."""
    (bits,) = struct.unpack("<I", struct.pack("<f", x))
    (out,) = struct.unpack("<f", struct.pack("<I", bits & 0xFFFF8000))
    return out


def expected_score(query: dict[str, float], doc: dict[str, float]) -> float:
    """Dot product of the query weights with the stored (truncated) document weights."""
    return sum(w * trunc9(doc[t]) for t, w in query.items() if t in doc)


def test_trunc9_keeps_nine_significant_bits() -> None:
    assert trunc9(1.0) == 1.0
    assert trunc9(1.7) == 1.69921875  # 1 + 179/256
    assert trunc9(2.3) == 2.296875
    for x in (0.123456, 3.14159, 5.55, 63.9):
        assert 0 <= x - trunc9(x) < x * 2**-8


@pytest.fixture(scope="module")
def sparse_index(opensearch_client):
    name = f"ksearch-smoke-{uuid.uuid4().hex[:8]}"
    opensearch_client.indices.create(
        index=name,
        body={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"properties": {"title": {"type": "keyword"}, "sparse": {"type": "rank_features"}}},
        },
    )
    for doc_id, feats in DOCS.items():
        opensearch_client.index(index=name, id=doc_id, body={"title": doc_id, "sparse": feats})
    opensearch_client.indices.refresh(index=name)
    yield name
    opensearch_client.indices.delete(index=name, ignore_unavailable=True)


def _check_scores(hits: list[dict], query: dict[str, float]) -> None:
    expected = {d: expected_score(query, f) for d, f in DOCS.items() if expected_score(query, f) > 0}
    got = {h["_id"]: h["_score"] for h in hits}
    assert set(got) == set(expected), (got, expected)
    for doc_id, score in got.items():
        assert math.isclose(score, expected[doc_id], rel_tol=1e-5), (doc_id, score, expected[doc_id])
    # hits come back best first
    assert [h["_id"] for h in hits] == sorted(expected, key=expected.get, reverse=True)


@pytest.mark.every_opensearch_version
def test_rank_features_mapping(opensearch_client, sparse_index) -> None:
    mapping = opensearch_client.indices.get_mapping(index=sparse_index)[sparse_index]["mappings"]
    assert mapping["properties"]["sparse"]["type"] == "rank_features"
    assert opensearch_client.count(index=sparse_index)["count"] == len(DOCS)


@pytest.mark.every_opensearch_version
def test_rank_feature_linear_is_dot_product(opensearch_client, sparse_index) -> None:
    should = [{"rank_feature": {"field": f"sparse.{tok}", "linear": {}, "boost": w}} for tok, w in QUERY.items()]
    res = opensearch_client.search(index=sparse_index, body={"query": {"bool": {"should": should}}, "size": 10})
    _check_scores(res["hits"]["hits"], QUERY)


@pytest.mark.every_opensearch_version
def test_neural_sparse_query_tokens_is_dot_product(opensearch_client, sparse_index) -> None:
    plugins = {p["component"] for p in opensearch_client.cat.plugins(format="json")}
    assert "opensearch-neural-search" in plugins, f"neural-search plugin missing; installed: {sorted(plugins)}"
    res = opensearch_client.search(
        index=sparse_index,
        body={"query": {"neural_sparse": {"sparse": {"query_tokens": QUERY}}}, "size": 10},
    )
    _check_scores(res["hits"]["hits"], QUERY)


@pytest.mark.every_opensearch_version
def test_nori_analyzer(opensearch_client) -> None:
    plugins = {p["component"] for p in opensearch_client.cat.plugins(format="json")}
    if "analysis-nori" not in plugins:
        message = f"analysis-nori not installed on this node (plugins: {sorted(plugins)}); it needs javac at assembly"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    res = opensearch_client.indices.analyze(body={"analyzer": "nori", "text": "임대인이 보증금을 반환하지 않았다"})
    tokens = [t["token"] for t in res["tokens"]]
    assert "반환" in tokens and "보증" in tokens, tokens
    assert "이" not in tokens and "을" not in tokens, tokens  # particles dropped by the POS filter
    res = opensearch_client.indices.analyze(
        body={"tokenizer": "nori_tokenizer", "filter": ["nori_readingform", "nori_number"], "text": "漢字 3천만원"}
    )
    tokens = [t["token"] for t in res["tokens"]]
    assert tokens[0] == "한자" and "30000000" in tokens, tokens


def _managed_node_url(opensearch_url: str) -> str:
    """The test node's URL when `ksearch opensearch start` runs it (always in CI); a node only named by
    KSEARCH_OPENSEARCH_URL (e.g. Docker) is not managed, so there is nothing to check outside CI."""
    if os.environ.get("KSEARCH_OPENSEARCH_URL") and os.environ.get("CI", "").lower() != "true":
        pytest.skip("the test node is KSEARCH_OPENSEARCH_URL's, not one `ksearch opensearch start` runs")
    return opensearch_url


def test_cli_status_reports_the_managed_node(opensearch_url) -> None:
    from typer.testing import CliRunner

    from ksearch.opensearch_cli import opensearch_app

    url = _managed_node_url(opensearch_url)
    result = CliRunner().invoke(opensearch_app, ["status"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == url


def test_cli_status_never_claims_a_node_it_does_not_run(opensearch_url, tmp_path, monkeypatch) -> None:
    """A running node named by KSEARCH_OPENSEARCH_URL is not `ksearch opensearch start`'s: status says so (exit 1)."""
    from typer.testing import CliRunner

    from ksearch.opensearch_cli import opensearch_app

    monkeypatch.setenv("KSEARCH_OPENSEARCH_URL", opensearch_url)  # answers
    monkeypatch.setenv("KSEARCH_CACHE_DIR", str(tmp_path / "no-node"))  # no node was started from here
    result = CliRunner().invoke(opensearch_app, ["status"])
    assert result.exit_code == 1 and result.output.strip() == "not running", result.output


def test_settings_find_the_managed_node_without_its_url(opensearch_url, monkeypatch, tmp_path) -> None:
    """Without KSEARCH_OPENSEARCH_URL the settings point at the node `ksearch opensearch start` runs."""
    from retrieval.settings import Settings

    url = _managed_node_url(opensearch_url)
    monkeypatch.delenv("KSEARCH_OPENSEARCH_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    assert Settings().opensearch_url == url


def test_an_explicit_url_wins_over_the_managed_node(opensearch_url, monkeypatch, tmp_path) -> None:
    from retrieval.settings import Settings

    monkeypatch.setenv("KSEARCH_OPENSEARCH_URL", "http://opensearch.example:9200")
    monkeypatch.chdir(tmp_path)
    assert Settings().opensearch_url == "http://opensearch.example:9200"
