"""Ingest throughput: passages/s written by the ingest worker into each backend vs pure batched encoding of the same passages."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

from encoder.kiwi_analysis import clear_memo
from ingest import ingest_path
from ingest.chunking import PassageSplitter
from ingest.readers import ColumnMapping
from ingest.worker import DEFAULT_WRITE_BATCH, IngestReport, collect_documents, model_fingerprint, split_documents
from ksearch.benchmarks.encode import hardware_string
from retrieval.backends import BackendConfig, open_or_create_index
from retrieval.backends.opensearch_connection import OpenSearchConnection
from retrieval.index_meta import IndexMeta

TARGET_RATIO = 0.85


def write_subset(corpus: Path, documents: int, out: Path) -> Path:
    """The first `documents` rows of a JSONL corpus, written to `out`."""
    with corpus.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for n, line in enumerate(line for line in src if line.strip()):
            if n >= documents:
                break
            dst.write(line)
    return out


def pure_encode_rate(encoder, texts: list[str], batch: int = DEFAULT_WRITE_BATCH) -> float:
    """Passages/s of `encoder.encode_documents` alone (Kiwi analysis included), in the worker's batch size."""
    clear_memo()
    start = time.perf_counter()
    for begin in range(0, len(texts), batch):
        encoder.encode_documents(texts[begin: begin + batch])
    return len(texts) / (time.perf_counter() - start)


def ingest_rate(subset: Path, encoder, backend: str, name: str, config: BackendConfig) -> dict:
    """Ingest `subset` into a new index; passages/s over the worker's encode+write loop and over the whole call."""
    store = open_or_create_index(name, IndexMeta.for_encoder(name, encoder), backend=backend, config=config,
                                 rebuild=backend == "opensearch")
    clear_memo()
    start = time.perf_counter()
    report: IngestReport = ingest_path(subset, store, encoder, progress=False)
    wall = time.perf_counter() - start
    if backend == "opensearch":
        store.delete_index()
    store.close()
    return {"written": report.written, "loop_seconds": report.encode_seconds, "wall_seconds": wall,
            "passages_per_s": report.passages_per_second, "wall_passages_per_s": report.written / wall if wall else 0.0}


def run_ingest_bench(encoder, corpus: Path, *, documents: int = 400, opensearch: OpenSearchConnection | None = None,
                     work_dir: Path | None = None) -> dict:
    """Pure encoding (measured before and after) vs ingest into embedded (and, given its connection, OpenSearch) on the
    same passages."""
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        tmp_path = Path(tmp)
        subset = write_subset(corpus, documents, tmp_path / "subset.jsonl")
        report = IngestReport()
        docs = collect_documents(subset, None, ColumnMapping(), report)
        texts = [p.text for p in split_documents(docs, PassageSplitter(encoder), model_fingerprint(encoder))]
        encoder.encode_documents(texts[:32])  # warm-up
        before = pure_encode_rate(encoder, texts)
        config = BackendConfig(home=tmp_path / "home")
        backends = {"embedded": ingest_rate(subset, encoder, "embedded", "bench-ingest", config)}
        if opensearch is not None:
            backends["opensearch"] = ingest_rate(subset, encoder, "opensearch", f"bench-ingest-{int(time.time())}",
                                                 replace(config, opensearch=opensearch))
        after = pure_encode_rate(encoder, texts)
    pure = (before + after) / 2
    for result in backends.values():
        result["ratio_to_pure_encoding"] = result["passages_per_s"] / pure if pure else 0.0
        result["wall_ratio_to_pure_encoding"] = result["wall_passages_per_s"] / pure if pure else 0.0
        result["meets_target"] = result["ratio_to_pure_encoding"] >= TARGET_RATIO
    return {"benchmark": "ingest", "model": encoder.model_id, "hardware": hardware_string(), "corpus": str(corpus),
            "documents": len(docs), "passages": len(texts), "target_ratio": TARGET_RATIO,
            "pure_encoding": {"passages_per_s": pure, "before": before, "after": after}, "backends": backends}
