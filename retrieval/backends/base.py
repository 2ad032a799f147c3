"""`SearchBackend`: what every backend (embedded index, OpenSearch) offers.

Nothing here assumes in-process arrays: queries go in as prepared token weights or text, and
hits, vectors and contributions come out as plain Python values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from retrieval.hits import Hit, TokenContribution
from retrieval.index_meta import IndexMeta
from retrieval.passage import Passage


ENCODINGS = ("client", "server")  # who encodes: ksearch's encoder, or the model deployed in the cluster (OpenSearch)


@dataclass(frozen=True)
class SearchFilters:
    """Restrictions on what a search may return."""

    domain: str | None = None


@dataclass(frozen=True)
class IndexStats:
    """Sizes of an index."""

    passages: int
    documents: int
    avg_nonzero_weights: float  # mean number of non-zero weights per passage vector
    documents_by_domain: dict[str, int] = field(default_factory=dict)  # domain ("" when none) -> documents
    passages_by_domain: dict[str, int] = field(default_factory=dict)  # domain ("" when none) -> passages
    documents_approximate: bool = False  # True when the document counts are estimates (a very large OpenSearch index)


@dataclass(frozen=True)
class RejectedWrite:
    """A passage the backend refused to store (it goes to the dead-letter file)."""

    passage_id: str
    doc_id: str
    reason: str
    status: int | None = None  # HTTP status of the refusal; None when refused before sending


class SearchBackend(ABC):
    """Store passages with their sparse vectors; rank them by sparse dot product or BM25."""

    meta: IndexMeta
    encodes_documents: bool = False  # True: the backend encodes passages itself (write them with `add_texts`)
    query_model_id: str | None = None  # a model in the backend that encodes query texts (`search_text`), if any

    # ---------------------------------------------------------------- writing
    @abstractmethod
    def add(self, passages: Sequence[Passage], vectors: Sequence[Mapping[str, float]]) -> None:
        """Store passages (idempotent by id: a stored id is replaced) as one durable write."""

    def add_texts(self, passages: Sequence[Passage], model_texts: Sequence[str]) -> None:
        """Store passages for the backend to encode (`model_texts`: each passage as the model reads it); only for a
        backend that `encodes_documents`."""
        raise NotImplementedError(f"{type(self).__name__} stores vectors the client encoded: use add")

    @abstractmethod
    def delete(self, passage_ids: Iterable[str]) -> int:
        """Remove passages by id; return how many were stored."""

    @abstractmethod
    def finish_writes(self, *, progress: bool = False) -> None:
        """Bring derived structures (BM25, an approximate index) up to date after a batch of writes (`progress`: a bar
        for long builds)."""

    # ---------------------------------------------------------------- reading
    @abstractmethod
    def count(self) -> int:
        """Number of stored passages."""

    @abstractmethod
    def content_hashes(self) -> dict[str, str]:
        """Stored passage id -> content hash (what an ingest compares to resume)."""

    @abstractmethod
    def get_passages(self, passage_ids: Sequence[str]) -> list[Passage]:
        """The stored passages with these ids (missing ids are left out)."""

    @abstractmethod
    def get_vectors(self, passage_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """The stored sparse vectors of these passages."""

    @abstractmethod
    def search(self, query_tokens: Mapping[str, float], k: int = 10, *, filters: SearchFilters | None = None,
               per_document: bool = True) -> list[Hit]:
        """Top-k by sparse dot product; `per_document` keeps each document's best passage only."""

    @abstractmethod
    def search_bm25(self, text: str, k: int = 10, *, filters: SearchFilters | None = None,
                    per_document: bool = True) -> list[Hit]:
        """Top-k by BM25 over Korean morphemes; passages with no matching term are not returned."""

    def search_text(self, text: str, k: int = 10, *, segmenter=None, filters: SearchFilters | None = None,
                    per_document: bool = True) -> list[Hit]:
        """Top-k by the sparse dot product with the query encoded by the backend's `query_model_id` (`segmenter`:
        the model's pre-segmentation, applied by the client first); only where there is such a model."""
        raise NotImplementedError(f"{type(self).__name__} cannot encode queries itself")

    def explain(self, query_tokens: Mapping[str, float], passage_id: str) -> dict[str, TokenContribution]:
        """Per-token contributions (query weight x document weight) to a passage's sparse score, heaviest first."""
        vector = self.get_vectors([passage_id]).get(passage_id)
        if vector is None:
            raise KeyError(f"no passage {passage_id!r} in index {self.meta.name!r}")
        both = {t: TokenContribution(float(w), vector[t]) for t, w in query_tokens.items() if t in vector}
        return dict(sorted(both.items(), key=lambda kv: -kv[1].contribution))

    @abstractmethod
    def stats(self) -> IndexStats:
        """Passage and document counts and the mean non-zero weights per passage."""

    def search_rank_feature(self, query_tokens: Mapping[str, float], k: int = 10, *, filters: SearchFilters | None = None,
                            per_document: bool = True) -> list[Hit]:
        """Top-k by the `rank_feature` form of the sparse query (where it is the same dot product: `search`)."""
        return self.search(query_tokens, k, filters=filters, per_document=per_document)

    def search_notice(self) -> str | None:
        """What a user should know about how sparse searches are answered now (e.g. exactly, because an approximate
        index is out of date); None when nothing."""
        return None

    def rejected_writes(self) -> list[RejectedWrite]:
        """Passages refused by the last writes (complete after `finish_writes`); none for the embedded index."""
        return []

    def check_encoder(self, model_id: str, vocab_hash: str) -> None:
        """Refuse an encoder whose vocabulary differs from the index's (`VocabularyMismatchError`)."""
        self.meta.check_encoder(model_id, vocab_hash)

    def close(self) -> None:
        """Release locks and connections."""

    def __enter__(self) -> "SearchBackend":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
