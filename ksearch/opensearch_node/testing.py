"""Helpers for tests and benchmarks that need a node (or a cluster) of their own beside the shared one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ksearch.opensearch_node.node import LocalOpenSearch

if TYPE_CHECKING:
    from ksearch.opensearch_node.cluster import LocalCluster


def node_sharing_installation(cache_dir: Path, *, quiet: bool = True, ml: bool = False,
                              version: str | None = None) -> LocalOpenSearch:
    """A `LocalOpenSearch` with its own config, data, logs and port under `cache_dir`, whose home links to the
    default cache's assembled installation of `version` (default: the default version; assembled first if needed),
    so stopping it never touches that cache's node; `ml`: the installation with ml-commons."""
    home = LocalOpenSearch(quiet=True, ml=ml, version=version).ensure_installed()
    cache_dir.mkdir(parents=True, exist_ok=True)
    node = LocalOpenSearch(cache_dir=cache_dir, quiet=quiet, ml=ml, version=version)
    if not node.home.exists():
        os.symlink(home, node.home, target_is_directory=True)
    return node


def cluster_sharing_installation(cache_dir: Path, nodes: int = 3, *, quiet: bool = True,
                                 version: str | None = None) -> "LocalCluster":
    """A `LocalCluster` of `nodes` under `cache_dir` (own members, data, logs and ports) whose installation links to
    the default cache's assembled one of `version` (assembled first if needed), so stopping it touches nothing else."""
    from ksearch.opensearch_node.cluster import LocalCluster

    home = LocalOpenSearch(quiet=True, version=version).ensure_installed()
    cache_dir.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(nodes, cache_dir, quiet=quiet, version=version)
    if not cluster.installation.home.exists():
        os.symlink(home, cluster.installation.home, target_is_directory=True)
    return cluster
