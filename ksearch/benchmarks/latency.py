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


def timed_calls(fn: Callable[[object], object], items: Sequence[object], warmup: int = 3) -> tuple[dict, list]:
    """Latency percentiles of fn over `items` (after `warmup` calls) and each call's result.

    Wall-clock milliseconds; `cpu_p50`/`cpu_p99` are the calling thread's CPU milliseconds, which leave out the
    time other processes held the CPU (on a shared machine the two differ)."""
    for item in items[:warmup]:
        fn(item)
    times, cpu, results = [], [], []
    for item in items:
        t0, c0 = time.perf_counter(), time.thread_time()
        results.append(fn(item))
        cpu.append((time.thread_time() - c0) * 1000)
        times.append((time.perf_counter() - t0) * 1000)
    p50, p99 = np.percentile(cpu, [50, 99]) if cpu else (0.0, 0.0)
    return {**percentiles(times), "cpu_p50": float(p50), "cpu_p99": float(p99)}, results
