"""Glue for the `ksearch bench` commands: the local OpenSearch node, result files, summary tables."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.table import Table

from retrieval.backends.opensearch_connection import OpenSearchConnection


def bench_node():  # -> ksearch.opensearch_node.LocalOpenSearch
    """The benchmarks' own local node: the default node's installation with its own config, data and port, so
    tests that stop the shared node never stop a running benchmark."""
    from ksearch.opensearch_node import default_cache_dir, node_sharing_installation

    return node_sharing_installation(default_cache_dir().with_name("opensearch-bench"))


@contextmanager
def bench_opensearch(start: bool) -> Iterator[OpenSearchConnection | None]:
    """The connection to the benchmarks' local node (None when `start` is False), for the benchmark to pass to the
    backend; a node started here is stopped on exit."""
    if not start:
        yield None
        return
    node = bench_node()
    already_running = node.status()
    url = already_running or node.start()
    try:
        yield OpenSearchConnection(url=url)
    finally:
        if not already_running:
            node.stop()


def write_json(result: dict, out: Path) -> Path:
    """Write a results document (with the 1/5/15-minute load averages when it was written: other work on the machine)."""
    result.setdefault("load_average_at_end", [round(x, 2) for x in os.getloadavg()])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return out


def query_table(result: dict) -> Table:
    """Medians and percentiles of every backend and mode."""
    table = Table(title=f"query: {result['model']} | {result['queries']} queries | {result['hardware']}")
    for col in ("backend", "mode", "encode p50", "search p50", "total p50", "p90", "p99", "QPS", f"p50 x{result['clients']}",
                f"QPS x{result['clients']}"):
        table.add_column(col, justify="left" if col in ("backend", "mode") else "right")
    for backend, b in result["backends"].items():
        for mode, r in b["modes"].items():
            s, c = r["single"], r["concurrent"]
            table.add_row(backend, mode, *(f"{v:.2f}" for v in (s["encode_ms"]["p50"], s["search_ms"]["p50"], s["total_ms"]["p50"],
                                                                 s["total_ms"]["p90"], s["total_ms"]["p99"])),
                          f"{s['qps']:.1f}", f"{c['total_ms']['p50']:.2f}", f"{c['qps']:.1f}")
    return table


def ingest_table(result: dict) -> Table:
    """Passages/s per backend and the ratio to pure encoding."""
    table = Table(title=f"ingest: {result['passages']} passages | pure encoding "
                        f"{result['pure_encoding']['passages_per_s']:.1f}/s | {result['hardware']}")
    for col in ("backend", "passages/s", "ratio", "whole call /s", "ratio", "target"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for backend, r in result["backends"].items():
        table.add_row(backend, f"{r['passages_per_s']:.1f}", f"{r['ratio_to_pure_encoding']:.2f}", f"{r['wall_passages_per_s']:.1f}",
                      f"{r['wall_ratio_to_pure_encoding']:.2f}", "met" if r["meets_target"] else "not met")
    return table


def scale_table(result: dict) -> Table:
    """Latency, memory and recall per corpus size: exact, and the approximate kernel on the bare matrix."""
    table = Table(title=f"scale: {result['queries']} queries | approximate: {result['approximate']} | {result['hardware']}")
    for col in ("passages", "CSR MiB", "exact index p50", "exact index p99", "full-matrix p50", "approx p50",
                "approx p99", "approx CPU p50", "approx recall@10"):
        table.add_column(col, justify="right")
    for r in result["sizes"]:
        a = r.get("impact")
        cells = ([f"{a['latency_ms']['p50']:.2f}", f"{a['latency_ms']['p99']:.2f}", f"{a['latency_ms']['cpu_p50']:.2f}",
                  f"{a['recall_at_10']:.3f}"] if a else ["-"] * 4)
        table.add_row(f"{r['passages']:,}", f"{r['csr_mb']:.0f}", f"{r['exact_index_ms']['p50']:.2f}",
                      f"{r['exact_index_ms']['p99']:.2f}", f"{r['exact_full_matrix_ms']['p50']:.2f}", *cells)
    return table


def scale_index_table(result: dict) -> Table | None:
    """Per size, through a real embedded index: the ingest's build, searches that build nothing, where time goes."""
    rows = [r for r in result["sizes"] if r.get("index")]
    if not rows:
        return None
    table = Table(title="scale through EmbeddedIndex: approximate index built at the end of the ingest, searched by a "
                        "new reader (ms; CPU = the searching thread's)")
    for col in ("passages", "write s", "finish_writes s", "build s", "builds in searches", "files changed",
                "first search ms", "p50", "CPU p50", "p99", "kernel p50", "kernel CPU p50", "exact p50", "recall@10"):
        table.add_column(col, justify="right")
    for r in rows:
        i = r["index"]
        kernel = i.get("kernel_ms") or {"p50": float("nan"), "cpu_p50": float("nan")}
        table.add_row(f"{r['passages']:,}", f"{i['write_seconds']:.1f}", f"{i['finish_writes_seconds']:.1f}",
                      f"{i['build_seconds_at_ingest'] or 0:.1f}", str(i["builds_during_searches"]),
                      str(i["index_files_changed_by_searches"]), f"{i['first_search_ms']:.1f}",
                      f"{i['latency_ms']['p50']:.2f}", f"{i['latency_ms']['cpu_p50']:.2f}",
                      f"{i['latency_ms']['p99']:.2f}", f"{kernel['p50']:.2f}", f"{kernel['cpu_p50']:.2f}",
                      f"{i['exact_latency_ms']['p50']:.2f}", f"{i['recall_at_10']:.3f}")
    return table


def opensearch_scale_table(result: dict) -> Table:
    """Per node, index and query mode: load rate, size, latency and recall at the OpenSearch scale run's size."""
    table = Table(title=f"OpenSearch scale: {result['passages']:,} passages | {result['queries']} queries | "
                        f"target p50 <= {result['target']['p50_ms']:g} ms at recall@10 >= "
                        f"{result['target']['recall_at_10']}")
    for col in ("node", "index", "passages/s", "bytes/passage", "peak RSS MiB", "mode", "settings", "merged", "p50",
                "p99", "recall@10"):
        table.add_column(col, justify="left" if col in ("node", "index", "mode", "settings") else "right")
    for n in result["nodes"]:
        for r in n["indexes"]:
            for m in r["modes"]:
                recall = m.get("recall_at_10")
                table.add_row(f"{n['version']} ({n['heap_setting'] or '?'})", r["kind"], f"{r['load']['passages_per_s']:.0f}",
                              f"{r['store']['bytes_per_passage']:.0f}",
                              "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}", m["mode"],
                              " ".join(f"{k}={v}" for k, v in {**m.get("index_settings", {}), **m["settings"]}.items()),
                              "yes" if m["merged"] else "no",
                              f"{m['latency_ms']['p50']:.2f}", f"{m['latency_ms']['p99']:.2f}",
                              "-" if recall is None else f"{recall:.3f}")
    return table
