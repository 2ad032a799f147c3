"""Ingest memory: peak RSS (this process and its children) while a synthetic JSONL corpus is ingested into an embedded
index, at 10%, 50% and 100% of the passages written, so that flat memory (a streamed corpus) is visible beside the
file size. The text is synthetic Korean-ish (`synthetic_corpus.py`); unless a model is named, it is encoded by a tiny
random BERT built on the spot (`fast_encoder.py`): the reader, splitter, spool and writer are what is measured."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import psutil

from ingest import ingest_path
from ksearch.benchmarks.encode import hardware_string
from ksearch.benchmarks.fast_encoder import FAST_ENCODER_NAME, build_fast_encoder
from ksearch.benchmarks.synthetic_corpus import synthetic_sentences, write_synthetic_corpus
from retrieval.backends import BackendConfig, open_or_create_index
from retrieval.index_meta import IndexMeta

MARKS = (0.1, 0.5, 1.0)  # fractions of the passages written at which RSS is reported


def tree_rss_bytes(proc: psutil.Process) -> int:
    """RSS of `proc` and all its live children."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


class PeakSampler:
    """Samples the process tree's RSS on a thread; `mark(name)` records the peak since the previous mark."""

    def __init__(self, interval: float = 0.05) -> None:
        self.proc, self.interval = psutil.Process(), interval
        self.peak = self.overall = tree_rss_bytes(self.proc)
        self.phases: list[dict] = []
        self.start = time.perf_counter()
        self._lock, self._done = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def sample(self) -> int:
        """Take one sample now; return it."""
        rss = tree_rss_bytes(self.proc)
        with self._lock:
            self.peak, self.overall = max(self.peak, rss), max(self.overall, rss)
        return rss

    def mark(self, name: str, **fields) -> None:
        """Record the current RSS and the peak since the last mark under `name`."""
        now = self.sample()
        with self._lock:
            self.phases.append({"phase": name, "seconds": time.perf_counter() - self.start, "rss_mb": now / 2**20,
                                "peak_mb": self.peak / 2**20, **fields})
            self.peak = now

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def run_ingest_memory_bench(size_mb: float, *, model: str | None = None, work_dir: Path | None = None,
                            write_batch: int | None = None) -> dict:
    """Write a `size_mb` MB synthetic JSONL, ingest it into a new embedded index and report RSS by phase."""
    from encoder import SparseEncoder

    with tempfile.TemporaryDirectory(dir=work_dir, prefix="ksearch-ingest-memory-") as tmp:
        tmp_path = Path(tmp)
        corpus = tmp_path / "corpus.jsonl"
        t0 = time.perf_counter()
        documents = write_synthetic_corpus(corpus, int(size_mb * 2**20))
        generate_seconds = time.perf_counter() - t0
        model_dir = model or build_fast_encoder(tmp_path / "model", synthetic_sentences(5000))
        encoder = SparseEncoder.load(model_dir, device="cpu")
        store = open_or_create_index("ingest-memory", IndexMeta.for_encoder("ingest-memory", encoder),
                                     config=BackendConfig(home=tmp_path / "home"))
        marks = iter(MARKS)
        next_mark = [next(marks)]
        kwargs = {"write_batch": write_batch} if write_batch else {}
        with PeakSampler() as sampler:
            sampler.mark("before ingest")

            def on_progress(written: int, total: int) -> None:
                if written == 0:
                    sampler.mark("read + split + spool", passages=total)
                while next_mark[0] is not None and total and written >= next_mark[0] * total:
                    sampler.mark(f"{next_mark[0]:.0%} written", written=written)
                    next_mark[0] = next(marks, None)

            t0 = time.perf_counter()
            report = ingest_path(corpus, store, encoder, progress=False, on_progress=on_progress, **kwargs)
            seconds = time.perf_counter() - t0
            sampler.mark("finish_writes (compaction, BM25)")
        store.close()
        file_mb = corpus.stat().st_size / 2**20
    loop = [p for p in sampler.phases if p["phase"].endswith("written")]
    return {
        "benchmark": "ingest-memory", "hardware": hardware_string(), "file_mb": file_mb, "documents": documents,
        "passages": report.passages, "written": report.written, "ingest_seconds": seconds,
        "generate_seconds": generate_seconds, "text": "synthetic Korean-ish (ksearch/benchmarks/synthetic_corpus.py)",
        "encoder": model or f"{FAST_ENCODER_NAME} (2 layers, hidden 32, random weights; built locally)",
        "phases": sampler.phases, "peak_mb": sampler.overall / 2**20,
        "write_loop_growth_mb": (loop[-1]["peak_mb"] - loop[0]["rss_mb"]) if loop else 0.0,
    }


def ingest_memory_table(result: dict):  # -> rich.table.Table
    """RSS by phase beside the file size."""
    from rich.table import Table

    table = Table(title=f"ingest-memory: {result['file_mb']:.0f} MiB JSONL ({result['documents']} documents, "
                        f"{result['passages']} passages), {result['text']}; encoded by {result['encoder']} | "
                        f"{result['hardware']}")
    for col in ("phase", "s", "RSS MiB", "peak MiB since previous", "file MiB"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for p in result["phases"]:
        table.add_row(p["phase"], f"{p['seconds']:.0f}", f"{p['rss_mb']:.0f}", f"{p['peak_mb']:.0f}",
                      f"{result['file_mb']:.0f}")
    table.caption = (f"peak {result['peak_mb']:.0f} MiB; growth over the write loop (10% -> 100% written) "
                     f"{result['write_loop_growth_mb']:.0f} MiB")
    return table
