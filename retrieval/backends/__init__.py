"""Search backends behind one interface (`SearchBackend`): the embedded index and OpenSearch."""

from __future__ import annotations

from pathlib import Path

from retrieval.backends.base import IndexStats, RejectedWrite, SearchBackend, SearchFilters
from retrieval.backends.embedded import EmbeddedIndex
from retrieval.index_meta import IndexMeta

BACKENDS = ("embedded", "opensearch")


def _check_kind(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")


def open_index(name: str, *, backend: str = "embedded", home: Path | None = None) -> SearchBackend:
    """Open an existing index by name (`IndexNotFoundError` if it does not exist)."""
    _check_kind(backend)
    if backend == "opensearch":
        from retrieval.backends.opensearch import OpenSearchIndex

        return OpenSearchIndex.open(name)
    return _with_settings(EmbeddedIndex.open(_home(home) / name))


def open_or_create_index(name: str, meta: IndexMeta, *, backend: str = "embedded", home: Path | None = None,
                         rebuild: bool = False) -> SearchBackend:
    """Open an index by name, creating it with `meta` if it does not exist (`rebuild`: a new one, OpenSearch only)."""
    _check_kind(backend)
    if backend == "opensearch":
        from retrieval.backends.opensearch import OpenSearchIndex

        dead_letters = _home(home) / "dead-letters"
        return OpenSearchIndex.open_or_create(name, meta, rebuild=rebuild, dead_letter_dir=dead_letters)
    if rebuild:
        raise ValueError("--rebuild is for the opensearch backend; for the embedded index, delete "
                         f"{_home(home) / name} or ingest into a new --index")
    return _with_settings(EmbeddedIndex.open_or_create(_home(home) / name, meta))


def _with_settings(index: EmbeddedIndex) -> EmbeddedIndex:
    from ksearch.settings import get_settings

    index.approximate_above = get_settings().approximate_above
    return index


def _home(home: Path | None) -> Path:
    if home is not None:
        return Path(home)
    from ksearch.settings import get_settings

    return Path(get_settings().home)


__all__ = ["BACKENDS", "EmbeddedIndex", "IndexStats", "RejectedWrite", "SearchBackend", "SearchFilters", "open_index",
           "open_or_create_index"]
