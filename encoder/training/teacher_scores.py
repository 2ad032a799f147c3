"""Teacher scores for `ksearch adapt`'s distillation objective (GPL-style, with no cross-encoder to ask).

Each pseudo-query comes with candidates: its positive first, then its mined negatives. The teacher scores every
candidate twice, with the parent model (the sparse dot product of its vectors) and with BM25 over Kiwi content
morphemes of this corpus (which knows the corpus's own term rarity). As in OpenSearch's ensemble teacher, each
score list is min-max normalised per query over its candidates and the two are averaged (`bm25_share` is the BM25
weight); unlike it, the average is mapped back into the parent's own score range for that query
(lo + (hi - lo) x mix), so that where BM25 agrees with the parent the target is the parent's score itself: the
student starts at zero loss and only moves where the corpus's statistics disagree with it (MarginMSE learns the
margins between candidates, not their level).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class ScoredRow:
    """A pseudo-query, its candidates (the positive first, then mined negatives) and the teacher's score of each."""

    query: str
    passages: list[str]
    scores: list[float]
    source: str


def minmax(scores: Sequence[float]) -> np.ndarray:
    """Scores scaled to [0, 1] by their own min and max (scores that are all equal become zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    span = scores.max() - scores.min()
    return (scores - scores.min()) / span if span > 0 else np.zeros_like(scores)


def ensemble_scores(parent: Sequence[float], bm25: Sequence[float], bm25_share: float) -> np.ndarray:
    """One query's teacher scores of its candidates: the min-max mix of parent and BM25 scores, in the parent's range
    (lo + (hi - lo) x ((1 - bm25_share) x minmax(parent) + bm25_share x minmax(bm25)))."""
    if not 0.0 <= bm25_share <= 1.0:
        raise ValueError(f"bm25_share must be within [0, 1], not {bm25_share}")
    parent = np.asarray(parent, dtype=np.float64)
    mix = (1.0 - bm25_share) * minmax(parent) + bm25_share * minmax(bm25)
    return parent.min() + (parent.max() - parent.min()) * mix


class Bm25Scorer:
    """Lucene's BM25 (k1 1.2, b 0.75, as the index and the miner) with a corpus's statistics, for any text's terms
    (a pseudo-query's positive may be a passage with a sentence cut out, which no index holds)."""

    def __init__(self, corpus_terms: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.documents = len(corpus_terms)
        self.average_length = sum(map(len, corpus_terms)) / max(1, self.documents) or 1.0
        self.df = Counter(term for terms in corpus_terms for term in set(terms))

    def idf(self, term: str) -> float:
        """ln(1 + (N - df + 0.5) / (df + 0.5))."""
        df = self.df.get(term, 0)
        return math.log(1 + (self.documents - df + 0.5) / (df + 0.5))

    def score(self, query_terms: Sequence[str], text_terms: Sequence[str]) -> float:
        """BM25 of a text (its terms) for a query (its terms; a repeated query term counts once, as in bm25s)."""
        tf = Counter(text_terms)
        norm = self.k1 * (1 - self.b + self.b * len(text_terms) / self.average_length)
        return sum(self.idf(t) * tf[t] / (tf[t] + norm) for t in set(query_terms) if t in tf)  # Lucene 8+: no (k1 + 1)


def round_trip(queries: Sequence, rankings: dict[str, np.ndarray], depth: int) -> list[int]:
    """Indices of the pseudo-queries whose source passage some miner ranks within its first `depth` (the round-trip
    filter of Promptagator and Doc2Query--: a query that cannot find its own passage is likely a bad one)."""
    return [q for q, query in enumerate(queries)
            if any(query.passage in ranking[q][:depth] for ranking in rankings.values())]


def scored_rows(queries: Sequence, picked: Sequence[Sequence[tuple[int, str]]], passages: Sequence, terms: Sequence,
                query_terms: Sequence[Sequence[str]], encoder, query_matrix, passage_matrix_t,
                bm25_share: float) -> list[ScoredRow]:
    """Per pseudo-query with at least one negative: its positive and negatives with the ensemble teacher's scores.

    `query_matrix` and `passage_matrix_t` are the parent's vectors (`negative_mining.encode_matrices`); a positive that
    is not a whole passage (ict cuts its sentence out) is encoded and Kiwi-analysed here.
    """
    from encoder.training.negative_mining import encode_matrix
    from encoder.training.pseudo_queries import query_terms as analyse_terms

    passage_rows = passage_matrix_t.T.tocsr()
    bm25 = Bm25Scorer([t.content for t in terms])
    todo = [q for q, (query, negatives) in enumerate(zip(queries, picked))
            if negatives and query.positive != passages[query.passage].text]
    own_texts = [queries[q].positive for q in todo]
    own_vectors = encode_matrix(encoder.encode_documents, encoder.feature_names, own_texts) if todo else None
    own = {q: (n, terms_) for n, (q, terms_) in enumerate(zip(todo, analyse_terms(own_texts)))}
    out: list[ScoredRow] = []
    for q, (query, negatives) in enumerate(zip(queries, picked)):
        if not negatives:
            continue
        indices = [n for n, _ in negatives]
        if q in own:
            positive_vector, positive_terms = own_vectors[own[q][0]], own[q][1]
        else:
            positive_vector, positive_terms = passage_rows[query.passage], terms[query.passage].content
        vectors = [positive_vector] + [passage_rows[n] for n in indices]
        parent = [float((v @ query_matrix[q].T).toarray().sum()) for v in vectors]
        lexical = [bm25.score(query_terms[q], t) for t in [positive_terms] + [terms[n].content for n in indices]]
        teacher = ensemble_scores(parent, lexical, bm25_share)
        out.append(ScoredRow(query.query, [query.positive] + [passages[n].text for n in indices],
                             [round(float(s), 4) for s in teacher],
                             f"{query.kind}+{'/'.join(miner for _, miner in negatives)}"))
    return out
