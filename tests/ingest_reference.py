"""What a clean ingest stores: the reference the fault tests (one node, a cluster) compare a resumed ingest with."""

from __future__ import annotations

from pathlib import Path

from ingest import ingest_path
from retrieval.backends import EmbeddedIndex
from retrieval.index_meta import IndexMeta


def stored_contents(store) -> dict[str, tuple[str, str]]:
    """passage id -> (content hash, text) of every passage a store holds."""
    hashes = store.content_hashes()
    return {p.id: (hashes[p.id], p.text) for p in store.get_passages(sorted(hashes))}


def clean_ingest_contents(corpus: Path, folder: Path, encoder) -> dict[str, tuple[str, str]]:
    """`stored_contents` of a fresh embedded index that ingested `corpus` once, uninterrupted."""
    with EmbeddedIndex.create(folder, IndexMeta.for_encoder("clean", encoder)) as clean:
        ingest_path(corpus, clean, encoder, progress=False)
        return stored_contents(clean)
