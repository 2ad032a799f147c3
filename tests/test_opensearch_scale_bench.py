"""`ksearch bench scale --opensearch`: the bodies it sends, and a tiny run end to end on real nodes (keys and
recall bounds, never timings)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from typer.testing import CliRunner

from ksearch.benchmarks import opensearch_scale_bodies as bodies
from ksearch.benchmarks.opensearch_scale import plan, run_opensearch_scale
from ksearch.cli import app

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def test_each_index_kind_holds_one_field_and_loads_with_refresh_off():
    rf, bm, sv = (bodies.index_body(k, {"n_postings": 10}) for k in bodies.KINDS)
    assert rf["mappings"]["properties"] == {bodies.FIELD: {"type": "rank_features"}}
    assert bm["mappings"]["properties"] == {bodies.TEXT: {"type": "text", "analyzer": "whitespace"}}
    assert sv["mappings"]["properties"][bodies.FIELD] == {
        "type": "sparse_vector", "method": {"name": "seismic", "parameters": {"n_postings": 10}}}
    assert sv["settings"]["index"]["sparse"] is True and "sparse" not in rf["settings"]["index"]
    for body in (rf, bm, sv):
        assert body["settings"]["index"]["refresh_interval"] == "-1"
        assert body["settings"]["index"]["number_of_replicas"] == 0
    with pytest.raises(ValueError, match="unknown benchmark index kind 'knn'"):
        bodies.index_body("knn")


def test_actions_carry_the_same_tokens_as_vector_and_as_text():
    csr = sparse.csr_matrix(np.array([[0.5, 0, 1.25], [0, 2.0, 0]], dtype=np.float32))
    keys = ["집", "보증금", "임차인"]
    vec = list(bodies.actions("rank_features", "i", csr, keys))
    text = list(bodies.actions("bm25", "j", csr, keys))
    assert vec[0] == {"_index": "i", "_id": "0", "_source": {bodies.FIELD: {"집": 0.5, "임차인": 1.25}}}
    assert text[1] == {"_index": "j", "_id": "1", "_source": {bodies.TEXT: "보증금"}}


def test_token_ids_refuse_what_seismic_cannot_hold():
    vocabulary = [f"t{i}" for i in range(40_000)]
    assert bodies.token_ids(["t3", "t7"], vocabulary).tolist() == [3, 7]
    with pytest.raises(ValueError, match="not in the model's vocabulary, e.g. 'nope'"):
        bodies.token_ids(["t1", "nope"], vocabulary)
    with pytest.raises(ValueError, match="token id 39999 >= 32768"):
        bodies.token_ids(["t39999"], vocabulary)


def test_plan_puts_seismic_on_3x_and_the_rest_on_2x():
    assert plan(["2.19.1", "3.6.0"]) == {"2.19.1": ["bm25", "rank_features"], "3.6.0": ["sparse_vector"]}
    assert plan(["3.6.0"]) == {"3.6.0": ["bm25", "rank_features", "sparse_vector"]}
    assert plan(["2.19.1"]) == {"2.19.1": ["bm25", "rank_features"]}


def _check_modes(result: dict, kinds: set[str]) -> None:
    rows = {r["kind"]: r for n in result["nodes"] for r in n["indexes"]}
    assert set(rows) == kinds
    for r in rows.values():
        assert r["load"]["passages_per_s"] > 0 and r["store"]["bytes_per_passage"] > 0 and r["store"]["segments"] == 1
        for m in r["modes"]:
            assert m["latency_ms"]["n"] == result["queries"] and m["latency_ms"]["p50"] > 0
    if "rank_features" in rows:
        exact = [m for m in rows["rank_features"]["modes"] if m["mode"] == "neural_sparse exact"]
        assert len(exact) == 2  # before and after the force-merge
        # the node scores with 9-bit document weights: a near-tie may swap, the top 10 stays nearly the same
        assert all(m["recall_at_10"] >= 0.9 for m in exact)
        assert {m["mode"] for m in rows["rank_features"]["modes"]} == {"neural_sparse exact", "two-phase pipeline"}
    if "sparse_vector" in rows:
        assert all(0.0 < m["recall_at_10"] <= 1.0 and m["merged"] for m in rows["sparse_vector"]["modes"])
    if "bm25" in rows:
        assert all("recall_at_10" not in m for m in rows["bm25"]["modes"])


@pytest.mark.opensearch
def test_cli_runs_against_the_url_node_and_the_report_shows_it(tmp_path, monkeypatch, tiny_model_dir, opensearch_url):
    monkeypatch.setenv("KSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KSEARCH_OPENSEARCH_URL", opensearch_url)
    from retrieval.settings import get_settings

    get_settings.cache_clear()
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join((SAMPLE / "corpus.jsonl").read_text(encoding="utf-8").splitlines(True)[:24]), encoding="utf-8")
    out = tmp_path / "results" / "opensearch-scale.json"
    try:
        result = CliRunner().invoke(app, ["bench", "scale", "--sizes", "", "--opensearch", "--opensearch-passages", "300",
                                          "--model", str(tiny_model_dir), "--corpus", str(corpus), "--queries",
                                          str(SAMPLE / "queries.jsonl"), "--max-queries", "8", "--opensearch-out", str(out)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert not (tmp_path / "results" / "scale.json").exists()  # --sizes "": the embedded sizes are skipped
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["passages"] == 300 and doc["nodes"][0]["started_here"] is False
    _check_modes(doc, {"bm25", "rank_features"} if doc["nodes"][0]["version"].startswith("2.") else set(bodies.KINDS))

    from ksearch.benchmarks.report import write_report

    text = write_report(out.parent, tmp_path / "benchmarks.md", ["ksearch bench scale --opensearch"]).read_text()
    version = doc["nodes"][0]["version"]
    assert f"## OpenSearch at scale (300 passages, {version})" in text and "`bench/results/opensearch-scale.json`" in text
    assert "| neural_sparse exact |" in text and f"OpenSearch at 300 passages ({version}): p50 <= 10 ms" in text
    # a million-passage run (its own file) comes first, in the targets and as a section
    (out.parent / "opensearch-scale-1m-3.6.0.json").write_text(json.dumps({**doc, "passages": 1_000_000}))
    text = write_report(out.parent, tmp_path / "benchmarks.md", ["ksearch bench scale --opensearch"]).read_text()
    targets = [line for line in text.splitlines() if line.startswith("| OpenSearch at ")]
    assert [t.split(":")[0] for t in targets] == [f"| OpenSearch at 1,000,000 passages ({version})",
                                                  f"| OpenSearch at 300 passages ({version})"]
    assert text.index("## OpenSearch at scale (1,000,000 passages") < text.index("## OpenSearch at scale (300 passages")
    assert "`bench/results/opensearch-scale-1m-3.6.0.json`" in text


@pytest.mark.opensearch
def test_seismic_on_a_3x_node(request):
    from ksearch.opensearch_node import RELEASE_3_6

    url = request.getfixturevalue("_opensearch_nodes").url(RELEASE_3_6.version)
    rng = np.random.default_rng(0)
    real = sparse.random(200, 60, density=0.3, format="csr", random_state=1, dtype=np.float32)
    real.data += 0.1
    from ksearch.benchmarks.synthetic import real_distribution

    features = [f"f{i}" for i in range(60)]
    queries = [(np.sort(rng.choice(60, 6, replace=False)), rng.random(6) + 0.1) for _ in range(8)]
    result = run_opensearch_scale(real_distribution(real), features, ["[PAD]", *features], queries, passages=400,
                                  versions=[], heap="", url=url, say=lambda m: None)
    _check_modes(result, set(bodies.KINDS))
    seismic = next(r for r in result["nodes"][0]["indexes"] if r["kind"] == "sparse_vector")
    assert seismic["seismic_parameters"]["approximate_threshold"] == 200


def test_seismic_sweep_options_are_checked_before_anything_runs(tmp_path):
    args = ["bench", "scale", "--sizes", "", "--opensearch", "--opensearch-out", str(tmp_path / "o.json")]
    flat = lambda out: " ".join(out.replace("│", " ").split())  # noqa: E731  (the error box wraps lines)
    bad_key = CliRunner().invoke(app, args + ["--seismic-index-set", "n_postings=100,top_n=5"])
    assert bad_key.exit_code != 0 and "'n_postings=100,top_n=5': only n_postings," in flat(bad_key.output)
    bad_search = CliRunner().invoke(app, args + ["--seismic-search", "top_n=5,cluster_ratio=0.2"])
    assert bad_search.exit_code != 0 and "only top_n, heap_factor, k here" in flat(bad_search.output)
    assert not (tmp_path / "o.json").exists()


@pytest.mark.opensearch
def test_one_run_sweeps_seismic_index_and_search_settings(request, tmp_path):
    from ksearch.benchmarks.report_opensearch import opensearch_scale_section
    from ksearch.opensearch_node import RELEASE_3_6
    from ksearch.benchmarks.synthetic import real_distribution

    url = request.getfixturevalue("_opensearch_nodes").url(RELEASE_3_6.version)
    rng = np.random.default_rng(1)
    real = sparse.random(200, 60, density=0.3, format="csr", random_state=2, dtype=np.float32)
    real.data += 0.1
    features = [f"f{i}" for i in range(60)]
    queries = [(np.sort(rng.choice(60, 6, replace=False)), rng.random(6) + 0.1) for _ in range(6)]
    sets = [{"n_postings": 2}, {"n_postings": 400, "cluster_ratio": 0.2}]
    searches = [{"top_n": 6, "heap_factor": 1.0}, {"top_n": 6, "heap_factor": 2.0, "k": 20}]
    result = run_opensearch_scale(real_distribution(real), features, ["[PAD]", *features], queries, passages=300,
                                  versions=[], heap="", url=url, seismic_index_sets=sets, seismic_search=searches,
                                  say=lambda m: None)
    rows = [r for r in result["nodes"][0]["indexes"] if r["kind"] == "sparse_vector"]
    assert [r["index_settings"] for r in rows] == sets and len({r["index"] for r in rows}) == 2
    for r, extra in zip(rows, sets):
        assert r["seismic_parameters"]["n_postings"] == extra["n_postings"]
        assert r["seismic_parameters"]["approximate_threshold"] == 150  # the run's own parameters stay
        assert [m["settings"] for m in r["modes"]] == searches and all(m["index_settings"] == extra for m in r["modes"])
        assert r["store"]["segment_bytes"] > 0
    # 2 postings a token of 300 passages reaches fewer of the exact top 10 than every posting kept
    best = lambda r: max(m["recall_at_10"] for m in r["modes"])  # noqa: E731
    assert best(rows[0]) < best(rows[1])
    result.update(real_index={"passages": 200, "features": 60}, load_average_at_end=[0.0, 0.0, 0.0])
    text = "\n".join(opensearch_scale_section(result))
    assert "| SEISMIC | n_postings=400, cluster_ratio=0.2; top_n=6, heap_factor=2.0, k=20 |" in text
    assert "sparse_vector (n_postings=2)" in text and "live segment bytes/passage merged" in text
