"""Smoke test of `ksearch bench query|ingest|scale` and the report: tiny sizes, the tiny model; checks keys, never timings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ksearch.cli import app

pytestmark = pytest.mark.slow  # every bench command once, end to end

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.fixture
def tiny_inputs(tmp_path, monkeypatch, tiny_model_dir) -> dict[str, str]:
    monkeypatch.setenv("KSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KSEARCH_MODEL", raising=False)
    monkeypatch.delenv("KSEARCH_OPENSEARCH_URL", raising=False)
    from retrieval.settings import get_settings

    get_settings.cache_clear()
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join((SAMPLE / "corpus.jsonl").read_text(encoding="utf-8").splitlines(True)[:24]), encoding="utf-8")
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join((SAMPLE / "queries.jsonl").read_text(encoding="utf-8").splitlines(True)[:6]), encoding="utf-8")
    yield {"model": str(tiny_model_dir), "corpus": str(corpus), "queries": str(queries), "home": str(tmp_path / "home"),
           "splits": str(tmp_path / "no-splits.json"), "out": str(tmp_path / "results")}
    get_settings.cache_clear()


def _run(*args: str) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_query_ingest_scale_benches_write_their_results(tiny_inputs, tmp_path):
    t = tiny_inputs
    common = ["--model", t["model"], "--corpus", t["corpus"]]
    _run("bench", "query", *common, "--queries", t["queries"], "--splits", t["splits"], "--split", "all", "--clients", "2",
         "--home", t["home"], "--out", f"{t['out']}/query.json")
    _run("bench", "ingest", *common, "--documents", "8", "--out", f"{t['out']}/ingest.json")
    _run("bench", "scale", *common, "--queries", t["queries"], "--splits", t["splits"], "--sizes", "300,600",
         "--max-queries", "6", "--home", t["home"], "--out", f"{t['out']}/scale.json")
    out = Path(t["out"])

    query = json.loads((out / "query.json").read_text(encoding="utf-8"))
    assert {"benchmark", "model", "hardware", "queries", "backends"} <= set(query)
    modes = query["backends"]["embedded"]["modes"]
    assert set(modes) == {"sparse", "bm25", "hybrid"}
    for mode in modes.values():
        assert {"p50", "p90", "p99"} <= set(mode["single"]["total_ms"])
        assert {"encode_ms", "search_ms", "total_ms", "qps", "clients"} <= set(mode["concurrent"])

    ingest = json.loads((out / "ingest.json").read_text(encoding="utf-8"))
    assert ingest["documents"] == 8 and ingest["passages"] >= 8
    assert {"passages_per_s", "ratio_to_pure_encoding", "meets_target"} <= set(ingest["backends"]["embedded"])
    assert ingest["pure_encoding"]["passages_per_s"] > 0

    scale = json.loads((out / "scale.json").read_text(encoding="utf-8"))
    assert [s["passages"] for s in scale["sizes"]] == [300, 600]
    for size in scale["sizes"]:
        assert {"exact_index_ms", "exact_full_matrix_ms", "csr_mb", "mean_nonzero"} <= set(size)
        impact = size["impact"]  # the approximate method, as a kernel on the matrix
        assert 0.0 <= impact["recall_at_10"] <= 1.0 and impact["postings_mb"] > 0
        assert impact["operating_points"][0]["posting_fraction"] == impact["params"]["posting_fraction"]
        assert "cpu_p50" in impact["latency_ms"]
        # through a real embedded index: built once, by the ingest; the searches use it and build and change nothing
        through = size["index"]
        assert through["builds_at_ingest"] == 1 and through["build_seconds_at_ingest"] > 0
        assert through["builds_during_searches"] == 0 and through["index_files_changed_by_searches"] == 0
        assert through["searches_used_approximate"] and through["notice"] is None
        assert 0.0 <= through["recall_at_10"] <= 1.0 and through["latency_ms"]["n"] == scale["queries"]
        assert {"kernel_ms", "exact_latency_ms", "documents_latency_ms"} <= set(through)
    assert "growth_vs_previous" in scale["sizes"][1]

    from ksearch.benchmarks.report import write_report

    doc = write_report(out, tmp_path / "docs" / "benchmarks.md", ["ksearch bench all"])
    text = doc.read_text(encoding="utf-8")
    assert "Hardware:" in text and "## Query latency" in text and "## Scale" in text
    assert "## Targets" in text and "embedded sparse total p50" in text
    assert "## Scale through the embedded index (300, 600 passages)" in text and "kernel CPU p50" in text


def test_adapt_bench_times_every_phase_and_keeps_no_model(tiny_inputs, tmp_path):
    t = tiny_inputs
    out = Path(t["out"]) / "adapt.json"
    short = tmp_path / "three.jsonl"  # runs out before --passages: the next corpus, a training-pair file, fills up
    short.write_text("".join(Path(t["corpus"]).read_text(encoding="utf-8").splitlines(True)[:3]), encoding="utf-8")
    pairs = Path(__file__).resolve().parents[1] / "training_data" / "pairs_legal.jsonl"
    _run("bench", "adapt", "--model", t["model"], "--corpus", str(short), "--corpus", str(pairs), "--passages", "10",
         "--minutes", "0.2", "--quiet", "--out", str(out))
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["passages"] >= 10 and 3 < result["documents"] <= result["passages"]
    assert result["corpus"] == [str(short), str(pairs)]
    assert {"read", "pseudo-queries", "bm25 negatives", "model negatives", "segment", "train", "save"} <= set(
        result["phases_seconds"])
    assert result["steps"] >= 1 and result["total_seconds"] > 0 and result["model_folder_mb"] > 0
    assert not (Path(t["home"]) / "models").exists()  # adapted in a temporary folder


def test_exact_kernels_agree_with_each_other():
    import numpy as np
    from scipy import sparse

    from ksearch.benchmarks.exact_scoring import full_matrix_top_k, index_top_k
    from ksearch.benchmarks.synthetic import real_distribution, synthetic_matrix

    rng = np.random.default_rng(1)
    real = sparse.random(200, 50, density=0.2, format="csr", random_state=2, dtype=np.float32)
    real.data += 0.1
    m = synthetic_matrix(real_distribution(real), 500, seed=3)
    assert m.shape == (500, 50) and m.nnz > 0 and (m.data > 0).all()
    cols, w = np.array([1, 7, 30]), rng.random(3) + 0.1
    assert full_matrix_top_k(m, cols, w, 10) == index_top_k(m.tocsc(), cols, w, 10)


def test_parity_indexes_with_the_variant_and_scores_judged_queries(tiny_inputs, tiny_model_dir, tmp_path):
    from encoder import SparseEncoder
    from ksearch.benchmarks.parity import ParityData

    corpus = Path(tiny_inputs["corpus"])
    doc_ids = [json.loads(line)["id"] for line in corpus.read_text(encoding="utf-8").splitlines()]
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(f"q1 0 {doc_ids[0]} 2\nq2 0 {doc_ids[5]} 1\n", encoding="utf-8")
    queries = tmp_path / "q.jsonl"
    texts = [json.loads(line)["text"][:40] for line in corpus.read_text(encoding="utf-8").splitlines()]
    queries.write_text(json.dumps({"id": "q1", "text": texts[0]}, ensure_ascii=False) + "\n"
                       + json.dumps({"id": "q2", "text": texts[5]}, ensure_ascii=False) + "\n", encoding="utf-8")
    data = ParityData(corpus, queries, qrels, None, "all")
    ndcg = data.ndcg_at_10(SparseEncoder.load(tiny_model_dir, device="cpu"))
    assert 0.0 < ndcg <= 1.0  # each query is its document's opening, so a sane index finds something
    assert data.describe()["split"] == "all"


@pytest.mark.opensearch
def test_ingest_bench_against_its_own_local_node_stops_the_node_it_started(tiny_inputs):
    from ksearch.benchmarks.runner import bench_node

    node = bench_node()
    if node.status():  # a benchmark left running by hand: this test checks the node it starts itself
        node.stop()
    out = Path(tiny_inputs["out"]) / "ingest.json"
    _run("bench", "ingest", "--model", tiny_inputs["model"], "--corpus", tiny_inputs["corpus"], "--documents", "8",
         "--opensearch", "--out", str(out))
    result = json.loads(out.read_text(encoding="utf-8"))
    assert set(result["backends"]) == {"embedded", "opensearch"}
    assert result["backends"]["opensearch"]["written"] == result["passages"] >= 8
    assert node.status() is None
    assert "KSEARCH_OPENSEARCH_URL" not in os.environ  # the bench node's URL does not outlive the command


def test_bench_all_runs_exactly_the_command_lines_its_report_lists(tmp_path, monkeypatch):
    import shlex

    import click
    import typer

    import ksearch.bench_cli as bench_cli
    import ksearch.benchmarks.report as report

    ran, written = [], []
    monkeypatch.setattr(bench_cli, "run_command_line", ran.append)
    monkeypatch.setattr(report, "write_report", lambda results, doc, lines: written.extend(lines) or doc)
    _run("bench", "all", "--opensearch", "--sizes", "300,600", "--results", str(tmp_path / "r"),
         "--doc", str(tmp_path / "b.md"))
    assert [a[:2] for a in ran] == [["bench", "encode"], ["bench", "encode"], ["bench", "query"], ["bench", "startup"],
                                    ["bench", "ingest"], ["bench", "scale"]]
    assert written[2:] == [shlex.join(["ksearch", *argv]) for argv in ran]
    assert "--opensearch" in ran[2] and "300,600" in ran[5]
    root = typer.main.get_command(app)
    for argv in ran:  # every step parses as a real command line
        group = root.get_command(click.Context(root), argv[0])
        command = group.get_command(click.Context(group), argv[1])
        command.make_context(" ".join(argv[:2]), list(argv[2:]))


def test_startup_bench_times_fresh_processes_next_to_python(tmp_path, monkeypatch):
    from encoder.model_resolution import SHIPPED_MODEL_ID

    home = tmp_path / "home"
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "d1", "text": "임대인은 보증금을 돌려주어야 합니다."}, ensure_ascii=False) + "\n")
    monkeypatch.setenv("KSEARCH_HOME", str(home))
    from retrieval.settings import get_settings

    get_settings.cache_clear()
    try:
        assert CliRunner().invoke(app, ["ingest", str(corpus), "--index", "s", "--model", SHIPPED_MODEL_ID]).exit_code == 0
        out = tmp_path / "startup.json"
        result = CliRunner().invoke(app, ["bench", "startup", "--index", "s", "--repeats", "1", "--no-app",
                                          "--out", str(out)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(doc["rows"]) == {"python -c pass", "ksearch search", "ksearch encode"}
    assert doc["rows"]["ksearch search"]["x_python"] > 1
    assert doc["torch_imported"] is (doc["encoder_backend"] == "torch")  # the shipped model: onnx, no torch


def test_ingest_memory_bench_writes_every_passage_and_reports_rss_by_phase(tmp_path):
    out = tmp_path / "ingest-memory.json"
    _run("bench", "ingest-memory", "--size-mb", "0.1", "--work-dir", str(tmp_path), "--out", str(out))
    run = json.loads(out.read_text(encoding="utf-8"))["runs"]["embedded"]
    assert run["written"] == run["passages"] > run["documents"] > 0  # 64-token passages: documents are split
    assert [p["phase"] for p in run["phases"]] == ["before ingest", "read + split + spool", "10% written", "25% written",
                                                    "50% written", "75% written", "100% written",
                                                    "finish_writes (compaction, BM25)"]
    assert all(p["rss_mb"] > 0 and p["peak_mb"] >= p["rss_mb"] for p in run["phases"]) and "node_peak_mb" not in run
    assert not list(tmp_path.glob("ksearch-ingest-memory-*"))  # corpus, model and index deleted


@pytest.mark.opensearch
def test_ingest_memory_bench_into_its_own_node_measures_the_node_apart_and_stops_it(tmp_path):
    from ksearch.opensearch_node import default_cache_dir, node_sharing_installation

    out = tmp_path / "ingest-memory.json"
    _run("bench", "ingest-memory", "--size-mb", "0.1", "--backend", "opensearch", "--work-dir", str(tmp_path),
         "--out", str(out))
    run = json.loads(out.read_text(encoding="utf-8"))["runs"]["opensearch"]
    assert run["written"] == run["passages"] > 0 and run["node_heap"] == "512m"
    assert all(p["node_rss_mb"] > 100 for p in run["phases"])  # a JVM, measured on its own
    cache = default_cache_dir()
    assert node_sharing_installation(cache.with_name(f"{cache.name}-bench-ingest-memory")).status() is None
