"""`IndexMeta`: what an index was built with (model, vocabulary, pruning, format, and the OpenSearch models that encode
for it when the cluster encodes)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from pydantic import BaseModel, Field

from retrieval.errors import VocabularyMismatchError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the stored layout changes incompatibly


class ServerEncoding(BaseModel):
    """How an OpenSearch index lets the cluster encode (ml-commons): documents through its default ingest pipeline,
    queries through `neural_sparse` with `query_text`."""

    document_model_id: str  # the deployed SPARSE_ENCODING model the ingest pipeline runs
    query_model_id: str  # the deployed model queries name (the query-pruned export, or the document model)
    pipeline: str  # the ingest pipeline set as the index's default_pipeline
    source_field: str  # the field the pipeline encodes: `text`, or the client's segmented copy (`model_text`)


class IndexMeta(BaseModel):
    """Recorded when an index is created and checked whenever it is searched or written."""

    name: str
    model_id: str
    vocab_hash: str
    document_pruning: str = "none"
    query_pruning: str = "none"
    format_version: int = FORMAT_VERSION
    server_encoding: ServerEncoding | None = None  # None: the client encodes (every embedded index)
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @classmethod
    def for_encoder(cls, name: str, encoder) -> "IndexMeta":
        """The metadata of a new index built with `encoder` (a `SparseEncoder`)."""
        return cls(name=name, model_id=encoder.model_id, vocab_hash=encoder.vocab_hash,
                   document_pruning=str(encoder.document_pruning), query_pruning=str(encoder.query_pruning))

    def check_encoder(self, model_id: str, vocab_hash: str) -> None:
        """Refuse an encoder whose vocabulary differs; warn when only the model id differs."""
        if vocab_hash != self.vocab_hash:
            raise VocabularyMismatchError(self.name, self.model_id, self.vocab_hash, model_id, vocab_hash)
        if model_id != self.model_id:
            log.warning("index %r was built with model %r; searching with %r (same vocabulary)", self.name, self.model_id, model_id)
