"""A second, private OpenSearch node for fault tests: it shares the assembled installation of the session's node
(a symlink) but has its own config, data, logs and port, so stopping it never touches the shared node."""

from __future__ import annotations

from pathlib import Path

from ksearch.opensearch_node import free_port, node_sharing_installation

__all__ = ["free_port", "private_node"]


def private_node(cache_dir: Path):  # -> ksearch.opensearch_node.LocalOpenSearch
    """A `LocalOpenSearch` under `cache_dir` whose home links to the default node's assembled home."""
    return node_sharing_installation(cache_dir)
