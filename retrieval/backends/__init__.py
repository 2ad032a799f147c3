"""Search backends behind one interface (`SearchBackend`): the embedded index and OpenSearch.

`open_index` and `open_or_create_index` take a `BackendConfig` from the caller (the CLI and the app build it
with `retrieval.settings.Settings.backend_config()`): no backend reads the settings itself.
"""

from __future__ import annotations

from retrieval.backends.base import ENCODINGS, IndexStats, RejectedWrite, SearchBackend, SearchFilters
from retrieval.backends.config import BackendConfig
from retrieval.backends.embedded import EmbeddedIndex
from retrieval.index_meta import IndexMeta

BACKENDS = ("embedded", "opensearch")


def _check_kind(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")


def open_index(name: str, *, config: BackendConfig, backend: str = "embedded",
               query_model_id: str | None = None) -> SearchBackend:
    """Open an existing index by name (`IndexNotFoundError` if it does not exist); `query_model_id`: OpenSearch, a
    deployed model to encode queries in the cluster instead of the one the index records."""
    _check_kind(backend)
    if backend == "opensearch":
        from retrieval.backends.opensearch_server_encoding import ServerEncodedIndex

        index = ServerEncodedIndex.open(name, conn=config.opensearch, dead_letter_dir=config.dead_letter_dir)
        index.query_model_override = query_model_id
        return index
    if query_model_id is not None:
        raise ValueError("a query model id is for the opensearch backend (a model deployed in the cluster)")
    return _embedded(EmbeddedIndex.open(config.home / name), config)


def open_or_create_index(name: str, meta: IndexMeta, *, config: BackendConfig, backend: str = "embedded",
                         rebuild: bool = False, seismic=None) -> SearchBackend:
    """Open an index by name, creating it with `meta` if it does not exist (`rebuild`: a new one, OpenSearch only;
    `seismic`: an `opensearch_seismic.SeismicTokens`, to create it as sparse_vector + SEISMIC, OpenSearch 3.3+)."""
    _check_kind(backend)
    if backend == "opensearch":
        from retrieval.backends.opensearch_server_encoding import ServerEncodedIndex

        return ServerEncodedIndex.open_or_create(name, meta, conn=config.opensearch, rebuild=rebuild,
                                                 analyzer=config.bm25_analyzer, dead_letter_dir=config.dead_letter_dir,
                                                 seismic=seismic, shards=config.shards, replicas=config.replicas)
    if seismic is not None:
        raise ValueError("--ann is for the opensearch backend (sparse_vector + SEISMIC); the embedded index builds its "
                         "approximate index by itself above KSEARCH_APPROXIMATE_ABOVE passages")
    if rebuild:
        raise ValueError("--rebuild is for the opensearch backend; for the embedded index, delete "
                         f"{config.home / name} or ingest into a new --index")
    return _embedded(EmbeddedIndex.open_or_create(config.home / name, meta), config)


def _embedded(index: EmbeddedIndex, config: BackendConfig) -> EmbeddedIndex:
    index.approximate_above = config.approximate_above
    return index


__all__ = ["BACKENDS", "ENCODINGS", "BackendConfig", "EmbeddedIndex", "IndexStats", "RejectedWrite", "SearchBackend", "SearchFilters",
           "open_index", "open_or_create_index"]
