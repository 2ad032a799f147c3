"""Timing and peak-memory measurement for one benchmark variant."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


@dataclass
class Measurement:
    seconds: float
    peak_rss_mb: float  # highest RSS seen while running, in MiB
    peak_extra_mb: float  # highest RSS above what the process held before it started


def measure(fn: Callable[[], object], interval: float = 0.005) -> tuple[object, Measurement]:
    """Run fn once, sampling RSS on a thread; return its result and the measurement."""
    start_rss = peak = rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes())
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        result = fn()
    finally:
        elapsed = time.perf_counter() - t0
        done.set()
        sampler.join()
    peak = max(peak, rss_bytes())
    return result, Measurement(elapsed, peak / 2**20, (peak - start_rss) / 2**20)
