"""Request bodies for serving a model inside OpenSearch: ml-commons registration, the sparse_encoding pipeline,
and the server-side `neural_sparse` query (pure builders; the real-node tests come with ml-commons on the node)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from encoder.pruning import Pruning
from encoder.segmentation import KiwiSegmenter
from encoder.torchscript_export import TorchScriptExport, export_torchscript, file_sha256, read_export
from retrieval.backends.ml_commons_bodies import (
    MODEL_TEXT_FIELD,
    chunk_count,
    pipeline_body_for,
    register_meta_body,
    register_model_body,
    sparse_encoding_pipeline_body,
)
from retrieval.query import neural_sparse_text_body, neural_sparse_text_query

KIWI = {"type": "kiwi", "keep_tags": ["NNG", "NNP", "VV"]}


def export(role: str = "documents", pre_segmentation: dict | None = KIWI, **changes) -> TorchScriptExport:
    fields = dict(path=Path("/models/ko.zip"), model_id="ksearch/ksearch-ko-sparse", model_type="bert",
                  sha256="ab" * 32, size_bytes=25 * 2**20, vocab_size=24000, max_length=64, role=role,
                  pruning="top_k:40" if role == "queries" else "none", document_pruning="top_k:200",
                  query_pruning="top_k:40", query_expansion=True, pre_segmentation=pre_segmentation)
    return TorchScriptExport(**{**fields, **changes})


def test_register_body_has_what_ml_commons_needs_and_says_the_input_is_segmented():
    body = register_model_body(export())
    assert body["function_name"] == "SPARSE_ENCODING" and body["model_format"] == "TORCH_SCRIPT"
    assert (body["model_content_hash_value"], body["model_content_size_in_bytes"]) == ("ab" * 32, 25 * 2**20)
    assert body["url"] == "file:///models/ko.zip" and body["version"] == "1.0.0"
    assert body["name"] == "ksearch/ksearch-ko-sparse"
    config = body["model_config"]
    assert (config["embedding_dimension"], config["framework_type"], config["model_max_length"]) == (
        24000, "huggingface_transformers", 64)
    record = json.loads(config["all_config"])["ksearch"]
    assert record["pre_segmentation"] == KIWI and record["document_pruning"] == "top_k:200"
    assert "KIWI-SEGMENTED" in body["description"]
    assert "SEGMENTED" not in register_model_body(export(pre_segmentation=None))["description"]


def test_query_model_is_named_apart_and_chunked_upload_counts_chunks():
    body = register_meta_body(export("queries"), model_group_id="g1", chunk_bytes=10 * 2**20)
    assert body["name"] == "ksearch/ksearch-ko-sparse (queries)" and "url" not in body
    assert body["total_chunks"] == 3 and body["model_group_id"] == "g1"
    assert "pruned in the model (top_k:40)" in body["description"]
    assert [chunk_count(n, 10) for n in (0, 1, 10, 11)] == [1, 1, 1, 2]


def test_pipeline_body_encodes_the_segmented_field_with_the_document_pruning():
    assert pipeline_body_for(export(), "m1")["processors"] == [
        {"sparse_encoding": {"model_id": "m1", "field_map": {MODEL_TEXT_FIELD: "sparse"},
                             "prune_type": "top_k", "prune_ratio": 200}}]
    raw = pipeline_body_for(export(pre_segmentation=None, document_pruning="none"), "m1", batch_size=8)
    assert raw["processors"] == [{"sparse_encoding": {"model_id": "m1", "field_map": {"text": "sparse"}, "batch_size": 8}}]
    with pytest.raises(ValueError, match="query model"):
        pipeline_body_for(export("queries"), "m1")


@pytest.mark.parametrize("spec, expected", [
    ("max_ratio:0.1", {"prune_type": "max_ratio", "prune_ratio": 0.1}),
    ("alpha_mass:0.5", {"prune_type": "alpha_mass", "prune_ratio": 0.5}),
    ("abs_value:0.3", {"prune_type": "abs_value", "prune_ratio": 0.3}),
    ("top_k:40", {"prune_type": "top_k", "prune_ratio": 40}),
    (None, {}),
])
def test_pipeline_pruning_uses_the_processor_names(spec, expected):
    processor = sparse_encoding_pipeline_body("m", pruning=spec)["processors"][0]["sparse_encoding"]
    assert {k: v for k, v in processor.items() if k.startswith("prune")} == expected


def test_pipeline_refuses_what_the_processor_would_reject():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sparse_encoding_pipeline_body("m", pruning=Pruning.parse("alpha_mass:1"))  # ksearch allows it, OpenSearch not
    with pytest.raises(ValueError, match="model_id"):
        sparse_encoding_pipeline_body("", pruning=None)
    with pytest.raises(ValueError, match="overwrite"):
        sparse_encoding_pipeline_body("m", source_field="sparse")
    with pytest.raises(ValueError, match="batch_size"):
        sparse_encoding_pipeline_body("m", batch_size=0)


def test_server_side_query_sends_text_and_model_id():
    body = neural_sparse_text_body("전세 보증금", "m1", size=5, domain="legal")
    assert body["size"] == 5
    assert body["query"]["bool"]["must"] == [{"neural_sparse": {"sparse": {"query_text": "전세 보증금", "model_id": "m1"}}}]
    assert body["query"]["bool"]["filter"] == [{"term": {"domain": "legal"}}]
    with pytest.raises(ValueError, match="model_id"):
        neural_sparse_text_query("전세", "")
    with pytest.raises(ValueError, match="nothing to encode"):
        neural_sparse_text_query("  ", "m1")


def test_server_side_query_is_segmented_for_a_pre_segmenting_model():
    segmenter = KiwiSegmenter()
    query = neural_sparse_text_query("집주인이 보증금을 돌려주지 않아요", "m1", segmenter=segmenter)
    assert query == {"neural_sparse": {"sparse": {"query_text": "집주인 보증금 돌려주", "model_id": "m1"}}}
    with pytest.raises(ValueError, match="after Kiwi segmentation"):
        neural_sparse_text_query("그래서요?!", "m1", segmenter=segmenter)  # no content morpheme


def test_a_written_zip_reads_back_as_its_export(tiny_model_dir, tmp_path):
    written = export_torchscript(tiny_model_dir, tmp_path / "m.zip")
    assert read_export(written.path) == written and written.sha256 == file_sha256(written.path)
    assert register_model_body(read_export(written.path))["url"] == written.path.resolve().as_uri()
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="export-opensearch"):
        read_export(tmp_path / "bad.zip")
