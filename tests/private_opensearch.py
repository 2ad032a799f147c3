"""A second, private OpenSearch node for fault tests: it shares the assembled installation of the session's node
(a symlink) but has its own config, data, logs and port, so stopping it never touches the shared node."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_node(cache_dir: Path):  # -> ksearch.opensearch_node.LocalOpenSearch
    """A `LocalOpenSearch` under `cache_dir` whose home links to the default node's assembled home."""
    from ksearch.opensearch_node import LocalOpenSearch

    shared = LocalOpenSearch(quiet=True)
    home = shared.ensure_installed()
    cache_dir.mkdir(parents=True, exist_ok=True)
    node = LocalOpenSearch(cache_dir=cache_dir, quiet=True)
    if not node.home.exists():
        os.symlink(home, node.home, target_is_directory=True)
    return node
