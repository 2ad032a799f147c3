"""Which backends and ranking modes the app offers."""

from __future__ import annotations

import os

from retrieval.backends.opensearch_state import running_node_url
from retrieval.backends import BACKENDS
from retrieval.searcher import SearchMode

EMBEDDED = "embedded"
OPENSEARCH = "opensearch"
MODE_LABELS = {"sparse": "neural sparse", "rank_feature": "rank_feature", "bm25": "BM25", "hybrid": "hybrid"}
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


def modes_for(backend: str) -> list[str]:
    """The ranking modes of a backend, as `SearchMode` values (rank_feature only where it differs from neural sparse)."""
    modes = [m.value for m in SearchMode]
    if backend == EMBEDDED:
        modes = [m for m in modes if m != "rank_feature"]
    return modes


def mode_label(mode: str) -> str:
    """What the UI calls a mode."""
    return MODE_LABELS.get(mode, mode)
