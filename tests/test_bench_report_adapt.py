"""The adaptation section and target row of docs/benchmarks.md, from a `bench adapt` result."""

from __future__ import annotations

import json

from ksearch.benchmarks.report import write_report

ADAPT = {
    "benchmark": "adapt", "model": "ksearch-ko-sparse-v3", "hardware": "test cpu", "torch_threads": 2, "cpu_count": 2,
    "device": "cpu", "corpus": ["sample_data/corpus.jsonl", "training_data/pairs_legal.jsonl"], "documents": 3900,
    "passages": 5003, "requested_passages": 5000, "minutes_budget": 17.5, "minutes_given": None, "pairs": {"title": 1000, "cloze": 8000}, "negatives": {"bm25": 9000, "model": 9000},
    "training_rows": 9000, "steps": 120, "planned_steps": 400, "stopped_by_budget": True, "train_loop_seconds": 1200.0,
    "seconds_per_step": 10.0, "first_loss": 2.5, "last_loss": 1.25, "total_seconds": 1620.0, "onnx_error": None,
    "model_folder_mb": 41.0, "load_average_at_start": 1.1, "load_average_at_end": 2.5,
    "phases_seconds": {"read": 1.0, "pseudo-queries": 30.0, "train": 1200.0, "save": 20.0},
}


def _report(tmp_path, result: dict) -> str:
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    (results / "adapt.json").write_text(json.dumps(result), encoding="utf-8")
    return write_report(results, tmp_path / "docs" / "benchmarks.md", ["ksearch bench all"]).read_text(encoding="utf-8")


def test_a_cpu_run_at_5000_passages_reaches_the_targets_and_its_section_names_its_command(tmp_path):
    text = _report(tmp_path, ADAPT)
    assert "| `ksearch adapt` (default budget) on 5,000 passages <= 30 min on 2 CPU cores | **met** | 27.0 min" in text
    assert "other work shared the CPU" in text  # load 2.5 on 2 cores
    assert "other work shared" not in _report(tmp_path, {**ADAPT, "load_average_at_end": 1.5})
    assert ("`ksearch bench adapt --passages 5000 --corpus sample_data/corpus.jsonl --corpus "
            "training_data/pairs_legal.jsonl`") in text and "17.5-minute training budget (the default" in text
    assert "| train | 1200.0 |" in text and "| **total** | **1620.0** (27.0 min) |" in text
    assert "9,000 (title 1,000, cloze 8,000) pseudo-query pairs, 18,000 (bm25 9,000, model 9,000) mined" in text
    assert "stopped by the budget" in text and "load average 1.1 at the start and 2.5 at the end" in text
    slow = _report(tmp_path, {**ADAPT, "total_seconds": 1900.0})
    assert "| **not met** | 31.7 min" in slow


def test_a_small_gpu_or_given_budget_run_is_no_evidence_for_the_default(tmp_path):
    for result in ({**ADAPT, "passages": 300}, {**ADAPT, "device": "cuda"}, {**ADAPT, "minutes_given": 20.0}):
        text = _report(tmp_path, result)
        assert "5,000 passages <= 30 min" not in text and "## Adaptation (`ksearch adapt`)" in text
