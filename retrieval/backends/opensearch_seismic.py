"""OpenSearch 3.3+'s approximate sparse index: a `sparse_vector` field with the SEISMIC method (`--ann`).

A `sparse_vector` wants non-negative integer keys, so an index built this way stores each token as its id in the
model's vocabulary (`SeismicTokens`: the vocabulary travels in the mapping's ``_meta.sparse``, checked against the
index's vocabulary hash, so ids map back to tokens for explanations and highlighting without the model). OpenSearch
3.6 keeps token ids as 16-bit numbers in the SEISMIC structures (a document holding id 40000 makes every
approximate search of its segment fail with an array index of -25536), so vocabularies above 32,768 tokens are
refused. Segments below ``approximate_threshold`` documents are searched exactly; the approximate search takes
``method_parameters`` (`k`, `top_n`, `heap_factor`, and the domain as its `filter`). Weights are quantised to 8
bits (scores are close to, not equal to, the exact dot product); `rank_feature` queries do not apply to this field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from retrieval.errors import IndexFormatError, RetrievalError
from retrieval.query import DOMAIN_FIELD, SPARSE_FIELD, prepare_query_tokens

MAX_TOKEN_IDS = 32768
INDEX_PARAMETERS = ("n_postings", "cluster_ratio", "summary_prune_ratio", "approximate_threshold",
                    "quantization_ceiling_search", "quantization_ceiling_ingest")
SEARCH_PARAMETERS = ("top_n", "heap_factor", "k")
PER_DOCUMENT_K_FACTOR = 4  # collapsed searches ask SEISMIC for this many passages per wanted document
# heap_factor when --ann-param gives none (OpenSearch's own is 1.0). Measured with `ksearch bench scale --opensearch
# --opensearch-passages 100000` (bench/results/opensearch-scale.json, docs/benchmarks.md "OpenSearch at scale"):
# with n_postings at 1, 2 and 5 % of the passages, recall@10 was 0.70-0.86 at 1.0 and 0.945-0.984 at 2.0 (top_n 10
# -> 40 added 0.03-0.04, k 50/100 nothing), at about 1.3-2x the latency of 1.0; only segments of at least
# approximate_threshold documents are searched approximately, so smaller corpora are not affected.
DEFAULT_SEARCH_PARAMETERS: dict[str, float | int] = {"heap_factor": 2.0}


def _vocab_hash(vocabulary: Sequence[str]) -> str:
    # as SparseEncoder.vocab_hash: the index's IndexMeta.vocab_hash must match the vocabulary stored with it
    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()[:16]


def parse_parameters(pairs: Sequence[str]) -> dict[str, float | int]:
    """`KEY=VALUE` options (`--ann-param`) as SEISMIC index or search parameters; ValueError naming a bad one."""
    out: dict[str, float | int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in INDEX_PARAMETERS + SEARCH_PARAMETERS:
            raise ValueError(f"--ann-param {pair!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(INDEX_PARAMETERS + SEARCH_PARAMETERS)}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--ann-param {pair!r}: {value!r} is not a number") from None
        out[key] = int(number) if key in ("n_postings", "approximate_threshold", "top_n", "k") else number
    return out


class SeismicTokens:
    """Token <-> id of one index's vocabulary, and the SEISMIC index and search parameters it was built with."""

    def __init__(self, vocabulary: Sequence[str], parameters: Mapping[str, float | int] | None = None) -> None:
        """`vocabulary`: the model's feature names by id; `parameters`: SEISMIC index and search parameters."""
        if len(vocabulary) > MAX_TOKEN_IDS:
            raise RetrievalError(
                f"--ann (sparse_vector + SEISMIC) keeps token ids below {MAX_TOKEN_IDS} on OpenSearch 3.x, but this "
                f"model's vocabulary has {len(vocabulary)} tokens: ingest without --ann (rank_features)")
        self.vocabulary = list(vocabulary)
        self.ids = {token: i for i, token in enumerate(self.vocabulary)}
        params = dict(parameters or {})
        unknown = sorted(set(params) - set(INDEX_PARAMETERS + SEARCH_PARAMETERS))
        if unknown:
            raise ValueError(f"unknown SEISMIC parameter(s) {', '.join(unknown)}")
        self.index_parameters = {k: v for k, v in params.items() if k in INDEX_PARAMETERS}
        self.search_parameters = {k: v for k, v in params.items() if k in SEARCH_PARAMETERS}

    # ---- the index

    def apply(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` (`opensearch_mapping.index_body`) with the sparse field as `sparse_vector` + SEISMIC, the
        `index.sparse` setting and the vocabulary in ``_meta.sparse``."""
        body["settings"]["index"]["sparse"] = True
        method: dict[str, Any] = {"name": "seismic"}
        if self.index_parameters:
            method["parameters"] = dict(self.index_parameters)
        body["mappings"]["properties"][SPARSE_FIELD] = {"type": "sparse_vector", "method": method}
        body["mappings"]["_meta"]["sparse"] = {"field_type": "sparse_vector", "method": method,
                                               "search_parameters": dict(self.search_parameters),
                                               "vocabulary": self.vocabulary}
        return body

    @classmethod
    def from_meta(cls, meta_block: Mapping[str, Any], vocab_hash: str, index: str) -> "SeismicTokens | None":
        """The tokens of an index whose ``_meta`` says it is a SEISMIC index, None for a rank_features one."""
        sparse = meta_block.get("sparse")
        if not sparse:
            return None
        vocabulary = sparse.get("vocabulary") or []
        if _vocab_hash(vocabulary) != vocab_hash:
            raise IndexFormatError(f"OpenSearch index {index!r}: the vocabulary in its _meta.sparse does not match its "
                                   f"vocabulary hash {vocab_hash}: it was not written by `ksearch ingest --ann`")
        params = {**(sparse.get("method") or {}).get("parameters", {}), **sparse.get("search_parameters", {})}
        return cls(vocabulary, params)

    # ---- vectors

    def to_ids(self, vector: Mapping[str, float]) -> dict[str, float]:
        """A passage vector keyed by token id (as the `sparse_vector` field wants); KeyError for a foreign token."""
        return {str(self.ids[token]): weight for token, weight in vector.items()}

    def to_tokens(self, vector: Mapping[str, Any]) -> dict[str, float]:
        """A stored vector (keys: token ids) keyed by token again."""
        return {self.vocabulary[int(i)]: float(w) for i, w in vector.items()}

    # ---- queries

    def query_body(self, tokens: Mapping[str, float], *, size: int, offset: int = 0, per_document: bool = False,
                   domain: str | None = None) -> dict[str, Any] | None:
        """`neural_sparse` on the `sparse_vector` field with id keys and ``method_parameters`` (the domain as the
        approximate search's own `filter`, so k results come from that domain); None when no query token is in
        the vocabulary."""
        prepared = prepare_query_tokens(tokens)
        query_ids = {str(self.ids[t]): w for t, w in prepared.items() if t in self.ids}
        if not query_ids:
            return None
        wanted = (size + offset) * (PER_DOCUMENT_K_FACTOR if per_document else 1)
        method = {"k": max(wanted, 1), **DEFAULT_SEARCH_PARAMETERS, **self.search_parameters}
        if "k" in self.search_parameters:
            method["k"] = max(int(self.search_parameters["k"]), wanted)
        if domain is not None:
            method["filter"] = {"term": {DOMAIN_FIELD: domain}}
        clause = {"neural_sparse": {SPARSE_FIELD: {"query_tokens": query_ids, "method_parameters": method}}}
        return {"size": size, "query": clause}
