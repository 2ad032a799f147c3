"""`ksearch encode` and `ksearch bench encode` on a local model folder."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ksearch.cli import app

runner = CliRunner()


def test_encode_json_prints_top_tokens(tiny_model_dir):
    result = runner.invoke(app, ["encode", "당뇨병 치료 방법", "--model", str(tiny_model_dir), "--top-k", "7", "--json"])
    assert result.exit_code == 0, result.output
    tokens = json.loads(result.stdout)["tokens"]
    assert len(tokens) == 7
    assert list(tokens.values()) == sorted(tokens.values(), reverse=True)


def test_encode_table_names_the_model(tiny_model_dir):
    result = runner.invoke(app, ["encode", "전세 보증금", "--model", str(tiny_model_dir), "-k", "3"])
    assert result.exit_code == 0, result.output
    assert "non-zero tokens" in result.stdout


def test_encode_without_any_model_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("KSEARCH_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("encoder.model_resolution.SHIPPED_MODEL_DIR", tmp_path / "no-model")
    result = runner.invoke(app, ["encode", "당뇨"])
    assert result.exit_code == 2
    assert "ksearch model pull" in result.output


def test_bench_encode_writes_results(tiny_model_dir, tmp_path):
    out = tmp_path / "encode.json"
    result = runner.invoke(app, ["bench", "encode", "--model", str(tiny_model_dir), "--passages", "8", "--out", str(out),
                                 "--corpus", str(tmp_path / "none.jsonl"), "--no-parity"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    names = [v["name"] for v in doc["variants"]]
    assert names[0] == "card loop" and any("fp32" in n for n in names)
    fp32 = next(v for v in doc["variants"] if "fp32" in v["name"])
    assert fp32["passages_per_s"] > 0 and fp32["top20_overlap_vs_fp32"] == 1.0
    assert doc["passages"] == 8
    assert {v["precision"] for v in doc["variants"]} == {None, "fp32", "int8", "bf16"}
    assert doc["default_precision"] == "fp32" and doc["parity"] is None  # the tiny model declares no cpu_precision


def test_a_bad_precision_setting_is_a_one_line_error(tiny_model_dir, monkeypatch):
    from retrieval.settings import get_settings

    monkeypatch.setenv("KSEARCH_PRECISION", "fp8")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["encode", "보증금", "--model", str(tiny_model_dir)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0
    assert "unknown precision 'fp8'" in result.output and "KSEARCH_PRECISION" in result.output
