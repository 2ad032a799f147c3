"""What the benchmarks run on: the sample queries of a split and an index of the sample corpus (built once, reused)."""

from __future__ import annotations

from pathlib import Path

from ingest import ingest_path
from ksearch.demo_index import index_is_complete
from retrieval.backends import BackendConfig, open_or_create_index
from retrieval.backends.base import SearchBackend
from retrieval.evaluation import read_queries, read_split
from retrieval.index_meta import IndexMeta


def load_queries(queries: Path, splits: Path | None, split: str = "dev", limit: int | None = None) -> list[str]:
    """Query texts of `split` (all queries when the split file is missing or split is 'all')."""
    wanted = read_split(splits, split) if splits is not None and splits.is_file() and split != "all" else None
    texts = [q.text for q in read_queries(queries) if wanted is None or q.id in wanted]
    return texts[:limit] if limit else texts


def ensure_index(corpus: Path, name: str, encoder, *, config: BackendConfig, backend: str = "embedded") -> SearchBackend:
    """Open index `name` holding `corpus`, ingesting what is missing with `encoder` (stored passages are skipped)."""
    meta = IndexMeta.for_encoder(name, encoder)
    if backend == "embedded" and index_is_complete(corpus, config.home / name):
        return open_or_create_index(name, meta, backend=backend, config=config)
    store = open_or_create_index(name, meta, backend=backend, config=config)
    ingest_path(corpus, store, encoder, progress=False)
    return store
