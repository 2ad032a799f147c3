"""Hard negatives for pseudo-queries: passages that BM25 or the starting model rank high, but that are not the answer.

Two miners rank the corpus for every query: BM25 over Kiwi content morphemes (`bm25s`), which finds passages that
share the query's words, and the starting sparse model, which also finds passages that share its expansions. Each
pair takes its negative from one miner, alternating, so the model is trained against both kinds of confusion.

A negative must not be a hidden positive. Excluded: the passages of the source document (its other chunks share
its topic), and near-duplicates of the source passage (Jaccard similarity of their content-morpheme sets at or
above `near_duplicate`). Of the candidates left, one of the first `window` is drawn at random rather than always the
first: the very top of a pseudo-query's ranking is where unlabelled relevant passages are most likely.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from encoder.training.pseudo_queries import CorpusPassage, PassageTerms, PseudoQuery

SCORE_BLOCK = 1024  # queries scored against the corpus at once (a dense [block x passages] score matrix)


def bm25_rankings(passage_terms: Sequence[Sequence[str]], query_terms: Sequence[Sequence[str]], depth: int) -> np.ndarray:
    """[queries x depth] passage indices, best first, by BM25 over the given terms (-1 where fewer passages)."""
    import bm25s

    depth = min(depth, len(passage_terms))
    retriever = bm25s.BM25(method="lucene", k1=1.2, b=0.75)  # Lucene's BM25 with OpenSearch's defaults, as the index
    retriever.index([list(t) or ["\u2205"] for t in passage_terms], show_progress=False)
    ranked, scores = retriever.retrieve([list(t) or ["\u2205"] for t in query_terms], k=depth, show_progress=False)
    ranked = np.where(np.asarray(scores) > 0, np.asarray(ranked), -1)
    ranked[[not t for t in query_terms]] = -1  # a query without content terms has no BM25 ranking
    return ranked


def model_rankings(encoder, passage_texts: Sequence[str], query_texts: Sequence[str], depth: int, *,
                   progress: bool = False) -> np.ndarray:
    """[queries x depth] passage indices, best first, by the sparse dot product of `encoder`'s vectors."""
    queries, docs = encode_matrices(encoder, passage_texts, query_texts, progress=progress)
    return rank_by_dot(queries, docs, depth)


def encode_matrices(encoder, passage_texts: Sequence[str], query_texts: Sequence[str], *, progress: bool = False):
    """(queries [q x vocab], passages transposed [vocab x p]) sparse matrices of `encoder`'s vectors; their product is
    the model's query-passage scores."""
    docs = encode_matrix(encoder.encode_documents, encoder.feature_names, passage_texts, "encoding passages", progress)
    queries = encode_matrix(encoder.encode_queries, encoder.feature_names, query_texts, "encoding queries", progress)
    return queries, docs.T.tocsr()


def encode_matrix(encode, feature_names: Sequence[str], texts: Sequence[str], desc: str = "encoding",
                  progress: bool = False):
    """[texts x vocab] sparse matrix of the vectors `encode` (an encoder's encode_documents or encode_queries) gives."""
    from scipy.sparse import csr_matrix

    columns = {name: i for i, name in enumerate(feature_names)}
    rows, cols, vals = [], [], []
    for r, vector in enumerate(_encode(encode, texts, desc, progress)):
        for name, weight in vector.items():
            rows.append(r)
            cols.append(columns[name])
            vals.append(weight)
    return csr_matrix((vals, (rows, cols)), shape=(len(texts), len(columns)), dtype=np.float32)


def rank_by_dot(queries, docs, depth: int) -> np.ndarray:
    """[queries x depth] passage indices, best first, by queries @ docs (-1 where the score is not positive)."""
    depth = min(depth, docs.shape[1])
    out = np.full((queries.shape[0], depth), -1, dtype=np.int64)
    for begin in range(0, queries.shape[0], SCORE_BLOCK):
        scores = (queries[begin: begin + SCORE_BLOCK] @ docs).toarray()
        top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        out[begin: begin + len(scores)] = np.where(np.take_along_axis(scores, top, axis=1) > 0, top, -1)
    return out


def _encode(encode, texts: Sequence[str], desc: str, progress: bool, batch: int = 256) -> list[dict[str, float]]:
    out: list[dict[str, float]] = []
    with tqdm(total=len(texts), desc=desc, unit="text", disable=not progress) as bar:
        for begin in range(0, len(texts), batch):
            out += encode(list(texts[begin: begin + batch]))
            bar.update(min(batch, len(texts) - begin))
    return out


def pick_negatives(queries: Sequence[PseudoQuery], passages: Sequence[CorpusPassage], terms: Sequence[PassageTerms],
                   rankings: dict[str, np.ndarray], rng: random.Random, *, window: int = 10,
                   near_duplicate: float = 0.7, count: int = 1) -> list[list[tuple[int, str]]]:
    """Per query, up to `count` distinct (negative passage index, miner name), the miners taking turns (the first
    turn rotates with the query), each drawn at random from its miner's first `window` admissible candidates."""
    miners = list(rankings)
    sets = [frozenset(t.content) for t in terms]
    out: list[list[tuple[int, str]]] = []
    for q, query in enumerate(queries):
        source = query.passage
        pools = {}
        for miner in miners:
            pools[miner] = [int(c) for c in rankings[miner][q] if c >= 0 and _admissible(int(c), source, passages, sets,
                                                                                     near_duplicate)][:window]
        chosen: list[tuple[int, str]] = []
        taken: set[int] = set()
        turn = 0
        while len(chosen) < count and any(pools.values()):
            miner = miners[(q + turn) % len(miners)]
            turn += 1
            pool = [c for c in pools[miner] if c not in taken]
            pools[miner] = pool
            if pool:
                pick = rng.choice(pool)
                chosen.append((pick, miner))
                taken.add(pick)
        out.append(chosen)
    return out


def _admissible(candidate: int, source: int, passages: Sequence[CorpusPassage], sets: Sequence[frozenset],
                near_duplicate: float) -> bool:
    if passages[candidate].doc_id == passages[source].doc_id or passages[candidate].text == passages[source].text:
        return False
    a, b = sets[candidate], sets[source]
    union = len(a | b)
    return not union or len(a & b) / union < near_duplicate
