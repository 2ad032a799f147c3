"""`ksearch bench node-start`: what each local node flavor costs: start time and memory of every OpenSearch version
ksearch assembles (2.19.1, 3.6.0), and of 2.19.1 with ml-commons (`--ml`).

Each flavor runs as a private node (own config, data and port; the installations of `ksearch opensearch install
[--version X]` and `install --ml`), started `repeats` times on a fresh data folder: the median seconds from launch
to a yellow/green cluster, and the node's resident memory (RSS) and heap use `settle_s` seconds after that.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _heap_percent(url: str) -> int:
    with urllib.request.urlopen(url + "/_nodes/stats/jvm", timeout=30) as resp:
        nodes = json.load(resp)["nodes"]
    return next(iter(nodes.values()))["jvm"]["mem"]["heap_used_percent"]


def _one_start(version: str, ml: bool, settle_s: float) -> dict:
    from ksearch.opensearch_node import node_sharing_installation

    with tempfile.TemporaryDirectory(prefix="ksearch-bench-node-") as tmp:
        node = node_sharing_installation(Path(tmp), ml=ml, version=version)
        began = time.perf_counter()
        url = node.start()
        seconds = time.perf_counter() - began
        try:
            time.sleep(settle_s)
            pid = int(json.loads(node.state_file.read_text())["pid"])
            return {"start_s": seconds, "rss_mb": _rss_mb(pid), "heap_percent": _heap_percent(url),
                    "java_home": json.loads(node.state_file.read_text())["java_home"]}
        finally:
            node.stop()
            shutil.rmtree(tmp, ignore_errors=True)


def flavors(versions: list[str] | None = None, ml: bool = True) -> dict[str, tuple[str, bool]]:
    """Row name -> (version, ml) for `versions` (default: every pinned release) and, with `ml`, the ml-commons
    flavor of the release it is assembled for."""
    from ksearch.opensearch_node import RELEASES, get_release
    from ksearch.opensearch_node.ml_commons import ML_RELEASE

    out = {v: (v, False) for v in (get_release(v).version for v in versions)} if versions else \
        {v: (v, False) for v in RELEASES}
    if ml:
        out[f"{ML_RELEASE.version} --ml"] = (ML_RELEASE.version, True)
    return out


def run_node_start_bench(repeats: int = 3, settle_s: float = 10.0, versions: list[str] | None = None,
                         ml: bool = True) -> dict:
    """Median start seconds, RSS and heap use of each flavor (`flavors`; alternating runs, so all see the same load
    on the machine)."""
    from ksearch.opensearch_node import LocalOpenSearch

    chosen = flavors(versions, ml)
    for version, with_ml in chosen.values():
        LocalOpenSearch(quiet=True, ml=with_ml, version=version).ensure_installed()
    runs: dict[str, list[dict]] = {name: [] for name in chosen}
    load_start = os.getloadavg()[0]
    for _ in range(repeats):
        for name, (version, with_ml) in chosen.items():
            runs[name].append(_one_start(version, with_ml, settle_s))
    rows = {name: {key: statistics.median(r[key] for r in rs) for key in ("start_s", "rss_mb", "heap_percent")}
            | {"java_home": rs[0]["java_home"], "runs": rs} for name, rs in runs.items()}
    return {"repeats": repeats, "settle_s": settle_s, "heap": LocalOpenSearch(quiet=True).heap, "rows": rows,
            "hardware": f"{platform.machine()}, {os.cpu_count()} CPUs", "load_average_at_start": load_start}
