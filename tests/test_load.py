"""Load: 50 concurrent searches against each backend (same hits as one at a time) and 50 concurrent HTTP GETs
against the running app, 0 errors.

Latencies are recorded (printed and written to test-artifacts/load.json), never asserted.
"""

from __future__ import annotations

import json
import os
import time
import traceback
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ui_fixtures import UI_INDEX, running_app

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "test-artifacts" / "load.json"
CONCURRENCY = 50
QUERIES = ["전세 보증금 돌려받기", "당뇨 진단 기준", "근로자 해고 예고", "교통사고 합의금", "고혈압 운동", "임대인 의무",
           "퇴직금 지급", "MRI 본인부담금", "집주인이 계약 끝났는데 돈을 안 돌려줘요", "혈당 관리"]
MODES = ["sparse", "bm25", "hybrid"]


def _hammer(name: str, call: Callable[[int], object]) -> dict:
    """Run `call(i)` for i in 0..49 on 50 threads at once; record latencies; fail on any error."""
    def timed(i: int) -> tuple[float, str | None]:
        start = time.perf_counter()
        try:
            call(i)
            error = None
        except Exception:  # every error is reported below, with its traceback
            error = traceback.format_exc()
        return (time.perf_counter() - start) * 1000, error

    wall = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(timed, range(CONCURRENCY)))
    wall_ms = (time.perf_counter() - wall) * 1000
    errors = [e for _, e in results if e]
    latencies = np.array([ms for ms, _ in results])
    figures = {"requests": CONCURRENCY, "concurrency": CONCURRENCY, "errors": len(errors),
               "p50_ms": round(float(np.percentile(latencies, 50)), 1),
               "p99_ms": round(float(np.percentile(latencies, 99)), 1),
               "max_ms": round(float(latencies.max()), 1), "wall_ms": round(wall_ms, 1), "cpus": os.cpu_count()}
    print(f"\nload {name}: {json.dumps(figures)}")
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    try:
        recorded = json.loads(ARTIFACT.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    recorded[name] = figures
    ARTIFACT.write_text(json.dumps(recorded, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert not errors, errors[0]
    return figures


def _sequential(searcher) -> dict[tuple[str, str], list[str]]:
    """Hit ids of every (query, mode) the load test sends, searched one at a time (what concurrency must not change)."""
    pairs = {(QUERIES[i % len(QUERIES)], MODES[i % len(MODES)]) for i in range(CONCURRENCY)}
    return {(q, m): [h.hit.id for h in searcher.search(q, m, 10).hits] for q, m in sorted(pairs)}


def test_50_concurrent_searches_on_the_embedded_index(ui_home):
    from encoder import SparseEncoder
    from retrieval.backends import EmbeddedIndex
    from retrieval.searcher import Searcher

    with EmbeddedIndex.open(ui_home / UI_INDEX) as store:
        searcher = Searcher(SparseEncoder.load(store.meta.model_id), store)
        expected = _sequential(searcher)

        def search(i: int) -> None:
            query, mode = QUERIES[i % len(QUERIES)], MODES[i % len(MODES)]
            assert [h.hit.id for h in searcher.search(query, mode, 10).hits] == expected[query, mode]

        _hammer("embedded search (shipped model, 86 documents)", search)


@pytest.mark.opensearch
def test_50_concurrent_searches_on_opensearch(opensearch_url, tmp_path, tiny_model_dir):
    from encoder import SparseEncoder
    from ingest import ingest_path
    from retrieval.backends.opensearch import OpenSearchIndex
    from retrieval.backends.opensearch_connection import OpenSearchConnection
    from retrieval.index_meta import IndexMeta
    from retrieval.searcher import Searcher

    encoder = SparseEncoder.load(tiny_model_dir, device="cpu")
    name = f"load-{uuid.uuid4().hex[:8]}"
    corpus = ROOT / "sample_data" / "corpus.jsonl"
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()[:120]]
    small = tmp_path / "c.jsonl"
    small.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    conn = OpenSearchConnection(url=opensearch_url, timeout=60)
    store = OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder), conn=conn,
                                           dead_letter_dir=tmp_path)
    try:
        ingest_path(small, store, encoder, progress=False)
        searcher = Searcher(encoder, store)
        expected = _sequential(searcher)

        def search(i: int) -> None:
            query, mode = QUERIES[i % len(QUERIES)], MODES[i % len(MODES)]
            assert {h.hit.id for h in searcher.search(query, mode, 10).hits} == set(expected[query, mode])

        _hammer("opensearch search (tiny model, 120 documents)", search)
    finally:
        store.delete_index()
        store.close()


def test_50_concurrent_http_gets_against_the_app(ui_home, tmp_path):
    with running_app(ui_home, tmp_path / "streamlit.log") as url:
        paths = ["/", "/_stcore/health", "/_stcore/host-config"]

        def get(i: int) -> None:
            with urllib.request.urlopen(url + paths[i % len(paths)], timeout=30) as response:
                assert response.status == 200 and response.read()

        _hammer("streamlit app HTTP GET", get)
