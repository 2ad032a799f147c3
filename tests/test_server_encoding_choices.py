"""Server-side encoding without a node: the index mapping it creates, the names its models are registered under,
what refuses it (embedded backend, unknown encodings, rank_feature), and what the app offers.
The real node's flow is in tests/test_server_encoding.py."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from encoder import SparseEncoder
from ingest.worker import ingest_fingerprint, model_fingerprint
from ksearch.cli import app
from retrieval.backends import EmbeddedIndex
from retrieval.backends.ml_commons_models import DOCUMENTS, QUERIES, needs_query_model, registered_name
from retrieval.backends.opensearch_mapping import BM25_NORI, index_body
from retrieval.backends.opensearch_server_encoding import pipeline_name
from retrieval.errors import RetrievalError
from retrieval.index_meta import IndexMeta, ServerEncoding
from retrieval.searcher import Searcher
from search_ui.backend_choice import encodings_for, modes_for


@pytest.fixture(scope="module")
def encoder(tiny_model_dir) -> SparseEncoder:
    return SparseEncoder.load(tiny_model_dir)


def _server_meta(source_field: str) -> IndexMeta:
    return IndexMeta(name="docs", model_id="m", vocab_hash="v", document_pruning="top_k:200",
                     server_encoding=ServerEncoding(document_model_id="D", query_model_id="Q",
                                                    pipeline=pipeline_name("docs"), source_field=source_field))


def test_a_server_encoded_index_has_its_pipeline_as_default_and_the_segmented_field_unindexed():
    body = index_body(_server_meta("model_text"), BM25_NORI)
    assert body["settings"]["index"]["default_pipeline"] == "ksearch-docs-sparse-encoding"
    assert body["mappings"]["properties"]["model_text"] == {"type": "text", "index": False}
    assert body["mappings"]["_meta"]["ksearch"]["server_encoding"]["query_model_id"] == "Q"
    raw = index_body(_server_meta("text"), BM25_NORI)  # a model that reads raw text: the pipeline encodes `text`
    assert "model_text" not in raw["mappings"]["properties"] and raw["settings"]["index"]["default_pipeline"]
    plain = index_body(IndexMeta(name="docs", model_id="m", vocab_hash="v"), BM25_NORI)
    assert "default_pipeline" not in plain["settings"]["index"] and "model_text" not in plain["mappings"]["properties"]


def test_registered_names_fingerprint_the_weights_role_and_query_pruning(tiny_model_dir, tmp_path, encoder):
    name = registered_name(encoder, DOCUMENTS, tiny_model_dir)
    assert name == registered_name(encoder, DOCUMENTS, tiny_model_dir) and encoder.model_id in name
    assert name != registered_name(encoder, QUERIES, tiny_model_dir)
    pruned = SparseEncoder.load(tiny_model_dir, query_pruning="top_k:5")
    assert registered_name(pruned, QUERIES, tiny_model_dir) != registered_name(encoder, QUERIES, tiny_model_dir)
    assert registered_name(pruned, DOCUMENTS, tiny_model_dir) == name  # documents are exported unpruned
    retrained = shutil.copytree(tiny_model_dir, tmp_path / "retrained")
    weights = next(retrained.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    assert registered_name(encoder, DOCUMENTS, retrained) != name  # other weights: registered anew, never reused


def test_only_models_that_prune_or_limit_queries_need_a_query_export(encoder, tiny_model_dir):
    assert not needs_query_model(encoder)
    assert needs_query_model(SparseEncoder.load(tiny_model_dir, query_pruning="top_k:40"))
    assert needs_query_model(SimpleNamespace(query_pruning="none", query_expansion=False))


def test_a_client_encoded_index_keeps_its_fingerprint_and_refuses_texts(encoder, tmp_path):
    meta = IndexMeta.for_encoder("e", encoder)
    with EmbeddedIndex.open_or_create(tmp_path / "e", meta) as index:
        assert not index.encodes_documents and index.query_model_id is None
        assert ingest_fingerprint(encoder, index) == model_fingerprint(encoder)
        with pytest.raises(NotImplementedError, match="use add"):
            index.add_texts([], [])
        with pytest.raises(RetrievalError, match="no model in the backend"):
            Searcher(encoder, index, encoding="server")
        with pytest.raises(ValueError, match="client, server"):
            Searcher(encoder, index, encoding="cluster")


@pytest.mark.parametrize("args, message", [
    (["ingest", "x.jsonl", "--encoding", "server"], "needs --backend opensearch"),
    (["ingest", "x.jsonl", "--model-id", "abc"], "--backend opensearch --encoding server"),
    (["ingest", "x.jsonl", "--backend", "opensearch", "--encoding", "client", "--model-id", "abc"], "--encoding server"),
    (["ingest", "x.jsonl", "--encoding", "cluster"], "must be one of client, server"),
    (["search", "보증금", "--encoding", "server"], "needs --backend opensearch"),
    (["search", "보증금", "--backend", "opensearch", "--model-id", "abc"], "--encoding server"),
])
def test_the_cli_refuses_server_encoding_where_it_cannot_work(home, args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_the_app_offers_server_encoding_only_for_an_index_with_a_query_model():
    assert encodings_for("opensearch", _server_meta("model_text")) == ["client", "server"]
    assert encodings_for("opensearch", IndexMeta(name="d", model_id="m", vocab_hash="v")) == ["client"]
    assert encodings_for("embedded", _server_meta("model_text")) == ["client"]
    assert "rank_feature" in modes_for("opensearch") and "rank_feature" not in modes_for("opensearch", "server")
    assert modes_for("opensearch", "server") == ["sparse", "bm25", "hybrid"]
