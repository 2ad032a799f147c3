"""`IndexMeta`: what an index was built with (model, vocabulary, pruning, format)."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from pydantic import BaseModel, Field

from retrieval.errors import VocabularyMismatchError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the stored layout changes incompatibly


class IndexMeta(BaseModel):
    """Recorded when an index is created and checked whenever it is searched or written."""

    name: str
    model_id: str
    vocab_hash: str
    document_pruning: str = "none"
    query_pruning: str = "none"
    format_version: int = FORMAT_VERSION
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
