"""The cold-start section and target rows of docs/benchmarks.md, from a `bench startup` result."""

from __future__ import annotations

import json

from ksearch.benchmarks.report import write_report

STARTUP = {
    "benchmark": "startup", "repeats": 3, "index": "bench-sample", "encoder_backend": "onnx", "torch_imported": False,
    "load_average_at_start": 0.4, "hardware": "test cpu",
    "rows": {
        "python -c pass": {"median_s": 0.04, "x_python": 1.0},
        "ksearch search": {"median_s": 2.1, "x_python": 52.5, "target_s": 2.5, "meets_target": True},
        "ksearch encode": {"median_s": 2.4, "x_python": 60.0, "target_s": 2.0, "meets_target": False},
        "app first search": {"error": "AppTest failed"},
    },
}


def test_startup_results_reach_the_targets_and_their_own_section(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "startup.json").write_text(json.dumps(STARTUP), encoding="utf-8")
    text = write_report(results, tmp_path / "docs" / "benchmarks.md", ["ksearch bench all"]).read_text(encoding="utf-8")
    assert "| cold `ksearch search` <= 2.5 s | **met** | 2.10 s |" in text
    assert "| cold `ksearch encode` <= 2 s | **not met** | 2.40 s |" in text
    assert "## Cold start (median of 3 fresh processes)" in text and "torch not imported" in text
    assert "| ksearch encode | 2.40 | 60.0 | 2.0 | not met |" in text
    assert "| app first search | - | - | - | error: AppTest failed |" in text
