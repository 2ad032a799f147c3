"""Ingest memory: peak RSS of the ingest worker while a synthetic JSONL corpus is ingested, at fractions of the passages
written, so that flat memory (a streamed corpus) is visible beside the file size.

Into an embedded index (`backend="embedded"`) or into a local OpenSearch node started for the run
(`backend="opensearch"`): there the index lives outside the process, so the worker's RSS is what a corpus larger than
memory needs; the node's RSS (JVM heap, off-heap, Lucene's mapped files) is measured on its own, never added to it.
The text is synthetic Korean-ish (`synthetic_corpus.py`); unless a model is named, it is encoded by a tiny random
BERT built on the spot (`fast_encoder.py`): the reader, splitter (Kiwi sentences), spool and writer are what is
measured."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest import ingest_path
from ksearch.benchmarks.encode import hardware_string
from ksearch.benchmarks.fast_encoder import build_fast_encoder, fast_encoder_description
from ksearch.benchmarks.rss_sampler import PeakSampler
from ksearch.benchmarks.synthetic_corpus import synthetic_sentences, write_synthetic_corpus
from retrieval.backends import BackendConfig, open_or_create_index
from retrieval.backends.opensearch_connection import OpenSearchConnection
from retrieval.index_meta import IndexMeta

MARKS = (0.1, 0.25, 0.5, 0.75, 1.0)  # fractions of the passages written at which RSS is reported
BACKENDS = ("embedded", "opensearch")
NODE_HEAP = "512m"  # the local node's default heap (`ksearch opensearch start`)


@contextmanager
def local_node(heap: str = NODE_HEAP) -> Iterator[tuple[str, int]]:
    """(URL, pid) of a node of its own (config, data and port beside the default cache, so tests that stop the shared
    node never stop it), stopped on exit."""
    from ksearch.opensearch_node import default_cache_dir, node_sharing_installation
    from retrieval.backends.opensearch_state import read_state

    cache = default_cache_dir()
    with _one_run_at_a_time(cache.with_name(f"{cache.name}-bench-ingest-memory.lock")):
        node = node_sharing_installation(cache.with_name(f"{cache.name}-bench-ingest-memory"))
        node.heap = heap
        if node.status():
            node.stop()  # a crashed run's node, maybe with another heap (a running one holds the lock)
        # a killed run's index (its throwaway model's vocabulary) would refuse this run's: every run starts empty
        shutil.rmtree(node.data_dir, ignore_errors=True)
        url = node.start(timeout=300)
        try:
            yield url, int((read_state(node.state_file) or {})["pid"])
        finally:
            node.stop()


class BenchmarkBusyError(RuntimeError):
    """Another run of the benchmark holds its node."""


@contextmanager
def _one_run_at_a_time(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path`: a second run would stop the first one's node (one node folder)."""
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BenchmarkBusyError(f"another `ksearch bench ingest-memory --backend opensearch` is running (it holds "
                                     f"{lock_path}); wait for it to finish: both would use, and stop, one node") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ingest(corpus: Path, store, encoder, sampler: PeakSampler, write_batch: int | None):
    """`ingest_path` with RSS marks at `MARKS` of the passages written; (report, seconds)."""
    marks = iter(MARKS)
    next_mark = [next(marks)]

    def on_progress(written: int, total: int) -> None:
        if written == 0:
            sampler.mark("read + split + spool", passages=total)
        while next_mark[0] is not None and total and written >= next_mark[0] * total:
            sampler.mark(f"{next_mark[0]:.0%} written", written=written)
            next_mark[0] = next(marks, None)

    kwargs = {"write_batch": write_batch} if write_batch else {}
    t0 = time.perf_counter()
    report = ingest_path(corpus, store, encoder, progress=False, on_progress=on_progress, **kwargs)
    return report, time.perf_counter() - t0


def run_ingest_memory_bench(size_mb: float, *, backend: str = "embedded", model: str | None = None,
                            work_dir: Path | None = None, write_batch: int | None = None, heap: str = NODE_HEAP) -> dict:
    """Write a `size_mb` MiB synthetic JSONL, ingest it into a new index of `backend` and report RSS by phase."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    import torch

    from encoder import SparseEncoder

    with tempfile.TemporaryDirectory(dir=work_dir, prefix="ksearch-ingest-memory-") as tmp:
        tmp_path = Path(tmp)
        corpus = tmp_path / "corpus.jsonl"
        t0 = time.perf_counter()
        documents = write_synthetic_corpus(corpus, int(size_mb * 2**20))
        generate_seconds = time.perf_counter() - t0
        if model is None:  # its matrices are tiny: a second thread costs more than it does
            torch.set_num_threads(1)
        model_dir = model or build_fast_encoder(tmp_path / "model", synthetic_sentences(5000))
        encoder = SparseEncoder.load(model_dir, device="cpu")
        with (local_node(heap) if backend == "opensearch" else _no_node()) as (url, node_pid):
            config = BackendConfig(home=tmp_path / "home", opensearch=OpenSearchConnection(url=url) if url else
                                   OpenSearchConnection())
            name = "bench-ingest-memory"
            store = open_or_create_index(name, IndexMeta.for_encoder(name, encoder), config=config, backend=backend)
            with PeakSampler(node_pid=node_pid) as sampler:
                sampler.mark("before ingest")
                report, seconds = _ingest(corpus, store, encoder, sampler, write_batch)
                sampler.mark("finish_writes (compaction, BM25)" if backend == "embedded" else "finish_writes (refresh)")
            stored = store.count()
            if backend == "opensearch":
                store.delete_index()
            store.close()
        file_mb = corpus.stat().st_size / 2**20
    if stored != report.written:
        raise RuntimeError(f"{report.written} passages written but {stored} stored")
    loop = [p for p in sampler.phases if p["phase"].endswith("written")]
    result = {
        "benchmark": "ingest-memory", "backend": backend, "hardware": hardware_string(), "file_mb": file_mb,
        "documents": documents, "passages": report.passages, "written": report.written, "ingest_seconds": seconds,
        "generate_seconds": generate_seconds, "text": "synthetic Korean-ish (ksearch/benchmarks/synthetic_corpus.py)",
        "encoder": model or fast_encoder_description(), "torch_threads": torch.get_num_threads(),
        "phases": sampler.phases, "peak_mb": sampler.overall / 2**20,
        "write_loop_growth_mb": (loop[-1]["peak_mb"] - loop[0]["rss_mb"]) if loop else 0.0,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    if node_pid is not None:
        result.update(node_heap=heap, node_peak_mb=sampler.node_overall / 2**20,
                      node_write_loop_growth_mb=(loop[-1]["node_peak_mb"] - loop[0]["node_rss_mb"]) if loop else 0.0)
    return result


@contextmanager
def _no_node() -> Iterator[tuple[None, None]]:
    yield None, None


def merge_run(previous: dict | None, run: dict) -> dict:
    """The results document with `run` in place of an earlier run on the same backend (other backends' runs kept)."""
    runs = dict((previous or {}).get("runs", {}))
    runs[run["backend"]] = run
    return {"benchmark": "ingest-memory", "runs": {b: runs[b] for b in BACKENDS if b in runs}}


def ingest_memory_table(result: dict):  # -> rich.table.Table
    """RSS by phase beside the file size (and the OpenSearch node's, apart)."""
    from rich.table import Table

    node = "node_peak_mb" in result
    table = Table(title=f"ingest-memory into {result['backend']}: {result['file_mb']:.0f} MiB JSONL "
                        f"({result['documents']} documents, {result['passages']} passages), {result['text']}; "
                        f"encoded by {result['encoder']} | {result['hardware']}")
    cols = ["phase", "s", "worker RSS MiB", "worker peak MiB since previous"]
    cols += ["node RSS MiB", "node peak MiB"] if node else []
    for col in (*cols, "file MiB"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for p in result["phases"]:
        extra = [f"{p['node_rss_mb']:.0f}", f"{p['node_peak_mb']:.0f}"] if node else []
        table.add_row(p["phase"], f"{p['seconds']:.0f}", f"{p['rss_mb']:.0f}", f"{p['peak_mb']:.0f}", *extra,
                      f"{result['file_mb']:.0f}")
    table.caption = (f"worker peak {result['peak_mb']:.0f} MiB; growth over the write loop (10% -> 100% written) "
                     f"{result['write_loop_growth_mb']:.0f} MiB" +
                     (f"; node peak {result['node_peak_mb']:.0f} MiB (heap {result['node_heap']})" if node else ""))
    return table
