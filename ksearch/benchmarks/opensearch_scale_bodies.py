"""The OpenSearch JSON of the OpenSearch scale benchmark: three minimal indexes of the same synthetic passages, the
bulk actions that fill them, and the query of each mode.

* ``rank_features``: the passage vector keyed by token (as `ksearch ingest --backend opensearch` stores it);
* ``bm25``: BM25-only, the passage's tokens joined with spaces (whitespace analyzer): the same tokens as the vector,
  each once, in vocabulary order, so its size is that of a text index of the same vocabulary, not of real prose;
* ``sparse_vector`` + SEISMIC (3.3+): the vector keyed by the token's id in the model's vocabulary (as
  `ingest --ann` stores it; ids must stay below 32,768 on 3.6).

Each index holds that one field (with ``_source``), one shard, no replica; ``_id`` is the row number.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse

FIELD = "v"  # the vector field of the rank_features and sparse_vector indexes
TEXT = "t"  # the text field of the BM25 index
KINDS = ("rank_features", "bm25", "sparse_vector")
SEISMIC_MAX_TOKEN_ID = 32768  # OpenSearch 3.6 keeps SEISMIC token ids in 16 bits


def index_body(kind: str, seismic: Mapping[str, float | int] | None = None) -> dict[str, Any]:
    """`PUT /INDEX` body of one benchmark index; `seismic`: the SEISMIC method's index parameters (sparse_vector)."""
    settings: dict[str, Any] = {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1"}
    if kind == "rank_features":
        field: dict[str, Any] = {FIELD: {"type": "rank_features"}}
    elif kind == "bm25":
        field = {TEXT: {"type": "text", "analyzer": "whitespace"}}
    elif kind == "sparse_vector":
        settings["sparse"] = True
        method: dict[str, Any] = {"name": "seismic"}
        if seismic:
            method["parameters"] = dict(seismic)
        field = {FIELD: {"type": "sparse_vector", "method": method}}
    else:
        raise ValueError(f"unknown benchmark index kind {kind!r} (expected one of {', '.join(KINDS)})")
    return {"settings": {"index": settings}, "mappings": {"dynamic": "strict", "properties": field}}


def token_ids(features: Sequence[str], vocabulary: Sequence[str]) -> np.ndarray:
    """Each feature column's id in the model's vocabulary (ValueError naming a feature the vocabulary lacks, or an id
    SEISMIC cannot hold)."""
    ids = {token: i for i, token in enumerate(vocabulary)}
    missing = [f for f in features if f not in ids]
    if missing:
        raise ValueError(f"{len(missing)} feature(s) of the sampled index are not in the model's vocabulary, e.g. "
                         f"{missing[0]!r}: sample the index built with the same model")
    out = np.array([ids[f] for f in features], dtype=np.int64)
    if out.size and out.max() >= SEISMIC_MAX_TOKEN_ID:
        raise ValueError(f"token id {int(out.max())} >= {SEISMIC_MAX_TOKEN_ID}: SEISMIC on OpenSearch 3.6 cannot hold "
                         "it without folding ids (the vocabulary is too large for sparse_vector)")
    return out


def actions(kind: str, index: str, csr: sparse.csr_matrix, keys: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Bulk `index` actions for every row of `csr`; `keys[c]` names column c (a token, or a token id as text)."""
    names = np.asarray(keys, dtype=object)
    indptr, indices, data = csr.indptr, csr.indices, csr.data
    for row in range(csr.shape[0]):
        s, e = indptr[row], indptr[row + 1]
        cols = names[indices[s:e]].tolist()
        if kind == "bm25":
            source: dict[str, Any] = {TEXT: " ".join(cols)}
        else:
            source = {FIELD: dict(zip(cols, data[s:e].astype(float).tolist()))}
        yield {"_index": index, "_id": str(row), "_source": source}


def exact_query(tokens: Mapping[str, float], k: int) -> dict[str, Any]:
    """`neural_sparse` with `query_tokens` on the rank_features field: the exact dot product (Lucene's feature
    queries, 9-bit document weights)."""
    return {"size": k, "_source": False, "query": {"neural_sparse": {FIELD: {"query_tokens": dict(tokens)}}}}


def seismic_query(tokens: Mapping[str, float], k: int, method: Mapping[str, float | int]) -> dict[str, Any]:
    """`neural_sparse` on the sparse_vector field with SEISMIC `method_parameters` (`top_n`, `heap_factor`, `k`)."""
    params = {"k": k, **method}
    return {"size": k, "_source": False,
            "query": {"neural_sparse": {FIELD: {"query_tokens": dict(tokens), "method_parameters": params}}}}


def bm25_query(tokens: Sequence[str], k: int) -> dict[str, Any]:
    """A BM25 `match` of the query's tokens on the text index."""
    return {"size": k, "_source": False, "query": {"match": {TEXT: " ".join(tokens)}}}


def two_phase_pipeline(prune_ratio: float, expansion_rate: float, max_window_size: int = 10_000) -> dict[str, Any]:
    """Search pipeline body with `neural_sparse_two_phase_processor` (2.15+): the query's top tokens (weight >=
    `prune_ratio` x the largest) score `size x expansion_rate` candidates, which the rest then rescore."""
    return {"request_processors": [{"neural_sparse_two_phase_processor": {
        "enabled": True, "two_phase_parameter": {"prune_ratio": prune_ratio, "expansion_rate": expansion_rate,
                                                 "max_window_size": max_window_size}}}]}
