"""The errors the retrieval layer raises; each message says what to do next."""

from __future__ import annotations


class RetrievalError(RuntimeError):
    """Base class of retrieval errors (the CLI prints the message and exits 2)."""


class IndexNotFoundError(RetrievalError):
    """The named index does not exist."""


class IndexFormatError(RetrievalError):
    """The index on disk is unreadable or of an unsupported format version."""


class VocabularyMismatchError(RetrievalError):
    """The encoder's vocabulary differs from the one the index was built with."""

    def __init__(self, index_name: str, index_model: str, index_vocab: str, model_id: str, vocab_hash: str) -> None:
        super().__init__(
            f"index {index_name!r} was built with model {index_model!r} (vocabulary {index_vocab}), "
            f"but the encoder is {model_id!r} (vocabulary {vocab_hash}): their token ids differ, so scores "
            f"would be meaningless. Search with --model {index_model!r}, or re-ingest into a new index "
            f"(`ksearch ingest PATH --index NEW_NAME --model {model_id}`)."
        )
        self.index_model, self.model_id = index_model, model_id
