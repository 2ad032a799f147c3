"""The explicit mapping of a ksearch OpenSearch index, and the document each passage becomes.

Fields: `text` (analysed for Korean BM25 with the node's `nori` analyzer when it has one), `title`,
`domain` / `doc_id` / `content_hash` keywords, `chunk` integer, `nnz` (non-zero weights of the
vector, for stats), `sparse` (`rank_features`), `extra` (stored, not indexed). Without nori, BM25
runs on `text_morphemes`: Kiwi content morphemes joined by spaces, with a whitespace analyzer
(the query is analysed the same way by the client; `morpheme_terms`). `_meta` holds the `IndexMeta` and which BM25
field the index uses. An index whose documents the cluster encodes (`IndexMeta.server_encoding`) has the
ingest pipeline as `index.default_pipeline` and, for a model that reads segmented text, the field the
pipeline encodes (stored, not indexed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrieval.index_meta import IndexMeta
from retrieval.passage import Passage
from retrieval.query import DOMAIN_FIELD, SPARSE_FIELD, TEXT_FIELD

MORPHEMES_FIELD = "text_morphemes"
BM25_NORI = "nori"
BM25_KIWI = "kiwi"


def bm25_field(analyzer: str) -> str:
    """The field BM25 queries go to for an index built with `analyzer` (nori | kiwi)."""
    return TEXT_FIELD if analyzer == BM25_NORI else MORPHEMES_FIELD


def index_body(meta: IndexMeta, analyzer: str, *, shards: int = 1, replicas: int | None = None) -> dict[str, Any]:
    """`PUT /INDEX` body: settings and the explicit (strict) mapping with `_meta`; `replicas` None: one replica when
    a second node is there (`auto_expand_replicas` 0-1), so a single node stays green."""
    text_analyzer = "nori" if analyzer == BM25_NORI else "standard"
    properties: dict[str, Any] = {
        "doc_id": {"type": "keyword"},
        "chunk": {"type": "integer"},
        TEXT_FIELD: {"type": "text", "analyzer": text_analyzer},
        "title": {"type": "text", "analyzer": text_analyzer, "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        DOMAIN_FIELD: {"type": "keyword"},
        "content_hash": {"type": "keyword"},
        "nnz": {"type": "integer"},
        SPARSE_FIELD: {"type": "rank_features"},
        "extra": {"type": "object", "enabled": False},
    }
    if analyzer == BM25_KIWI:
        properties[MORPHEMES_FIELD] = {"type": "text", "analyzer": "whitespace"}
    if shards < 1 or (replicas is not None and replicas < 0):
        raise ValueError(f"an index needs at least 1 shard and 0 or more replicas, not {shards} and {replicas}")
    settings: dict[str, Any] = {"number_of_shards": shards}
    if replicas is None:
        settings["auto_expand_replicas"] = "0-1"
    else:
        settings["number_of_replicas"] = replicas
    server = meta.server_encoding
    if server is not None:
        settings["default_pipeline"] = server.pipeline  # every write is encoded by the cluster, whoever sends it
        if server.source_field not in properties:
            properties[server.source_field] = {"type": "text", "index": False}
    return {
        "settings": {"index": settings},
        "mappings": {
            "dynamic": "strict",
            "_meta": {"ksearch": meta.model_dump(), "bm25_analyzer": analyzer, "bm25_field": bm25_field(analyzer)},
            "properties": properties,
        },
    }


def morpheme_terms(morphemes: list[str]) -> str:
    """Content morphemes as the whitespace-separated terms of `text_morphemes` (and of a BM25 query on it).

    Kiwi can return a morpheme holding a space (a multi-word entry such as "손목터널 증후군"); its spaces become
    "_" so it stays one term, as it is for the embedded index's BM25, and lengths and statistics agree.
    """
    return " ".join("_".join(m.split()) for m in morphemes)


def chunk_number(passage: Passage) -> int:
    """N of a passage id `DOCID#N` (0 when it has no number)."""
    tail = passage.id.rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def passage_source(passage: Passage, vector: Mapping[str, float], morphemes: list[str] | None) -> dict[str, Any]:
    """The `_source` stored for one passage."""
    source: dict[str, Any] = {
        "doc_id": passage.doc_id, "chunk": chunk_number(passage), TEXT_FIELD: passage.text, "title": passage.title,
        DOMAIN_FIELD: passage.domain, "content_hash": passage.content_hash, "nnz": len(vector),
        SPARSE_FIELD: {name: float(weight) for name, weight in vector.items()}, "extra": dict(passage.extra),
    }
    if morphemes is not None:
        source[MORPHEMES_FIELD] = morpheme_terms(morphemes)
    return source


def passage_from_source(passage_id: str, source: Mapping[str, Any]) -> Passage:
    """The `Passage` a stored `_source` describes."""
    return Passage(id=passage_id, doc_id=source.get("doc_id", ""), text=source.get(TEXT_FIELD, ""),
                   title=source.get("title", ""), domain=source.get(DOMAIN_FIELD, ""), extra=source.get("extra") or {},
                   content_hash=source.get("content_hash", ""))
