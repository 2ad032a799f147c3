"""Which backends, query encodings and ranking modes the app offers."""

from __future__ import annotations

import os

from retrieval.backends.opensearch_state import running_node_url
from retrieval.backends import BACKENDS
from retrieval.searcher import SearchMode

EMBEDDED = "embedded"
OPENSEARCH = "opensearch"
MODE_LABELS = {"sparse": "neural sparse", "rank_feature": "rank_feature", "bm25": "BM25", "hybrid": "hybrid"}
CLIENT, SERVER = "client", "server"
ENCODING_LABELS = {CLIENT: "here (ksearch)", SERVER: "in OpenSearch (ml-commons)"}
SERVER_ENCODING_NOTE = ("The query is encoded in OpenSearch by the model deployed for this index (neural_sparse with "
                        "query_text), so the ranking is the cluster's. OpenSearch returns no query vector: the tokens, "
                        "highlights and score explanations come from the same model run here on the same text.")
EMBEDDED_RANK_FEATURE_NOTE = ("On the embedded index, neural sparse and rank_feature rank identically (both are the exact "
                              "dot product of query and passage weights), so only neural sparse is offered; rank_feature "
                              "appears with the OpenSearch backend.")


def opensearch_configured(settings) -> bool:
    """True when the OpenSearch connection is set explicitly (KSEARCH_OPENSEARCH_URL or .env) or `ksearch opensearch
    start` runs a node (the settings then point at it)."""
    return ("opensearch_url" in settings.model_fields_set or bool(os.environ.get("KSEARCH_OPENSEARCH_URL"))
            or running_node_url() is not None)


def available_backends(settings) -> list[str]:
    """`embedded`, plus `opensearch` when the backend package provides it and the settings configure it."""
    backends = [EMBEDDED]
    if OPENSEARCH in BACKENDS and opensearch_configured(settings):
        backends.append(OPENSEARCH)
    return backends


def encodings_for(backend: str, meta) -> list[str]:
    """Who may encode queries for an index with metadata `meta`: the app, and OpenSearch when the index records a
    deployed query model (it was ingested with `--encoding server`)."""
    if backend == OPENSEARCH and getattr(meta, "server_encoding", None) is not None:
        return [CLIENT, SERVER]
    return [CLIENT]


def modes_for(backend: str, encoding: str = CLIENT) -> list[str]:
    """The ranking modes of a backend, as `SearchMode` values (rank_feature only where it differs from neural sparse,
    and only with a query vector encoded here)."""
    modes = [m.value for m in SearchMode]
    if backend == EMBEDDED or encoding == SERVER:
        modes = [m for m in modes if m != "rank_feature"]
    return modes


def encoding_label(encoding: str) -> str:
    """What the UI calls a query encoding."""
    return ENCODING_LABELS.get(encoding, encoding)


def mode_label(mode: str) -> str:
    """What the UI calls a mode."""
    return MODE_LABELS.get(mode, mode)
