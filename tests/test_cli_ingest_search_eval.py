"""`ksearch ingest / search / eval` end to end: SIGKILL and resume, JSON output, hand-computed metrics."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ksearch.cli import app
from retrieval.backends import EmbeddedIndex
from cli_runs import invoke_ok, write_corpus

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_sigkill_then_resume_equals_clean_run(tmp_path, home, tiny_model_dir):
    corpus = write_corpus(tmp_path / "c.jsonl", 150)
    index_dir = home / "sample"
    env = {**os.environ, "KSEARCH_HOME": str(home), "KSEARCH_WRITE_BATCH": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ksearch.cli", "ingest", str(corpus), "--model", str(tiny_model_dir), "-q"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))["segments"]) >= 2:
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = EmbeddedIndex.open(index_dir).count()
    assert 2 <= partial < 150, "the kill should land part way through the run"

    out = invoke_ok("ingest", str(corpus), "--model", str(tiny_model_dir), "-q")
    assert f"written {150 - partial}, skipped (unchanged) {partial}" in out
    invoke_ok("ingest", str(corpus), "--model", str(tiny_model_dir), "-q", "--index", "clean")
    resumed, clean = EmbeddedIndex.open(index_dir), EmbeddedIndex.open(home / "clean")
    assert resumed.content_hashes() == clean.content_hashes()
    assert resumed.count() == 150 == len(set(resumed.content_hashes()))
    ids = sorted(clean.content_hashes())
    a, b = resumed.get_vectors(ids), clean.get_vectors(ids)
    for pid in ids:
        assert a[pid].keys() == b[pid].keys()
        assert all(math.isclose(a[pid][t], b[pid][t], rel_tol=1e-4) for t in a[pid])
    assert [h.id for h in resumed.search_bm25("보증금", k=5)] == [h.id for h in clean.search_bm25("보증금", k=5)]


def test_search_json_and_errors(tmp_path, home, tiny_model_dir):
    corpus = write_corpus(tmp_path / "c.jsonl", 12)
    result = runner.invoke(app, ["search", "보증금", "--model", str(tiny_model_dir)])
    assert result.exit_code == 2 and "ksearch ingest" in result.output
    invoke_ok("ingest", str(corpus), "--model", str(tiny_model_dir), "-q")
    for mode in ("sparse", "bm25", "hybrid"):
        payload = json.loads(invoke_ok("search", "전세 보증금 못 받으면", "--mode", mode, "--json", "-k", "3", "--domain", "legal"))
        assert set(payload) == {"query_tokens", "took_ms", "notice", "encoding", "hits"} and payload["query_tokens"]
        assert payload["encoding"] == "client"
        assert 1 <= len(payload["hits"]) <= 3
        for hit in payload["hits"]:
            assert set(hit) == {"id", "doc_id", "title", "domain", "score", "text", "matched_tokens", "expansion_tokens",
                                "unmatched_query_tokens"}
            assert hit["domain"] == "legal" and hit["id"].startswith(hit["doc_id"] + "#")
            # expansions are what the model added: pieces of neither the query nor the passage text
            assert not [t for t in hit["expansion_tokens"] if t.strip("#▁") and t.strip("#▁") in hit["text"] + " 전세 보증금 못 받으면"]
            assert all(t.strip("#▁") in "전세 보증금 못 받으면" for t in hit["unmatched_query_tokens"])
        assert len({h["doc_id"] for h in payload["hits"]}) == len(payload["hits"])
    human = invoke_ok("search", "전세 보증금", "-k", "2")
    assert "matched:" in human and "expansion:" in human
    other = tmp_path / "other_model"
    from tiny_models import build_tiny_model

    build_tiny_model("roberta", other)
    result = runner.invoke(app, ["search", "보증금", "--model", str(other)])
    assert result.exit_code == 2 and str(tiny_model_dir) in result.output and str(other) in result.output


def test_eval_metrics_match_hand_computation(tmp_path, home, tiny_model_dir):
    docs = [("d1", "고혈압 환자는 싱겁게 먹어야 합니다."), ("d2", "퇴직금 지급 기준과 평균임금"),
            ("d3", "편두통 증상과 치료 방법"), ("d4", "전세 보증금 반환 소송")]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t, "domain": "medical"}, ensure_ascii=False) + "\n" for i, t in docs),
                      encoding="utf-8")
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "q1", "text": "고혈압", "style": "keyword"}\n{"id": "q2", "text": "편두통", "style": "natural"}\n'
                       '{"id": "q3", "text": "보증금", "style": "keyword"}\n', encoding="utf-8")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q1 0 d1 2\nq2 0 d3 1\nq2 0 d2 2\nq3 0 d4 1\n", encoding="utf-8")
    splits = tmp_path / "splits.json"
    splits.write_text('{"train": ["q3"], "test": ["q1", "q2"]}', encoding="utf-8")
    invoke_ok("ingest", str(corpus), "--model", str(tiny_model_dir), "-q")
    runs = tmp_path / "runs"
    payload = json.loads(invoke_ok("eval", "--queries", str(queries), "--qrels", str(qrels), "--splits", str(splits),
                                 "--split", "test", "--json", "--run-out", str(runs), "--by-style"))
    assert {"sparse", "bm25", "hybrid"} <= set(payload)
    # BM25: q1 finds only d1 (rank 1). q2 finds only d3 (rel 1) at rank 1; d2 (rel 2) shares no term.
    # nDCG (ranx's "ndcg": Jarvelin's linear gain rel / log2(rank + 1)): q1 = 1;
    # q2 = DCG / IDCG = (1 / log2(2)) / (2 / log2(2) + 1 / log2(3)).
    q2_ndcg = 1 / (2 + 1 / math.log2(3))
    bm25 = payload["bm25"]
    assert bm25["ndcg@10"] == pytest.approx((1 + q2_ndcg) / 2, abs=1e-6)
    assert bm25["mrr@10"] == pytest.approx(1.0)
    assert bm25["recall@10"] == pytest.approx(0.75) and bm25["recall@100"] == pytest.approx(0.75)
    assert bm25["by_style"]["natural"]["ndcg@10"] == pytest.approx(q2_ndcg, abs=1e-6)
    assert bm25["by_style"]["keyword"]["recall@10"] == pytest.approx(1.0)
    for mode in ("sparse", "hybrid"):
        assert all(0.0 <= payload[mode][m] <= 1.0 for m in ("ndcg@10", "mrr@10", "recall@10", "recall@100"))
    assert payload["_meta"]["queries"] == 2 and payload["_meta"]["avg_passage_nonzero_weights"] > 0
    bm25_run = (runs / "bm25.run").read_text(encoding="utf-8").splitlines()
    assert bm25_run == ["q1 Q0 d1 1 " + bm25_run[0].split()[4] + " ksearch-bm25", "q2 Q0 d3 1 " + bm25_run[1].split()[4] + " ksearch-bm25"]
    assert {p.name for p in runs.iterdir()} == {"sparse.run", "bm25.run", "hybrid.run"}
    table = invoke_ok("eval", "--queries", str(queries), "--qrels", str(qrels), "--splits", str(splits), "--split", "all")
    assert "ndcg@10" in table and "3 queries" in table
