"""Server-side encoding on a real ml-commons node, with the shipped model: its exports are registered and deployed,
a slice of the sample corpus is ingested once with `--encoding server` (OpenSearch encodes through the ingest
pipeline, from the client's Kiwi-segmented text) and once client-side, and both rank the sample queries alike.

The models are shared by the module (registered once) and undeployed and deleted at its end, unless they were
registered before the module ran (then they belong to someone's index and are left alone)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encoder import SparseEncoder
from encoder.model_resolution import SHIPPED_MODEL_DIR, SHIPPED_MODEL_ID
from ksearch.cli import app
from retrieval.backends.ml_commons_bodies import MODEL_TEXT_FIELD
from retrieval.backends.ml_commons_client import (delete_model, find_models, get_model, predict_sparse,
                                                  undeploy_model)
from retrieval.backends.ml_commons_models import (DOCUMENTS, QUERIES, ensure_server_models, export_record,
                                                  registered_name)
from retrieval.backends.opensearch_connection import OpenSearchConnection
from retrieval.backends.opensearch_server_encoding import ServerEncodedIndex, pipeline_name

pytestmark = pytest.mark.opensearch

ROOT = Path(__file__).resolve().parent.parent
SLICE_EVERY = 20  # every 20th document of sample_data/corpus.jsonl: 60 documents of both domains
QUERIES_TEXT = ["집주인이 계약 끝났는데 돈을 안 돌려줘요", "임차권등기명령 신청 서류", "당뇨병 진단 기준",
                "부당해고 구제신청 기간", "고혈압 약 먹으면서 운동해도 되나요"]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def conn(opensearch_ml_url) -> OpenSearchConnection:
    return OpenSearchConnection(url=opensearch_ml_url, timeout=120)


@pytest.fixture(scope="module")
def encoder() -> SparseEncoder:
    return SparseEncoder.load(SHIPPED_MODEL_ID)


@pytest.fixture(scope="module")
def models(conn, encoder):
    """The shipped model's document and query exports, registered and deployed on the node (exported here unless
    the node has them under their fingerprinted names already)."""
    client = conn.client()
    names = [registered_name(encoder, role, SHIPPED_MODEL_DIR) for role in (DOCUMENTS, QUERIES)]
    before = {m for name in names for m in find_models(client, name)}
    try:
        yield ensure_server_models(client, encoder, source=SHIPPED_MODEL_DIR)
    finally:
        for model_id in {m for name in names for m in find_models(client, name)} - before:
            undeploy_model(client, model_id)
            delete_model(client, model_id)
        client.close()


@pytest.fixture(scope="module")
def corpus_slice(tmp_path_factory) -> Path:
    lines = (ROOT / "sample_data" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[::SLICE_EVERY]
    path = tmp_path_factory.mktemp("slice") / "slice.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cli(conn, tmp_path_factory):
    """Run `ksearch ...` against the ML node with a private KSEARCH_HOME."""
    from retrieval.settings import get_settings

    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KSEARCH_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("KSEARCH_OPENSEARCH_URL", conn.url)
        mp.delenv("KSEARCH_MODEL", raising=False)
        get_settings.cache_clear()

        def run(*args: str, ok: bool = True):
            result = runner.invoke(app, list(args))
            if ok:
                assert result.exit_code == 0, result.output
            return result

        yield run
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def indexes(models, corpus_slice, cli, conn):
    """(server-encoded index, client-encoded index) of the slice, built by `ksearch ingest`; deleted at the end."""
    server, client = f"se-server-{uuid.uuid4().hex[:8]}", f"se-client-{uuid.uuid4().hex[:8]}"
    try:
        first = cli("ingest", str(corpus_slice), "--backend", "opensearch", "--index", server, "--encoding", "server", "-q")
        second = cli("ingest", str(corpus_slice), "--backend", "opensearch", "--index", client, "-q")
        yield server, client, first.stdout, _written(second.stdout)
    finally:
        for name in (server, client):
            try:
                store = ServerEncodedIndex.open(name, conn=conn)
                store.delete_index()
                store.close()
            except Exception:  # noqa: BLE001 - an ingest that failed left nothing to delete
                pass


def _written(summary: str) -> int:
    match = re.search(r"-> (\d+) passages; written (\d+)", summary)
    assert match and match[1] == match[2], summary
    return int(match[1])


def test_deployed_exports_encode_like_the_sparse_encoder(conn, models, encoder):
    texts = ["임대인은 계약이 끝나면 임차인에게 보증금을 반환해야 합니다.", "HbA1c 6.5% 이상이면 당뇨병으로 진단합니다.",
             *QUERIES_TEXT[:2]]
    unpruned = SparseEncoder.load(SHIPPED_MODEL_ID, document_pruning="none")
    client = conn.client()
    try:
        for model_id, expected, role in ((models.document_model_id, unpruned.encode_documents(texts), DOCUMENTS),
                                         (models.query_model_id, encoder.encode_queries(texts), QUERIES)):
            assert export_record(get_model(client, model_id))["role"] == role
            server = predict_sparse(client, model_id, encoder.model_text(texts))  # the cluster cannot segment
            for text, got, want in zip(texts, server, expected):
                assert len(want) > 5 and set(got) == set(want), (role, text, set(got) ^ set(want))
                worst = max(abs(got[k] - want[k]) for k in want)
                assert worst <= TOLERANCE, (role, text, worst)
        assert models.query_model_id != models.document_model_id  # the shipped model prunes queries (top_k:40)
        names = [registered_name(encoder, role, SHIPPED_MODEL_DIR) for role in (DOCUMENTS, QUERIES)]
        registered = [find_models(client, name) for name in names]
        assert models.document_model_id in registered[0] and models.query_model_id in registered[1]
        assert ensure_server_models(client, encoder, source=SHIPPED_MODEL_DIR) == models  # found by name again
        assert [find_models(client, name) for name in names] == registered  # nothing registered twice
    finally:
        client.close()


def test_server_ingest_records_the_models_and_sends_segmented_text(indexes, models, conn, encoder):
    server, client_side, summary, passages = indexes
    assert "read 60 documents" in summary and _written(summary) == passages > 60
    assert "failed 0" in summary and "rejected" not in summary
    store = ServerEncodedIndex.open(server, conn=conn)
    try:
        recorded = store.meta.server_encoding
        assert (recorded.document_model_id, recorded.query_model_id) == (models.document_model_id, models.query_model_id)
        assert recorded.pipeline == pipeline_name(server) and recorded.source_field == MODEL_TEXT_FIELD
        settings = store.client.indices.get_settings(index=store.concrete)[store.concrete]["settings"]["index"]
        assert settings["default_pipeline"] == recorded.pipeline
        processor = store.client.ingest.get_pipeline(id=recorded.pipeline)[recorded.pipeline]["processors"][0]
        assert processor["sparse_encoding"] == {"model_id": models.document_model_id,
                                                "field_map": {MODEL_TEXT_FIELD: "sparse"},
                                                "prune_type": "top_k", "prune_ratio": 200}
        other = ServerEncodedIndex.open(client_side, conn=conn)
        ids = sorted(other.content_hashes())[:6]
        assert len(ids) == 6 and store.count() == other.count() == passages
        server_vectors, client_vectors = store.get_vectors(ids), other.get_vectors(ids)
        for pid in ids:
            got, want = server_vectors[pid], client_vectors[pid]
            assert set(got) == set(want), pid
            assert max(abs(got[k] - want[k]) for k in want) <= TOLERANCE, pid
        stored = store.client.get(index=store.concrete, id=ids[0])["_source"]
        assert stored[MODEL_TEXT_FIELD] == encoder.model_text([stored["text"]])[0] != stored["text"]
        other.close()
    finally:
        store.close()


@pytest.mark.parametrize("mode", ["sparse", "hybrid"])
def test_server_encoded_search_ranks_like_client_encoding(indexes, cli, mode):
    server, client_side, _, _ = indexes
    for query in QUERIES_TEXT if mode == "sparse" else QUERIES_TEXT[:2]:
        got = json.loads(cli("search", query, "--backend", "opensearch", "--index", server, "--encoding", "server",
                             "--mode", mode, "--json").stdout)
        want = json.loads(cli("search", query, "--backend", "opensearch", "--index", client_side, "--mode", mode,
                              "--json").stdout)
        assert got["encoding"] == "server" and want["encoding"] == "client"
        assert len(want["hits"]) == 10
        assert [h["doc_id"] for h in got["hits"]] == [h["doc_id"] for h in want["hits"]], query
        for g, w in zip(got["hits"], want["hits"]):
            assert g["score"] == pytest.approx(w["score"], rel=1e-3), (query, g["doc_id"])
        # the explanation is the same model's, run on the client
        assert got["hits"][0]["matched_tokens"] and got["hits"][0]["matched_tokens"] == want["hits"][0]["matched_tokens"]
        assert "encoded in the cluster" in got["notice"]


def test_rerunning_a_server_ingest_writes_nothing_and_keeps_its_encoding(indexes, cli, corpus_slice):
    server, _, _, passages = indexes
    again = cli("ingest", str(corpus_slice), "--backend", "opensearch", "--index", server, "-q")  # encoding: the index's
    assert f"written 0, skipped (unchanged) {passages}" in again.stdout, again.stdout
    refused = cli("ingest", str(corpus_slice), "--backend", "opensearch", "--index", server, "--encoding", "client",
                  "-q", ok=False)
    assert refused.exit_code == 2 and "encoded in the cluster" in refused.output and "--rebuild" in refused.output


def test_a_query_model_is_refused_for_documents(models, cli, corpus_slice, conn):
    name = f"se-refused-{uuid.uuid4().hex[:8]}"
    refused = cli("ingest", str(corpus_slice), "--backend", "opensearch", "--index", name, "--encoding", "server",
                  "--model-id", models.query_model_id, "-q", ok=False)
    assert refused.exit_code == 2 and "query export" in refused.output, refused.output
    client = conn.client()
    assert not client.indices.exists_alias(name=name) and not client.indices.get(index=f"{name}-*")
    client.close()


def test_any_client_write_is_encoded_by_the_default_pipeline(indexes, conn, encoder):
    server = indexes[0]
    store = ServerEncodedIndex.open(server, conn=conn)
    text = "전세 계약이 끝나면 보증금을 돌려받을 수 있습니다."
    try:
        store.client.index(index=server, id="plain-client#0", refresh=True,
                           body={"doc_id": "plain-client", "text": text, MODEL_TEXT_FIELD: encoder.model_text([text])[0]})
        stored = store.get_vectors(["plain-client#0"])["plain-client#0"]
        want = SparseEncoder.load(SHIPPED_MODEL_ID).encode_documents([text])[0]
        assert set(stored) == set(want) and len(want) > 5
    finally:
        store.client.delete(index=server, id="plain-client#0", refresh=True)
        store.close()
