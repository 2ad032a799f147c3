"""`pytest -m "not slow"`, the README's fast loop, leaves out training, benchmarks, OpenSearch and the browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY_FILES = {"test_training.py", "test_bench_smoke.py", "test_opensearch_backend.py", "test_opensearch_security.py",
               "test_opensearch_smoke.py", "test_ui_browser.py"}
# marked `opensearch` only (conftest adds `slow`), in files whose other tests belong to the fast loop
OPENSEARCH_ONLY = {"tests/test_bad_input.py::test_opensearch_dead_letters_every_invalid_vector",
                   "tests/test_faults.py::test_opensearch_stopped_mid_ingest_then_rerun_loses_and_duplicates_nothing",
                   "tests/test_load.py::test_50_concurrent_searches_on_opensearch"}


def test_not_slow_leaves_out_the_heavy_tests():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not slow"],
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    fast = {line.split("[")[0] for line in out.splitlines() if "::" in line}
    assert "tests/test_search_explain.py::test_own_words_are_model_words_parts_of_them_or_pieces_of_the_text" in fast
    assert not [t for t in fast if t.split("::")[0].rsplit("/", 1)[-1] in HEAVY_FILES]
    assert "tests/test_bad_input.py::test_a_one_megabyte_document_is_split_into_passages" in fast
    assert not OPENSEARCH_ONLY & fast
