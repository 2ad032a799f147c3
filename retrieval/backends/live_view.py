"""The live rows of an embedded index: every segment's newest version of each passage id, minus the tombstoned ones,
assembled into one CSR matrix (and its column-major copy for scoring) over one feature numbering."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from retrieval.backends.base import IndexStats, SearchFilters
from retrieval.backends.segment import Segment
from retrieval.hits import Hit
from retrieval.passage import Passage


@dataclass
class LiveView:
    """The live rows of all segments, assembled for searching."""

    passages: list[Passage]
    morphemes: list[list[str]]
    matrix: sparse.csr_matrix  # live rows x features
    postings: sparse.csc_matrix  # the same, column-major: each feature's passages, for scoring
    feature_index: dict[str, int]
    features: list[str]
    row_of: dict[str, int]
    doc_codes: np.ndarray
    domains: np.ndarray

    def row_vector(self, row: int) -> dict[str, float]:
        """The stored vector of one live row."""
        start, end = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        return {self.features[c]: float(w) for c, w in zip(self.matrix.indices[start:end], self.matrix.data[start:end])}

    def query_columns(self, query_tokens: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(columns, weights) of the query tokens some live passage has."""
        index = self.feature_index
        cols, weights = [], []
        for name, w in query_tokens.items():
            c = index.get(name)
            if c is not None:
                cols.append(c)
                weights.append(w)
        return np.array(cols, dtype=np.int64), np.array(weights, dtype=np.float64)

    def candidates(self, filters: SearchFilters | None) -> np.ndarray:
        """Which live rows `filters` allow (a boolean mask)."""
        mask = np.ones(len(self.passages), dtype=bool)
        if filters is not None and filters.domain is not None:
            mask &= self.domains == filters.domain
        return mask

    def hits(self, rows: list[int], scores: np.ndarray | Mapping[int, float]) -> list[Hit]:
        """`Hit`s of these rows, scored by `scores[row]`."""
        out = []
        for r in rows:
            p = self.passages[r]
            out.append(Hit(id=p.id, doc_id=p.doc_id, score=float(scores[r]), title=p.title, domain=p.domain, text=p.text,
                           extra=p.extra))
        return out

    def stats(self) -> IndexStats:
        """Live passages, documents and mean non-zero weights per passage."""
        n = len(self.passages)
        nnz = float(np.diff(self.matrix.indptr).mean()) if n else 0.0
        passages_by_domain = Counter(p.domain for p in self.passages)
        documents_by_domain = Counter(domain for _, domain in {(p.doc_id, p.domain) for p in self.passages})
        return IndexStats(passages=n, documents=len({p.doc_id for p in self.passages}), avg_nonzero_weights=nnz,
                          documents_by_domain=dict(sorted(documents_by_domain.items())),
                          passages_by_domain=dict(sorted(passages_by_domain.items())))


def live_view(segments: Sequence[Segment], tombstones: Mapping[str, int]) -> LiveView:
    """The live rows of `segments` (oldest first) under `tombstones` (passage id -> seq of its deletion)."""
    latest: dict[str, tuple[int, int, int]] = {}  # id -> (seq, segment number, row)
    for s_no, segment in enumerate(segments):
        for row, passage in enumerate(segment.passages):
            latest[passage.id] = (segment.seq, s_no, row)
    picks = sorted((s_no, row) for pid, (seq, s_no, row) in latest.items() if tombstones.get(pid, -1) <= seq)
    feature_index: dict[str, int] = {}
    for segment in segments:
        for f in segment.features:
            feature_index.setdefault(f, len(feature_index))
    blocks, passages, morphemes = [], [], []
    for s_no, segment in enumerate(segments):
        rows = [row for s, row in picks if s == s_no]
        if not rows:
            continue
        remap = np.asarray([feature_index[f] for f in segment.features], dtype=np.int32)
        part = segment.matrix[rows].tocsr()
        blocks.append(sparse.csr_matrix((part.data, remap[part.indices] if len(remap) else part.indices, part.indptr),
                                        shape=(len(rows), len(feature_index))))
        passages += [segment.passages[r] for r in rows]
        morphemes += [segment.morphemes[r] for r in rows]
    matrix = sparse.vstack(blocks, format="csr") if blocks else sparse.csr_matrix((0, len(feature_index)), dtype=np.float32)
    doc_ids = [p.doc_id for p in passages]
    _, doc_codes = np.unique(np.asarray(doc_ids, dtype=str), return_inverse=True) if doc_ids else (None, np.zeros(0, int))
    matrix = matrix.astype(np.float32)
    return LiveView(
        passages=passages, morphemes=morphemes, matrix=matrix, postings=matrix.tocsc(), feature_index=feature_index,
        features=list(feature_index), row_of={p.id: i for i, p in enumerate(passages)},
        doc_codes=np.asarray(doc_codes), domains=np.asarray([p.domain for p in passages], dtype=str),
    )
