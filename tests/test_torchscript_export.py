"""`export-opensearch` zips give `SparseEncoder`'s vectors when run the way OpenSearch ml-commons runs them.

`tests/ml_commons_emulation.py` reproduces ml-commons' SPARSE_ENCODING translator (tokenizer.json with the Rust
tokenizers library, the TorchScript forward on one dict, keys from `decode([id], skip_special_tokens=True)`).
It runs here in-process with the project's torch and, when `KSEARCH_LIBTORCH_PYTHON` names a Python with
torch==1.13.1 and tokenizers==0.20.3 (what OpenSearch 2.19's DJL uses), in that Python too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from encoder import SparseEncoder
from encoder.model_resolution import SHIPPED_MODEL_DIR
from encoder.torchscript_export import RECORD_FILE, TOKENIZER_FILE, export_torchscript, file_sha256
from tests.ml_commons_emulation import run_zip
from tests.test_onnx_runtime import assert_same_vectors
from tests.tiny_models import KOREAN_SENTENCES

TEXTS = KOREAN_SENTENCES + ["두통", "HbA1c 6.5% 당뇨", "보증금 " * 60, "mmHg MRI 제623조", "100% 환불. 3.5배"]
ARCHS = ("bert", "roberta", "modernbert")
OLD_RUNTIME = os.environ.get("KSEARCH_LIBTORCH_PYTHON")


@pytest.fixture(scope="module")
def tiny_zips(tiny_model_dirs, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("os-export")
    return {arch: export_torchscript(tiny_model_dirs[arch], out / f"{arch}.zip").path for arch in ARCHS}


@pytest.fixture(scope="module")
def shipped_zip(tmp_path_factory):
    return export_torchscript(SHIPPED_MODEL_DIR, tmp_path_factory.mktemp("os-shipped") / "ksearch-ko-sparse.zip")


def server_vectors(archive: Path, encoder: SparseEncoder, texts: list[str]) -> list[dict[str, float]]:
    """What ml-commons returns for `texts`, sent as the client must send them (segmented when the model asks)."""
    results = run_zip(archive, encoder.model_text(texts))
    ids = encoder.tokenizer(encoder.model_text(texts), truncation=True, max_length=encoder.max_length)["input_ids"]
    assert [r["ids"] for r in results] == ids  # the zip's tokenizer.json tokenizes as SparseEncoder does
    return [r["vector"] for r in results]


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_models_give_the_encoder_vectors_keyed_by_feature_name(arch, tiny_model_dirs, tiny_zips):
    encoder = SparseEncoder.load(tiny_model_dirs[arch], backend="torch", batch_size=4)
    assert_same_vectors(server_vectors(tiny_zips[arch], encoder, TEXTS), encoder.encode_documents(TEXTS))


def test_the_shipped_model_gives_the_encoder_vectors_on_segmented_text(shipped_zip):
    encoder = SparseEncoder.load(SHIPPED_MODEL_DIR, backend="torch", document_pruning="none", batch_size=8)
    assert encoder.segmenter is not None
    server = server_vectors(shipped_zip.path, encoder, TEXTS)
    assert_same_vectors(server, encoder.encode_documents(TEXTS))
    assert {"보증금", "임대인"} <= set(server[1])  # real words, not ## pieces: the keys are the vocabulary's tokens


def test_the_shipped_export_records_pre_segmentation_and_truncation(shipped_zip):
    with zipfile.ZipFile(shipped_zip.path) as zf:
        names = zf.namelist()
        record = json.loads(zf.read(RECORD_FILE))
        tokenizer = json.loads(zf.read(TOKENIZER_FILE))
    assert sorted(names) == sorted(["ksearch-ko-sparse.pt", TOKENIZER_FILE, RECORD_FILE])
    assert tokenizer["truncation"]["max_length"] == 64 and tokenizer["padding"] is None
    assert record["pre_segmentation"]["type"] == "kiwi" and record["max_length"] == 64
    assert (record["role"], record["pruning"], record["document_pruning"]) == ("documents", "none", "top_k:200")
    assert shipped_zip.sha256 == file_sha256(shipped_zip.path) and shipped_zip.size_bytes == shipped_zip.path.stat().st_size
    assert shipped_zip.pre_segmentation == record["pre_segmentation"] and shipped_zip.unnamed_ids == []


def test_a_query_export_applies_the_query_pruning(tmp_path):
    zipped = export_torchscript(SHIPPED_MODEL_DIR, tmp_path / "q.zip", queries=True)
    encoder = SparseEncoder.load(SHIPPED_MODEL_DIR, backend="torch", batch_size=8)
    assert (zipped.role, zipped.pruning) == ("queries", "top_k:40")
    server = server_vectors(zipped.path, encoder, TEXTS)
    assert max(len(v) for v in server) == 40
    assert_same_vectors(server, encoder.encode_queries(TEXTS))


@pytest.mark.parametrize("pruning", ["top_k:7", "max_ratio:0.4", "abs_value:1.5", "alpha_mass:0.5"])
def test_every_prune_type_and_own_tokens_only_match_encode_queries(pruning, tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "ksearch.json").write_text(json.dumps({"query_pruning": pruning, "query_expansion": False}))
    zipped = export_torchscript(folder, tmp_path / "q.zip", queries=True)
    encoder = SparseEncoder.load(folder, backend="torch", batch_size=4)
    server = server_vectors(zipped.path, encoder, TEXTS)
    assert sum(map(bool, server)) > len(TEXTS) // 2  # pruned, not emptied
    assert all(len(v) < len(encoder.encode_documents([t])[0]) for v, t in zip(server, TEXTS))
    assert_same_vectors(server, encoder.encode_queries(TEXTS))


def test_unsafe_characters_are_keyed_by_their_escaped_feature_names(tiny_model_dir, tiny_zips):
    encoder = SparseEncoder.load(tiny_model_dir, backend="torch")
    vector = server_vectors(tiny_zips["bert"], encoder, ["100% 환불. 3.5배"])[0]
    assert {"%25", "%2E"} <= set(vector) and "." not in vector and "%" not in vector


def test_the_output_must_be_a_zip(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match=r"\.zip"):
        export_torchscript(tiny_model_dir, tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # ~75 s: four zips on a second Python
@pytest.mark.skipif(not OLD_RUNTIME, reason="set KSEARCH_LIBTORCH_PYTHON to a Python with torch==1.13.1 and "
                                            "tokenizers==0.20.3 (OpenSearch 2.19's libtorch and DJL tokenizers)")
def test_the_zips_run_on_libtorch_1_13_with_the_same_vectors(tiny_model_dirs, tiny_zips, shipped_zip):
    cases = [(tiny_zips[a], SparseEncoder.load(tiny_model_dirs[a], backend="torch")) for a in ARCHS]
    cases.append((shipped_zip.path, SparseEncoder.load(SHIPPED_MODEL_DIR, backend="torch", document_pruning="none")))
    script = Path(__file__).with_name("ml_commons_emulation.py")
    for archive, encoder in cases:
        done = subprocess.run([OLD_RUNTIME, str(script), str(archive)], input=json.dumps(encoder.model_text(TEXTS)),
                              capture_output=True, text=True, check=True, timeout=300)
        result = json.loads(done.stdout)
        assert result["torch"].startswith("1.13.1"), result["torch"]
        assert [r["ids"] for r in result["vectors"]] == [r["ids"] for r in run_zip(archive, encoder.model_text(TEXTS))]
        assert_same_vectors([r["vector"] for r in result["vectors"]], encoder.encode_documents(TEXTS))


def test_the_command_prints_the_register_body_and_warns_about_segmentation(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from ksearch.cli import app

    folder = tmp_path / "kiwi-model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "ksearch.json").write_text(json.dumps({"pre_segmentation": {"type": "kiwi"}, "document_pruning": "top_k:50"}))
    out = tmp_path / "export" / "m.zip"
    result = CliRunner().invoke(app, ["model", "export-opensearch", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["function_name"], body["model_format"]) == ("SPARSE_ENCODING", "TORCH_SCRIPT")
    assert body["model_content_hash_value"] == file_sha256(out) and body["url"] == out.resolve().as_uri()
    assert json.loads(body["model_config"]["all_config"])["ksearch"]["pre_segmentation"]["type"] == "kiwi"
    assert "KIWI-SEGMENTED" in result.stderr and "model_text" in result.stderr
    assert "tokenizer.decode([id])" in result.stderr and '"prune_ratio": 50' in result.stderr

    chunked = CliRunner().invoke(app, ["model", "export-opensearch", str(tiny_model_dir), "--out", str(out),
                                       "--chunked", "--queries"])
    assert chunked.exit_code == 0, chunked.output
    meta = json.loads(chunked.stdout)
    assert meta["total_chunks"] == 1 and "url" not in meta and meta["name"].endswith("(queries)")
    assert "SEGMENTED" not in chunked.stderr and "upload_chunk" in chunked.stderr


def test_the_command_fails_in_one_line_on_a_bad_output(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from ksearch.cli import app

    result = CliRunner().invoke(app, ["model", "export-opensearch", str(tiny_model_dir), "--out", str(tmp_path / "m.tar")])
    assert result.exit_code == 2 and ".zip" in result.output
