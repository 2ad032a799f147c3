"""OpenSearch at scale: N synthetic passages (shaped like the shipped model's vectors, `synthetic.py`) bulk-loaded
into a local node, then measured side by side (`ksearch bench scale --opensearch`):

* indexing throughput (passages/s, `parallel_bulk`, refresh off during the load) and store size per passage of a
  rank_features index, a BM25-only index of the same tokens and a sparse_vector (SEISMIC) index;
* query p50/p99 (wall time at the client, one query at a time) and recall@10 against exact scoring in Python
  (`exact_scoring.index_top_k`) for `neural_sparse` exact, the two-phase search pipeline and SEISMIC at a few
  search settings, before and after a force-merge to one segment;
* the node's heap setting and the JVM's peak RSS per index (load, merge and its queries).

Which index goes to which node (`plan`): a 2.x node gets BM25 and rank_features, a 3.x node SEISMIC (and the other
two as well when it is the only node measured)."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ksearch.benchmarks import opensearch_scale_bodies as bodies
from ksearch.benchmarks import opensearch_scale_node as osnode
from ksearch.benchmarks.exact_scoring import index_top_k
from ksearch.benchmarks.latency import percentiles
from ksearch.benchmarks.synthetic import synthetic_matrix

Query = tuple[np.ndarray, np.ndarray]
TWO_PHASE_SETTINGS = ({"prune_ratio": 0.4, "expansion_rate": 5.0}, {"prune_ratio": 0.6, "expansion_rate": 2.0})
SEISMIC_SEARCH_SETTINGS = ({"top_n": 10, "heap_factor": 1.0}, {"top_n": 20, "heap_factor": 1.0},
                           {"top_n": 30, "heap_factor": 1.0}, {"top_n": 30, "heap_factor": 1.5, "k": 50})
TARGET_P50_MS, TARGET_RECALL = 10.0, 0.95
WARMUP = 5


def plan(versions: Sequence[str]) -> dict[str, list[str]]:
    """The indexes each version's node gets: 2.x BM25 + rank_features, 3.x SEISMIC (all three when alone)."""
    majors = {v.split(".")[0] for v in versions}
    out = {}
    for v in versions:
        if v.startswith("2."):
            out[v] = ["bm25", "rank_features"]
        else:
            out[v] = ["sparse_vector"] if "2" in majors else ["bm25", "rank_features", "sparse_vector"]
    return out


def time_search(client, index: str, requests: Sequence[dict], exact: Sequence[Sequence[int]] | None,
                params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Latency (client wall and the node's `took`) of each request in turn after warm-ups, and recall@10 vs `exact`."""
    for body in requests[:WARMUP]:
        client.search(index=index, body=body, params=dict(params or {}, request_cache="false"))
    wall, took, got = [], [], []
    for body in requests:
        t0 = time.perf_counter()
        res = client.search(index=index, body=body, params=dict(params or {}, request_cache="false"))
        wall.append((time.perf_counter() - t0) * 1000)
        took.append(float(res["took"]))
        got.append([int(h["_id"]) for h in res["hits"]["hits"]])
    out: dict[str, Any] = {"latency_ms": percentiles(wall), "took_ms": percentiles(took)}
    if exact is not None:
        out["recall_at_10"] = float(np.mean([len(set(g[:10]) & set(e[:10])) / len(e[:10])
                                             for g, e in zip(got, exact) if e]))
    return out


def _modes(client, kind: str, index: str, queries: Sequence[Query], keys: Sequence[str], exact, k: int,
           merged: bool, seismic_search: Sequence[Mapping[str, float | int]] = SEISMIC_SEARCH_SETTINGS,
           index_settings: Mapping[str, float | int] | None = None) -> list[dict[str, Any]]:
    """Every query mode of one index kind, with its settings (SEISMIC: each of `seismic_search`; `index_settings`:
    the index parameters this SEISMIC index was given on top of the run's, recorded with each mode)."""
    tokens = [{keys[c]: float(w) for c, w in zip(cols, ws)} for cols, ws in queries]
    rows: list[dict[str, Any]] = []

    def add(mode: str, settings: dict, reqs, params=None, recall=True):
        extra = {"index_settings": dict(index_settings)} if index_settings is not None else {}
        rows.append({"mode": mode, "settings": settings, "merged": merged, **extra,
                     **time_search(client, index, reqs, exact if recall else None, params)})

    if kind == "bm25":
        add("bm25 (no recall: other scoring)", {}, [bodies.bm25_query(list(t), k) for t in tokens], recall=False)
    elif kind == "rank_features":
        add("neural_sparse exact", {}, [bodies.exact_query(t, k) for t in tokens])
        for s in TWO_PHASE_SETTINGS:
            name = f"bench-two-phase-{s['prune_ratio']}-{s['expansion_rate']}"
            client.transport.perform_request("PUT", f"/_search/pipeline/{name}",
                                             body=bodies.two_phase_pipeline(**s))
            add("two-phase pipeline", s, [bodies.exact_query(t, k) for t in tokens], {"search_pipeline": name})
    else:
        for s in seismic_search:
            add("SEISMIC", dict(s), [bodies.seismic_query(t, k, s) for t in tokens])
    return rows


def measure_index(client, node: osnode.NodeInfo, kind: str, csr, keys: Sequence[str], queries: Sequence[Query],
                  exact, k: int, seismic: dict | None, say: Callable[[str], None],
                  seismic_search: Sequence[Mapping[str, float | int]] = SEISMIC_SEARCH_SETTINGS,
                  index_settings: Mapping[str, float | int] | None = None) -> dict[str, Any]:
    """Load one index, query it before and after a force-merge (SEISMIC: after only), record size and memory;
    `index_settings`: the SEISMIC parameters this index adds to the run's (`seismic` already holds them)."""
    label = "".join(f"-{key}-{v}" for key, v in (index_settings or {}).items()).replace("_", "-").replace(".", "p")
    index = f"bench-scale-{kind.replace('_', '-')}{label}".lower()
    reset = osnode.reset_peak_rss(node.pid)
    say(f"{node.version} {kind} {_text(index_settings or {})}: loading {csr.shape[0]:,} passages")
    row: dict[str, Any] = {"kind": kind, "index": index, "seismic_parameters": seismic if kind == "sparse_vector" else None}
    if kind == "sparse_vector":
        row["index_settings"] = dict(index_settings or {})
    row["load"] = osnode.load(client, kind, index, csr, keys, seismic)
    say(f"  {row['load']['passages_per_s']:.0f} passages/s")
    row["store_before_merge"] = osnode.store(client, index)
    row["modes"] = []
    if kind != "sparse_vector":  # SEISMIC's index is built for segments above approximate_threshold: merge first
        row["modes"] += _modes(client, kind, index, queries, keys, exact, k, False, seismic_search)
    row["force_merge_seconds"] = osnode.force_merge(client, index)
    row["store"] = osnode.store(client, index)
    say(f"  merged in {row['force_merge_seconds']:.0f} s; {row['store']['bytes_per_passage']:.0f} bytes/passage")
    row["modes"] += _modes(client, kind, index, queries, keys, exact, k, True, seismic_search,
                           row.get("index_settings"))
    for m in row["modes"]:
        if "recall_at_10" in m:
            say(f"  {m['mode']} {_text(m['settings'])}: p50 {m['latency_ms']['p50']:.1f} ms, "
                f"recall@10 {m['recall_at_10']:.3f}")
    row["peak_rss_mb"] = osnode.peak_rss_mb(node.pid)
    row["rss_after_mb"] = osnode.rss_mb(node.pid)
    row["peak_rss_since"] = "this index's load" if reset else "node start"
    jvm = next(iter(client.nodes.stats(metric="jvm")["nodes"].values()))["jvm"]["mem"]
    row["heap_used_after_mb"] = jvm["heap_used_in_bytes"] / 2**20
    client.indices.delete(index=index)
    return row


def _text(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def seismic_parameters(csr, queries: Sequence[Query],
                       overrides: Mapping[str, float | int] | None = None) -> dict[str, float | int]:
    """SEISMIC index parameters for `csr`: quantisation ceilings just above the largest document and query weight
    (defaults 3 and 16 would waste most of the 8 bits on query weights below 2), approximate_threshold half the
    passages (the force-merged segment, and any merged segment of half the corpus, is clustered)."""
    top_query = max((float(w.max()) for _, w in queries if w.size), default=1.0)
    return {"quantization_ceiling_ingest": float(math.ceil(float(csr.data.max()) * 10) / 10),
            "quantization_ceiling_search": float(math.ceil(top_query * 10) / 10),
            "approximate_threshold": max(1, csr.shape[0] // 2), **(overrides or {})}


def run_opensearch_scale(dist: dict, features: Sequence[str], vocabulary: Sequence[str], queries: Sequence[Query], *,
                         passages: int, versions: Sequence[str], heap: str, k: int = 10,
                         url: str | None = None, seismic_overrides: Mapping[str, float | int] | None = None,
                         seismic_index_sets: Sequence[Mapping[str, float | int]] = ({},),
                         seismic_search: Sequence[Mapping[str, float | int]] = SEISMIC_SEARCH_SETTINGS,
                         say: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole benchmark; see the module docstring. `url`: measure that node instead of starting nodes here;
    `seismic_index_sets`: one SEISMIC index per set (its parameters on top of the run's `seismic_overrides`), each
    queried with every `seismic_search` setting."""
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    csr = synthetic_matrix(dist, passages, seed=passages)
    csc = csr.tocsc()
    queries = [(c, w) for c, w in queries if c.size]
    exact, exact_ms = [], []
    for cols, ws in queries:
        t = time.perf_counter()
        exact.append(index_top_k(csc, cols, ws, k))
        exact_ms.append((time.perf_counter() - t) * 1000)
    del csc
    ids = [str(i) for i in bodies.token_ids(features, vocabulary)]
    say(f"{passages:,} synthetic passages and exact top-{k} of {len(queries)} queries in {time.perf_counter() - t0:.0f} s")
    seismic = seismic_parameters(csr, queries, seismic_overrides)
    nodes = []
    targets = [None] if url else list(versions)
    for version in targets:
        with osnode.scale_node(version or "", heap, url) as (client, info):
            kinds = plan([info.version])[info.version] if url else plan(versions)[version]
            rows = []
            for kind in kinds:
                if kind != "sparse_vector":
                    rows.append(measure_index(client, info, kind, csr, list(features), queries, exact, k, None, say))
                    continue
                for extra in seismic_index_sets or ({},):
                    rows.append(measure_index(client, info, kind, csr, ids, queries, exact, k, {**seismic, **extra},
                                              say, seismic_search, extra))
            nodes.append({"version": info.version, "heap_setting": info.heap_setting, "heap_max_mb": info.heap_max_mb,
                          "started_here": info.started_here, "rss_measured": info.pid is not None, "indexes": rows})
    return {"benchmark": "opensearch-scale", "passages": passages, "k": k, "queries": len(queries),
            "load_average_at_start": load_at_start, "seconds": time.perf_counter() - t0,
            "mean_query_tokens": float(np.mean([c.size for c, _ in queries])) if queries else 0.0,
            "mean_nonzero": float(csr.nnz / passages), "python_exact_ms": percentiles(exact_ms),
            "vector_keys": {"rank_features": "token (feature name)", "sparse_vector": "token id in the model's vocabulary"},
            "bm25_text": "the passage's tokens (the vector's keys), each once, in vocabulary order, joined with spaces; "
                         "whitespace analyzer",
            "target": {"p50_ms": TARGET_P50_MS, "recall_at_10": TARGET_RECALL, "met_by": met_by(nodes)},
            "nodes": nodes}


def met_by(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Modes (with settings) whose p50 <= the target at recall@10 >= the target."""
    out = []
    for n in nodes:
        for r in n["indexes"]:
            for m in r["modes"]:
                if m.get("recall_at_10", 0.0) >= TARGET_RECALL and m["latency_ms"]["p50"] <= TARGET_P50_MS:
                    index = f"{m['index_settings']} " if m.get("index_settings") else ""
                    out.append(f"{n['version']} {m['mode']} {index}{m['settings'] or ''}"
                               f"{' merged' if m['merged'] else ''}".strip())
    return out
