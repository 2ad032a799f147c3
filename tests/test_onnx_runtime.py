"""The light runtime (model.onnx + ONNX Runtime + the tokenizers library) gives the torch vectors without torch."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from encoder import ModelNotFoundError, SparseEncoder
from encoder.light_tokenizer import LightTokenizer
from encoder.model_resolution import SHIPPED_MODEL_DIR
from encoder.onnx_runtime import ONNX_FILE, OnnxModel, weights_fingerprint
from tests.tiny_models import KOREAN_SENTENCES

ROOT = Path(__file__).resolve().parent.parent
TEXTS = KOREAN_SENTENCES + ["두통", "HbA1c 6.5% 당뇨", "보증금 " * 60, "mmHg MRI 제623조"]
HEAVY = ("torch", "transformers", "sentence_transformers")


@pytest.fixture(scope="module")
def onnx_tiny_dirs(tiny_model_dirs, tmp_path_factory) -> dict[str, Path]:
    """Copies of the tiny models with their model.onnx (the session's tiny folders stay torch-only)."""
    from encoder.onnx_export import export_onnx

    out = {}
    for arch, folder in tiny_model_dirs.items():
        copy = tmp_path_factory.mktemp(f"onnx-{arch}")
        shutil.copytree(folder, copy, dirs_exist_ok=True)
        export_onnx(copy)
        out[arch] = copy
    return out


def assert_same_vectors(a: list[dict[str, float]], b: list[dict[str, float]], tolerance: float = 1e-4) -> None:
    """Weights within `tolerance`; a token in one vector only is allowed only at the pruning threshold (or near 0)."""
    for x, y in zip(a, b, strict=True):
        for name in set(x) | set(y):
            assert abs(x.get(name, 0.0) - y.get(name, 0.0)) <= tolerance, (name, x.get(name), y.get(name))
        for only, other in ((set(x) - set(y), y), (set(y) - set(x), x)):
            floor = min(other.values(), default=0.0)
            assert all(abs((x.get(n) or y.get(n)) - floor) <= tolerance or (x.get(n) or y.get(n)) <= tolerance
                       for n in only), only


def test_the_shipped_model_onnx_was_exported_from_its_present_weights():
    """Fails when the shipped weights change without `ksearch model export-onnx encoder/models/ksearch-ko-sparse`."""
    graph = OnnxModel(SHIPPED_MODEL_DIR / ONNX_FILE)
    assert graph.fingerprint == weights_fingerprint(SHIPPED_MODEL_DIR), \
        "re-run `ksearch model export-onnx encoder/models/ksearch-ko-sparse` after changing the weights"


def test_the_shipped_model_runs_on_onnx_with_the_torch_vectors():
    light = SparseEncoder.load(SHIPPED_MODEL_DIR, batch_size=4)
    full = SparseEncoder.load(SHIPPED_MODEL_DIR, backend="torch", precision="fp32", batch_size=4)
    assert (light.backend, light.precision, full.backend) == ("onnx", "fp32", "torch")
    assert light.vocab_hash == full.vocab_hash and light.feature_names == full.feature_names
    assert light.max_length == full.max_length and light._special_ids == full._special_ids
    assert_same_vectors(light.encode_documents(TEXTS), full.encode_documents(TEXTS))
    assert_same_vectors(light.encode_queries(TEXTS), full.encode_queries(TEXTS))
    assert light.count_tokens(TEXTS) == full.count_tokens(TEXTS)
    assert [light.display_token(f) for f in light.feature_names] == [full.display_token(f) for f in full.feature_names]


@pytest.mark.parametrize("arch", ["bert", "roberta", "modernbert"])
def test_every_tiny_architecture_exports_and_matches_torch(arch, onnx_tiny_dirs):
    folder = onnx_tiny_dirs[arch]
    light = SparseEncoder.load(folder, batch_size=3)
    full = SparseEncoder.load(folder, backend="torch", precision="fp32", batch_size=3)
    assert light.backend == "onnx"
    assert light.vocab_hash == full.vocab_hash and light._special_ids == full._special_ids
    assert_same_vectors(light.encode_documents(TEXTS), full.encode_documents(TEXTS))
    assert_same_vectors(light.encode_queries(TEXTS[:1]), full.encode_queries(TEXTS[:1]))  # batch of one, too


@pytest.mark.parametrize("arch", ["bert", "roberta", "modernbert"])
def test_the_light_tokenizer_matches_the_transformers_one(arch, tiny_model_dirs):
    from transformers import AutoTokenizer

    folder = tiny_model_dirs[arch]
    light, full = LightTokenizer(folder), AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert light.get_vocab() == full.get_vocab() and len(light) == len(full)
    assert sorted(light.all_special_ids) == sorted(full.all_special_ids)
    assert light.model_input_names == full.model_input_names and light.model_max_length == full.model_max_length
    assert light.num_special_tokens_to_add(pair=False) == full.num_special_tokens_to_add(pair=False)
    for text in TEXTS:
        assert light.tokenize(text) == full.tokenize(text)
        for kwargs in ({"add_special_tokens": False, "return_offsets_mapping": True}, {"add_special_tokens": True}):
            got, want = light(text, **kwargs), full(text, **kwargs)
            assert {k: list(map(tuple, v)) if k == "offset_mapping" else v for k, v in got.items()} == \
                   {k: list(map(tuple, v)) if k == "offset_mapping" else v for k, v in want.items()}
    got = light(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="np")
    want = full(TEXTS, padding=True, truncation=True, max_length=16, return_tensors="np")
    assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in got)
    for token_id in range(len(full)):
        assert light.decode([token_id]) == full.decode([token_id])
        token = full.convert_ids_to_tokens(token_id)
        assert light.convert_tokens_to_ids(token) == full.convert_tokens_to_ids(token)


def test_a_stale_model_onnx_is_skipped_with_a_warning_and_refused_when_asked_for(onnx_tiny_dirs, tmp_path, caplog):
    folder = tmp_path / "changed"
    shutil.copytree(onnx_tiny_dirs["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))  # other weights/config
    with caplog.at_level(logging.WARNING):
        assert SparseEncoder.load(folder).backend == "torch"
    assert "export-onnx" in caplog.text
    with pytest.raises(ModelNotFoundError, match="export-onnx"):
        SparseEncoder.load(folder, backend="onnx")


def test_without_torch_a_folder_without_model_onnx_says_how_to_get_the_train_extra(tiny_model_dir, monkeypatch):
    import encoder.onnx_runtime as runtime

    monkeypatch.setattr(runtime, "torch_available", lambda: False)
    with pytest.raises(ModelNotFoundError, match=r"pip install -e \.\[train\]"):
        SparseEncoder.load(tiny_model_dir)


def test_asking_for_torch_precisions_or_devices_uses_torch(onnx_tiny_dirs):
    assert SparseEncoder.load(onnx_tiny_dirs["bert"], precision="int8").backend == "torch"
    assert SparseEncoder.load(onnx_tiny_dirs["bert"], backend="torch").backend == "torch"
    with pytest.raises(ValueError, match="fp32 on the CPU"):
        SparseEncoder.load(onnx_tiny_dirs["bert"], backend="onnx", precision="bf16")
    with pytest.raises(ValueError, match="unknown encoder backend"):
        SparseEncoder.load(onnx_tiny_dirs["bert"], backend="tensorrt")


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_importing_the_packages_and_the_cli_imports_no_torch():
    out = run_python("import sys, encoder, retrieval, ingest, ksearch.cli, search_ui\n"
                     f"print([m for m in {HEAVY!r} + ('kiwipiepy', 'onnxruntime') if m in sys.modules])")
    assert out.strip() == "[]"


def test_searching_and_ingesting_with_the_shipped_model_never_imports_torch(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps({"id": f"d{i}", "text": t}, ensure_ascii=False)
                                for i, t in enumerate(KOREAN_SENTENCES)), encoding="utf-8")
    out = run_python(
        "import sys\nfrom pathlib import Path\n"
        "from encoder import SparseEncoder\nfrom ingest import ingest_path\n"
        "from retrieval.backends import EmbeddedIndex\nfrom retrieval.index_meta import IndexMeta\n"
        "from retrieval.searcher import Searcher\n"
        f"enc = SparseEncoder.load({str(SHIPPED_MODEL_DIR)!r})\n"
        f"index = EmbeddedIndex.create(Path({str(tmp_path / 'ix')!r}), IndexMeta.for_encoder('t', enc))\n"
        f"ingest_path(Path({str(corpus)!r}), index, enc, progress=False)\n"
        "hits = Searcher(enc, index).search('보증금 반환', mode='sparse')\n"
        f"print(enc.backend, bool(hits), [m for m in {HEAVY!r} if m in sys.modules])")
    assert out.strip() == "onnx True []"
