"""`ksearch bench ingest-memory`: the throwaway encoder's shape, RSS apart for a node, one run per backend in the results
file, and the report section (the end-to-end runs: tests/test_bench_smoke.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

from ksearch.benchmarks.ingest_memory import merge_run
from ksearch.benchmarks.report import write_report
from ksearch.benchmarks.report_ingest_memory import ingest_memory_commands
from ksearch.benchmarks.rss_sampler import PeakSampler, tree_rss_bytes


def _phases(node: bool) -> list[dict]:
    rows = [("before ingest", 0, 900), ("read + split + spool", 60, 1200), ("10% written", 70, 1250),
            ("100% written", 600, 1260), ("finish_writes (compaction, BM25)", 640, 1500)]
    return [{"phase": name, "seconds": s, "rss_mb": mb, "peak_mb": mb + 5,
             **({"node_rss_mb": 700 + s / 10, "node_peak_mb": 710 + s / 10} if node else {})} for name, s, mb in rows]


def _run(backend: str, file_mb: float) -> dict:
    run = {"benchmark": "ingest-memory", "backend": backend, "hardware": "test cpu", "file_mb": file_mb,
           "documents": 1000, "passages": 2000, "written": 2000, "ingest_seconds": 640.0, "generate_seconds": 1.0,
           "text": "synthetic", "encoder": "tiny", "torch_threads": 1, "phases": _phases(backend == "opensearch"),
           "peak_mb": 1505.0, "write_loop_growth_mb": 15.0, "load_average_at_end": [1.0, 1.0, 1.0]}
    if backend == "opensearch":
        run.update(node_heap="512m", node_peak_mb=770.0, node_write_loop_growth_mb=53.0)
    return run


def test_a_backends_run_replaces_its_earlier_run_and_keeps_the_others():
    first = merge_run(None, _run("opensearch", 8))
    both = merge_run(first, _run("embedded", 16))
    again = merge_run(both, _run("opensearch", 32))
    assert list(again["runs"]) == ["embedded", "opensearch"]
    assert (again["runs"]["embedded"]["file_mb"], again["runs"]["opensearch"]["file_mb"]) == (16, 32)
    assert merge_run({"benchmark": "ingest-memory", "file_mb": 12, "phases": []}, _run("embedded", 4))["runs"].keys() \
        == {"embedded"}  # a file from before --backend is replaced, not mixed in


def test_report_shows_each_backend_the_node_apart_and_why_2_gib_was_not_run(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    data = merge_run(merge_run(None, _run("embedded", 16)), _run("opensearch", 32))
    (results / "ingest-memory.json").write_text(json.dumps(data), encoding="utf-8")
    text = write_report(results, tmp_path / "benchmarks.md", ["ksearch bench all"]).read_text(encoding="utf-8")
    assert "## Ingest memory (up to 32 MiB of JSONL)" in text
    assert "| phase | s | worker RSS MiB | worker peak MiB |\n" in text  # embedded: no node columns
    assert "| 100% written | 600 | 1260 | 1265 | 760 | 770 |" in text  # OpenSearch: the node's own columns
    assert "1250 -> 1260 MiB" in text and "`finish_writes` then peaks 245 MiB higher" in text
    assert "Largest size measured: 32 MiB, not the 2 GiB" in text and "about 23 hours" in text  # 40 s/MiB x 2048
    assert ingest_memory_commands(data) == [
        "ksearch bench ingest-memory --size-mb 16 --backend embedded --work-dir /tmp",
        "ksearch bench ingest-memory --size-mb 32 --backend opensearch --work-dir /tmp"]


def test_a_node_started_by_the_worker_is_measured_apart_from_it():
    holder = "import sys, time; b = bytearray(150 * 2**20); b[::4096] = b'x' * len(b[::4096]); print(1, flush=True); time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # its 150 MiB are touched
        me = psutil.Process()
        with_child, without = tree_rss_bytes(me), tree_rss_bytes(me, frozenset({child.pid}))
        assert with_child - without > 140 * 2**20
        with PeakSampler(interval=0.01, node_pid=child.pid) as sampler:
            time.sleep(0.05)
            sampler.mark("now")
        phase = sampler.phases[0]
        assert phase["node_rss_mb"] > 140 and phase["rss_mb"] < without / 2**20 + 100
    finally:
        child.kill()
        child.wait()


def test_the_throwaway_encoder_has_64_token_passages_and_about_70_weights_each(tmp_path):
    from encoder import SparseEncoder
    from ksearch.benchmarks.fast_encoder import build_fast_encoder
    from ksearch.benchmarks.synthetic_corpus import synthetic_sentences

    encoder = SparseEncoder.load(build_fast_encoder(tmp_path / "m", synthetic_sentences(2000)), device="cpu")
    assert encoder.max_length == 64
    vectors = encoder.encode_documents([" ".join(synthetic_sentences(4, seed=s)) for s in range(1, 41)])
    mean = sum(map(len, vectors)) / len(vectors)
    assert 35 <= mean <= 140, mean  # random weights alone make nearly all ~1,600 entries non-zero


def test_a_missing_work_dir_is_refused_by_name_before_anything_runs(tmp_path):
    from typer.testing import CliRunner

    from ksearch.cli import app

    missing = tmp_path / "no-such-folder"
    result = CliRunner().invoke(app, ["bench", "ingest-memory", "--size-mb", "1", "--work-dir", str(missing),
                                      "--out", str(tmp_path / "out.json")])
    said = " ".join(result.output.replace("│", " ").split())  # rich wraps the message in a box
    assert result.exit_code == 2 and "'--work-dir'" in said and "does not exist" in said
    assert not (tmp_path / "out.json").exists()


def test_a_second_opensearch_run_is_refused_while_another_holds_the_node(tmp_path, monkeypatch):
    import fcntl

    from ksearch.benchmarks import ingest_memory

    monkeypatch.setattr("ksearch.opensearch_node.default_cache_dir", lambda: tmp_path / "opensearch")
    with open(tmp_path / "opensearch-bench-ingest-memory.lock", "a") as running:
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what the first run holds while its node is up
        with pytest.raises(ingest_memory.BenchmarkBusyError, match="another `ksearch bench ingest-memory --backend "):
            with ingest_memory.local_node():
                pass
    assert not (tmp_path / "opensearch-bench-ingest-memory").exists()  # its node folder was not touched


def test_each_opensearch_run_starts_its_node_on_empty_data(tmp_path, monkeypatch):
    """A killed run leaves its index (built with its own throwaway model) in the node's data; the next run would be
    refused by it, so the benchmark's node starts empty. A stand-in node records what is done to it (no OpenSearch)."""
    from ksearch.benchmarks import ingest_memory

    class StandIn:
        data_dir = tmp_path / "run" / "data"
        state_file = tmp_path / "state.json"
        heap = ""

        def __init__(self):
            self.calls = []

        def status(self):
            return True  # the killed run's node is still up

        def stop(self):
            self.calls.append("stop")

        def start(self, timeout):
            self.calls.append(f"start with data: {sorted(p.name for p in self.data_dir.glob('*'))}")
            return "http://127.0.0.1:1"

    node = StandIn()
    (node.data_dir / "nodes").mkdir(parents=True)
    node.state_file.write_text(json.dumps({"pid": 4242}))
    monkeypatch.setattr("ksearch.opensearch_node.default_cache_dir", lambda: tmp_path / "opensearch")
    monkeypatch.setattr("ksearch.opensearch_node.node_sharing_installation", lambda cache_dir: node)
    with ingest_memory.local_node() as (url, pid):
        assert (url, pid) == ("http://127.0.0.1:1", 4242)
    assert node.calls == ["stop", "start with data: []", "stop"]
