"""`ksearch bench cluster-start`: what a local N-node cluster (`ksearch opensearch start --nodes N`) costs: the
seconds from launch to all nodes joined at yellow/green, and each node's resident memory (RSS) and heap
(`_nodes/stats/jvm`) `settle_s` seconds after that, for every OpenSearch version ksearch assembles.

Each cluster is private (own folders and ports; the installation of `ksearch opensearch install [--version X]`),
started once on fresh data folders and stopped afterwards.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

from ksearch.benchmarks.node_start import _rss_mb


def _jvm_by_name(url: str) -> dict[str, dict]:
    with urllib.request.urlopen(url + "/_nodes/stats/jvm", timeout=30) as resp:
        nodes = json.load(resp)["nodes"]
    return {n["name"]: n["jvm"]["mem"] for n in nodes.values()}


def one_cluster(version: str, nodes: int, settle_s: float) -> dict:
    """Start a private cluster of `nodes` of `version`; its start seconds and each node's RSS and heap."""
    from ksearch.opensearch_node import cluster_sharing_installation

    with tempfile.TemporaryDirectory(prefix="ksearch-bench-cluster-") as tmp:
        cluster = cluster_sharing_installation(Path(tmp), nodes, version=version)
        began = time.perf_counter()
        urls = cluster.start()
        seconds = time.perf_counter() - began
        try:
            time.sleep(settle_s)
            jvm = _jvm_by_name(urls.split(",")[0])
            members = {}
            for name in cluster.names:
                mem = jvm[name]
                members[name] = {"rss_mb": _rss_mb(cluster.pid(name)), "heap_used_mb": mem["heap_used_in_bytes"] / 2**20,
                                 "heap_max_mb": mem["heap_max_in_bytes"] / 2**20,
                                 "heap_percent": mem["heap_used_percent"]}
            return {"start_s": seconds, "nodes": members,
                    "rss_total_mb": sum(m["rss_mb"] for m in members.values())}
        finally:
            cluster.stop()
            shutil.rmtree(tmp, ignore_errors=True)


def run_cluster_start_bench(nodes: int = 3, settle_s: float = 10.0, versions: list[str] | None = None) -> dict:
    """Start time, per-node RSS and heap of an N-node cluster of each version (default: every pinned release)."""
    from ksearch.opensearch_node import RELEASES, LocalOpenSearch, get_release

    chosen = [get_release(v).version for v in versions] if versions else list(RELEASES)
    for version in chosen:
        LocalOpenSearch(quiet=True, version=version).ensure_installed()
    load_start = os.getloadavg()[0]
    rows = {version: one_cluster(version, nodes, settle_s) for version in chosen}
    return {"nodes": nodes, "settle_s": settle_s, "heap": LocalOpenSearch(quiet=True).heap, "rows": rows,
            "hardware": f"{platform.machine()}, {os.cpu_count()} CPUs", "load_average_at_start": load_start}
