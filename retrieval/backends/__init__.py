"""Search backends behind one interface (`SearchBackend`): the embedded index now, OpenSearch later."""

from __future__ import annotations

from pathlib import Path

from retrieval.backends.base import IndexStats, SearchBackend, SearchFilters
from retrieval.backends.embedded import EmbeddedIndex
from retrieval.index_meta import IndexMeta

BACKENDS = ("embedded",)


def _check_kind(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")


def open_index(name: str, *, backend: str = "embedded", home: Path | None = None) -> SearchBackend:
    """Open an existing index by name (`IndexNotFoundError` if it does not exist)."""
    _check_kind(backend)
    return EmbeddedIndex.open(_home(home) / name)


def open_or_create_index(name: str, meta: IndexMeta, *, backend: str = "embedded", home: Path | None = None) -> SearchBackend:
    """Open an index by name, creating it with `meta` if it does not exist."""
    _check_kind(backend)
    return EmbeddedIndex.open_or_create(_home(home) / name, meta)


def _home(home: Path | None) -> Path:
    if home is not None:
        return Path(home)
    from ksearch.settings import get_settings

    return Path(get_settings().home)


__all__ = ["BACKENDS", "EmbeddedIndex", "IndexStats", "SearchBackend", "SearchFilters", "open_index", "open_or_create_index"]
