"""Latency percentiles and a fixed-size thread pool driver for query benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99, mean and count of a list of milliseconds."""
    if not values_ms:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "n": 0}
    a = np.asarray(values_ms, dtype=float)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(a.mean()), "n": int(a.size)}


def run_concurrent(task: Callable[[int], object], count: int, clients: int) -> float:
    """Run task(0..count-1) on `clients` threads; return the wall seconds."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(task, range(count)))
    return time.perf_counter() - start
