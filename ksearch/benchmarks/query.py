"""Query latency: encode / search / total percentiles and QPS per backend and mode, one client and N concurrent clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from encoder.kiwi_analysis import clear_memo
from ksearch.benchmarks.bench_data import ensure_index, load_queries
from ksearch.benchmarks.encode import hardware_string
from ksearch.benchmarks.latency import percentiles, run_concurrent
from retrieval.backends import BackendConfig
from retrieval.backends.opensearch_connection import OpenSearchConnection
from retrieval.searcher import Searcher, SearchMode

EMBEDDED_MODES = ("sparse", "bm25", "hybrid")  # rank_feature is the same dot product as sparse on the embedded index
OPENSEARCH_MODES = ("neural_sparse", "rank_feature", "bm25", "hybrid")
WARMUP_QUERIES = 5


def time_one(searcher: Searcher, text: str, mode: str, k: int) -> tuple[float, float]:
    """(encode ms, search ms) of one query, its Kiwi analysis not memoised by an earlier one; BM25 encodes nothing."""
    clear_memo()
    t0 = time.perf_counter()
    tokens = None if SearchMode(mode) is SearchMode.BM25 else searcher.query_tokens(text)
    t1 = time.perf_counter()
    searcher.rank(text, mode, k, query_tokens=tokens)
    t2 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t1) * 1000


def bench_mode(searcher: Searcher, queries: list[str], mode: str, k: int, clients: int, rounds: int) -> dict:
    """Single-client percentiles and `clients`-concurrent percentiles + QPS of one mode."""
    for text in queries[:WARMUP_QUERIES]:
        time_one(searcher, text, mode, k)
    work = queries * rounds
    encode, search = [], []
    for text in work:
        e, s = time_one(searcher, text, mode, k)
        encode.append(e)
        search.append(s)
    single = {"encode_ms": percentiles(encode), "search_ms": percentiles(search),
              "total_ms": percentiles([e + s for e, s in zip(encode, search)]),
              "qps": len(work) / ((sum(encode) + sum(search)) / 1000)}
    lock = threading.Lock()
    c_encode, c_search = [], []

    def task(i: int) -> None:
        e, s = time_one(searcher, work[i], mode, k)
        with lock:
            c_encode.append(e)
            c_search.append(s)

    wall = run_concurrent(task, len(work), clients)
    concurrent = {"clients": clients, "encode_ms": percentiles(c_encode), "search_ms": percentiles(c_search),
                  "total_ms": percentiles([e + s for e, s in zip(c_encode, c_search)]), "qps": len(work) / wall}
    return {"single": single, "concurrent": concurrent}


def run_query_bench(encoder, corpus: Path, queries_path: Path, splits: Path | None, *, split: str = "dev",
                    config: BackendConfig, index_name: str = "bench-sample", k: int = 10, clients: int = 8,
                    rounds: int = 1, max_queries: int | None = None,
                    opensearch: Callable[[], AbstractContextManager[OpenSearchConnection | None]] | None = None) -> dict:
    """Benchmark every mode of the embedded index, then (given `opensearch`, a context that yields the connection to a
    node) OpenSearch's, on the same queries; the node runs only during its own part, so it takes no CPU from the
    embedded one."""
    queries = load_queries(queries_path, splits, split, max_queries)
    backends: dict[str, dict] = {}
    store = ensure_index(corpus, index_name, encoder, backend="embedded", config=config)
    searcher = Searcher(encoder, store)
    backends["embedded"] = {"passages": store.count(),
                            "modes": {m: bench_mode(searcher, queries, m, k, clients, rounds) for m in EMBEDDED_MODES}}
    store.close()
    url = None
    if opensearch is not None:
        with opensearch() as conn:
            os_store = ensure_index(corpus, index_name, encoder, backend="opensearch", config=replace(config, opensearch=conn))
            os_searcher = Searcher(encoder, os_store)
            url = conn.safe_url
            backends["opensearch"] = {"url": url, "passages": os_store.count(),
                                      "modes": {m: bench_mode(os_searcher, queries, m, k, clients, rounds)
                                                for m in OPENSEARCH_MODES}}
            os_store.close()
    return {"benchmark": "query", "model": encoder.model_id, "hardware": hardware_string(), "corpus": str(corpus),
            "split": split, "queries": len(queries), "rounds": rounds, "k": k, "clients": clients,
            "opensearch": url is not None, "backends": backends}
