"""A real 3-node OpenSearch cluster (`LocalCluster`, `ksearch opensearch start --nodes 3`): the same results as one
node, an ingest that loses a node half-way and is re-run loses and duplicates nothing, and searches keep answering
with a node down. The cluster is private (own cache folder, the default installation shared), started once for the
module and stopped at its end; it cannot start: skipped, or failed under CI."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encoder import SparseEncoder
from ingest import ingest_path
from ingest_reference import clean_ingest_contents, stored_contents
from opensearch_fixture import unavailable
from retrieval.backends.opensearch import OpenSearchIndex
from retrieval.backends.opensearch_connection import OpenSearchConnection, redact_url
from retrieval.errors import RetrievalError
from retrieval.index_meta import IndexMeta
from tiny_models import KOREAN_SENTENCES

QUERIES = ["보증금 반환", "당뇨 진단", "임대차 계약 해지", "혈압 약 부작용", "손해 배상 청구", "수술 후 회복", "문서 번호",
           "계약 위반", "병원 진료", "법원 판결", "세입자 권리", "환자 상태", "이혼 소송", "감기 증상", "상속 재산",
           "진통제 복용", "근로 계약", "검사 결과", "소송 비용", "건강 검진"]


def _corpus(path: Path, n: int) -> Path:
    k = len(KOREAN_SENTENCES)
    rows = [{"id": f"C{i:03d}", "domain": "legal" if i % 2 else "medical", "title": f"문서 {i}",
             "text": " ".join(KOREAN_SENTENCES[(i * 7 + j) % k] for j in range(1 + i % 4)) + f" 번호 {i}"}
            for i in range(n)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_comma_separated_url_gives_a_client_of_every_node():
    conn = OpenSearchConnection(url="https://u:secret@h1:9200, https://h2:9201/", timeout=5)
    assert conn.urls == ["https://u:secret@h1:9200", "https://h2:9201"]
    assert "secret" not in conn.safe_url and "secret" not in repr(conn) and "h2:9201" in conn.safe_url
    assert redact_url("http://a:b@x:1,http://y:2") == "http://x:1,http://y:2"
    client = conn.client()
    try:
        assert sorted(c.host for c in client.transport.connection_pool.connections) == ["https://h1:9200",
                                                                                         "https://h2:9201"]
    finally:
        client.close()
    with pytest.raises(RetrievalError, match="KSEARCH_OPENSEARCH_URL"):
        OpenSearchConnection(url=" , ").client()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A private 3-node cluster of the default version (stopped at the end)."""
    from ksearch.opensearch_node import NodeStartError, OpenSearchNodeError, cluster_sharing_installation

    local = None
    try:
        local = cluster_sharing_installation(tmp_path_factory.mktemp("os-cluster"), 3)
        local.start()
    except OpenSearchNodeError as e:
        tail = e.log_tail if isinstance(e, NodeStartError) else ""
        if local is not None:
            local.stop()
        unavailable(f"could not start a local 3-node OpenSearch cluster: {e}" + (f"\n--- log tail ---\n{tail}" if tail else ""))
    try:
        yield local
    finally:
        local.stop()


def _conn(cluster) -> OpenSearchConnection:
    """A connection to every running member (what `ksearch opensearch start --nodes 3` records for the settings)."""
    return OpenSearchConnection(url=cluster.start(), timeout=30)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir) -> SparseEncoder:
    return SparseEncoder.load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, encoder):
    """The corpus, what a clean ingest stores from it (passage id -> (content hash, text)), and its query vectors."""
    root = tmp_path_factory.mktemp("cluster-ref")
    corpus = _corpus(root / "c.jsonl", 90)
    return corpus, clean_ingest_contents(corpus, root / "clean", encoder), encoder.encode_queries(QUERIES)


def _index(conn, encoder, corpus, tmp_path, *, shards: int, replicas: int) -> OpenSearchIndex:
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    store = OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder), conn=conn, shards=shards,
                                           replicas=replicas, dead_letter_dir=tmp_path)
    ingest_path(corpus, store, encoder, progress=False)
    store.client.indices.refresh(index=store.concrete)
    return store


def _top10(store, query_vectors) -> list[list[tuple[str, float]]]:
    return [[(h.id, h.score) for h in store.search(q, k=10)] for q in query_vectors]


def _assert_same_top10(got, want) -> None:
    """Same scores rank by rank; the same ids, except among hits tied with the 10th (which of them make the cut
    depends on shard order)."""
    for q, (g, w) in enumerate(zip(got, want)):
        assert len(g) == len(w), (QUERIES[q], g, w)
        assert [s for _, s in g] == pytest.approx([s for _, s in w], rel=1e-5, abs=1e-6), (QUERIES[q], g, w)
        cut = w[-1][1] if w else 0.0
        above = lambda hits: {i for i, s in hits if s > cut + max(1e-6, abs(cut) * 1e-5)}  # noqa: E731
        assert above(g) == above(w), (QUERIES[q], g, w)


@pytest.fixture(scope="module")
def single_node_top10(opensearch_url, encoder, reference, tmp_path_factory):
    """The top 10 of every query on the single node (1 shard, no replica)."""
    corpus, _, queries = reference
    store = _index(OpenSearchConnection(url=opensearch_url, timeout=30), encoder, corpus,
                   tmp_path_factory.mktemp("dead-single"), shards=1, replicas=0)
    try:
        return _top10(store, queries)
    finally:
        store.delete_index()
        store.close()


@pytest.mark.opensearch
def test_the_cli_shows_the_cluster_and_the_settings_find_every_node(cluster, monkeypatch):
    from ksearch.opensearch_cli import opensearch_app
    from retrieval.settings import Settings

    monkeypatch.setenv("KSEARCH_CACHE_DIR", str(cluster.cache_dir))
    monkeypatch.delenv("KSEARCH_OPENSEARCH_URL", raising=False)
    urls = cluster.start()
    assert len(urls.split(",")) == 3
    assert Settings().opensearch_url == urls
    result = CliRunner().invoke(opensearch_app, ["status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == urls
    assert "green, 3 of 3 nodes" in lines[1] and f"OpenSearch {cluster.version}" in lines[1], lines[1]
    assert sum(" joined" in line for line in lines[2:]) == 3 and sum(line.startswith("*") for line in lines) == 1
    result = CliRunner().invoke(opensearch_app, ["start"])  # a single node beside the cluster: refused
    assert result.exit_code == 1 and "3-node cluster runs" in result.output, result.output


@pytest.mark.opensearch
def test_three_shards_one_replica_give_the_single_nodes_results(cluster, encoder, reference, single_node_top10,
                                                                tmp_path):
    corpus, want, queries = reference
    store = _index(_conn(cluster), encoder, corpus, tmp_path, shards=3, replicas=1)
    try:
        settings = store.client.indices.get_settings(index=store.concrete)[store.concrete]["settings"]["index"]
        assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("3", "1")
        nodes = {s["node"] for s in store.client.cat.shards(index=store.concrete, format="json")}
        assert len(nodes) == 3  # the shards are spread over every node
        assert store.count() == len(want)
        _assert_same_top10(_top10(store, queries), single_node_top10)
    finally:
        store.delete_index()
        store.close()


@pytest.mark.opensearch
def test_a_node_killed_during_an_ingest_then_rerun_loses_and_duplicates_nothing(cluster, encoder, reference,
                                                                               tmp_path):
    corpus, want, _ = reference
    conn = _conn(cluster)  # every member, node-0 first
    name = f"cluster-kill-{uuid.uuid4().hex[:8]}"
    store = OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder), conn=conn, shards=3,
                                           replicas=1, dead_letter_dir=tmp_path)
    # Creating waited for the replicas: a node lost before they started would take its primaries (red until back).
    assert store.client.cluster.health(index=store.concrete)["status"] == "green"

    def kill_after_three_batches(written: int) -> None:
        if written == 24:
            cluster.kill_member("node-0")  # the node the client lists first

    try:
        try:
            ingest_path(corpus, store, encoder, progress=False, write_batch=8,
                        on_batch_written=kill_after_three_batches)
        except RetrievalError:
            pass  # the run may fail (a write that was in flight on the killed node) or finish on the other nodes
        assert not any(m.alive for m in cluster.members_status() if m.name == "node-0")
        store.close()
        store = OpenSearchIndex.open(name, conn=conn)
        report = ingest_path(corpus, store, encoder, progress=False, write_batch=8)
        assert not report.rejected
        assert report.skipped_unchanged + report.written == len(want)
        store.client.indices.refresh(index=store.concrete)
        assert store.count() == len(want)  # 0 duplicated
        assert stored_contents(store) == want  # 0 lost, 0 changed
    finally:
        store.delete_index()
        store.close()


@pytest.mark.opensearch
def test_with_one_replica_searches_keep_answering_with_a_node_down(cluster, encoder, reference, single_node_top10,
                                                                  tmp_path):
    corpus, _, queries = reference
    store = _index(_conn(cluster), encoder, corpus, tmp_path, shards=3, replicas=1)  # (re)starts any dead member
    try:
        health = store.client.cluster.health(index=store.concrete, wait_for_status="green", request_timeout=60)
        assert health["status"] == "green", health
        cluster.kill_member("node-0")  # the node the client lists first; no time to re-allocate its shards
        failed, results = 0, []
        for q in queries:
            try:
                results.append([(h.id, h.score) for h in store.search(q, k=10)])
            except RetrievalError:
                failed += 1
        assert failed == 0
        _assert_same_top10(results, single_node_top10)
    finally:
        store.delete_index()
        store.close()
