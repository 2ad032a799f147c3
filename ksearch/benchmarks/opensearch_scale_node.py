"""The node of the OpenSearch scale benchmark and what is measured on it besides latency: bulk loading, store size,
segments, force-merge, heap and the node process's peak resident memory.

A node the benchmark starts (`scale_node`) has its own folder beside the default cache (its own data, port and
heap), so tests that stop the shared node never stop it; with ``$KSEARCH_OPENSEARCH_URL`` that node is used as it
is (its heap is read from the node; its peak RSS is unknown unless it runs on this machine under the same pid file).
Peak RSS is the kernel's high-water mark (``VmHWM``), reset before each configuration (``clear_refs`` 5)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ksearch.benchmarks.opensearch_scale_bodies import actions, index_body

CHUNK_SIZE = 2_000  # passages per bulk request (~70 weights each: ~2-3 MB of JSON)
MAX_CHUNK_BYTES = 20 * 2**20
BULK_THREADS = 2  # parallel_bulk threads: one serialises while the node indexes the other's chunk


@dataclass
class NodeInfo:
    """The node a run measured: version, URL, heap and the JVM's pid when it runs here (for its RSS)."""

    version: str
    url: str
    heap_setting: str | None
    heap_max_mb: float
    pid: int | None
    started_here: bool


def _proc_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss(pid: int | None) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS; False when that is not possible."""
    if pid is None:
        return False
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb(pid: int | None) -> float | None:
    """The process's peak RSS since start or the last reset, in MiB (None when unknown)."""
    kb = _proc_kb(pid, "VmHWM") if pid is not None else None
    return kb / 1024 if kb is not None else None


def rss_mb(pid: int | None) -> float | None:
    """The process's RSS now, in MiB."""
    kb = _proc_kb(pid, "VmRSS") if pid is not None else None
    return kb / 1024 if kb is not None else None


def heap_max_mb(client) -> float:
    """The (single) node's JVM maximum heap, in MiB."""
    nodes = client.nodes.stats(metric="jvm")["nodes"]
    return next(iter(nodes.values()))["jvm"]["mem"]["heap_max_in_bytes"] / 2**20


@contextmanager
def scale_node(version: str, heap: str, url: str | None = None) -> Iterator[tuple[Any, NodeInfo]]:
    """A client and the facts of the node to measure: the one at `url`, else a node of `version` with `heap` started
    here (and stopped on exit)."""
    from ksearch.opensearch_node import default_cache_dir, node_sharing_installation
    from retrieval.backends.opensearch_connection import OpenSearchConnection
    from retrieval.backends.opensearch_state import read_state

    node = None
    if url is None:
        cache = default_cache_dir()  # a sibling named after it: another cache dir's bench node is another folder
        node = node_sharing_installation(cache.with_name(f"{cache.name}-bench-scale-{version}"), version=version)
        node.heap = heap
        if node.status():
            node.stop()  # an earlier run's node may have another heap: start this run's own
        url = node.start(timeout=300)
    try:
        client = OpenSearchConnection(url=url, timeout=600).client()
        running = client.info()["version"]["number"]
        pid = int((read_state(node.state_file) or {})["pid"]) if node is not None else None
        yield client, NodeInfo(running, url, heap if node is not None else None, heap_max_mb(client), pid,
                               node is not None)
    finally:
        if node is not None:
            node.stop()


def load(client, kind: str, index: str, csr, keys, seismic: dict | None = None) -> dict[str, Any]:
    """Create `index` (refresh off, no replica), bulk-load every row of `csr`, refresh; seconds and passages/s."""
    from opensearchpy.helpers import parallel_bulk

    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(index=index, body=index_body(kind, seismic))
    t0 = time.perf_counter()
    failed = 0
    for ok, item in parallel_bulk(client, actions(kind, index, csr, keys), thread_count=BULK_THREADS,
                                  chunk_size=CHUNK_SIZE, max_chunk_bytes=MAX_CHUNK_BYTES, raise_on_error=False,
                                  queue_size=BULK_THREADS * 2, request_timeout=600):
        if not ok:
            failed += 1
            if failed == 1:
                first_error = item
    bulk_s = time.perf_counter() - t0
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": "1s"}})
    client.indices.refresh(index=index, request_timeout=600)
    seconds = time.perf_counter() - t0
    if failed:
        raise RuntimeError(f"bulk load of {index!r}: {failed} passage(s) refused, first: {first_error}")
    count = client.count(index=index)["count"]
    if count != csr.shape[0]:
        raise RuntimeError(f"bulk load of {index!r}: {count} passages searchable, {csr.shape[0]} sent")
    return {"bulk_seconds": bulk_s, "seconds": seconds, "passages_per_s": csr.shape[0] / seconds,
            "chunk_size": CHUNK_SIZE, "bulk_threads": BULK_THREADS}


def store(client, index: str) -> dict[str, Any]:
    """Store size (primaries, after a flush), segment count and bytes per passage of `index`; `segment_bytes`: the
    live segments' own sizes (`_segments`), which leave out files of merged-away segments not yet deleted."""
    client.indices.flush(index=index, request_timeout=600)
    stats = client.indices.stats(index=index, metric="store,docs,segments")["indices"][index]["primaries"]
    size, docs = stats["store"]["size_in_bytes"], stats["docs"]["count"]
    shards = client.indices.segments(index=index)["indices"][index]["shards"].values()
    live = sum(seg["size_in_bytes"] for copies in shards for c in copies if c["routing"]["primary"]
               for seg in c["segments"].values())
    return {"store_bytes": size, "bytes_per_passage": size / max(docs, 1), "segments": stats["segments"]["count"],
            "segment_bytes": live, "segment_bytes_per_passage": live / max(docs, 1)}


def force_merge(client, index: str) -> float:
    """Force-merge `index` to one segment; the seconds it took."""
    t0 = time.perf_counter()
    client.indices.forcemerge(index=index, max_num_segments=1, request_timeout=3600)
    client.indices.refresh(index=index, request_timeout=600)
    return time.perf_counter() - t0


def opensearch_url_from_env() -> str | None:
    """``$KSEARCH_OPENSEARCH_URL`` when set (a node someone else runs)."""
    return os.environ.get("KSEARCH_OPENSEARCH_URL") or None
