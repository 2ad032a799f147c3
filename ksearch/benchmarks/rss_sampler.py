"""Resident memory of the ingest worker and, apart from it, of a local OpenSearch node, sampled on a thread by phase."""

from __future__ import annotations

import threading
import time

import psutil


def tree_rss_bytes(proc: psutil.Process, exclude: frozenset[int] = frozenset()) -> int:
    """RSS of `proc` and all its live children, leaving out the processes in `exclude` and their children."""
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            if child.pid in exclude or exclude & {p.pid for p in child.parents()}:
                continue
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total


class PeakSampler:
    """Samples RSS on a thread; `mark(name)` records the current value and the peak since the previous mark.

    The worker is this process and its children; with `node_pid`, that process (a local OpenSearch node this process
    started) and its children are measured on their own, never added to the worker's figure."""

    def __init__(self, interval: float = 0.05, node_pid: int | None = None) -> None:
        self.proc, self.interval = psutil.Process(), interval
        self.node = psutil.Process(node_pid) if node_pid is not None else None
        self._exclude = frozenset() if node_pid is None else frozenset({node_pid})
        self.peak = self.overall = self.node_peak = self.node_overall = 0
        self.phases: list[dict] = []
        self.start = time.perf_counter()
        self._lock, self._done = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sample()

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def _node_rss(self) -> int:
        if self.node is None:
            return 0
        try:
            return tree_rss_bytes(self.node)
        except psutil.Error:
            return 0

    def sample(self) -> tuple[int, int]:
        """Take one sample now; return (worker, node) RSS in bytes (node 0 without one)."""
        rss, node = tree_rss_bytes(self.proc, self._exclude), self._node_rss()
        with self._lock:
            self.peak, self.overall = max(self.peak, rss), max(self.overall, rss)
            self.node_peak, self.node_overall = max(self.node_peak, node), max(self.node_overall, node)
        return rss, node

    def mark(self, name: str, **fields) -> None:
        """Record the current RSS and the peak since the last mark under `name`."""
        now, node = self.sample()
        with self._lock:
            phase = {"phase": name, "seconds": time.perf_counter() - self.start, "rss_mb": now / 2**20,
                     "peak_mb": self.peak / 2**20, **fields}
            if self.node is not None:
                phase.update(node_rss_mb=node / 2**20, node_peak_mb=self.node_peak / 2**20)
            self.phases.append(phase)
            self.peak, self.node_peak = now, node

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
