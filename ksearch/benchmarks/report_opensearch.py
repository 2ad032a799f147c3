"""The OpenSearch-at-scale part of `docs/benchmarks.md`: one section per run (`bench/results/opensearch-scale*.json`)."""

from __future__ import annotations


def _mb(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def _settings(s: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in s.items()) or "-"


def _mode_settings(m: dict) -> str:
    """A mode's settings; a SEISMIC mode's index parameters (those its index adds to the run's) first."""
    search = _settings(m["settings"])
    return f"{_settings(m['index_settings'])}; {search}" if m.get("index_settings") else search


def _index_label(r: dict) -> str:
    extra = r.get("index_settings")
    return f"{r['kind']} ({_settings(extra)})" if extra else r["kind"]


def _modes(o: dict):
    for n in o["nodes"]:
        for r in n["indexes"]:
            for m in r["modes"]:
                yield n, r, m


def target_row(o: dict) -> tuple[str, bool, str]:
    """(target, met, figure) for the Targets table: the fastest mode at recall@10 >= the target."""
    t = o["target"]
    good = [(m["latency_ms"]["p50"], n, m) for n, _, m in _modes(o) if m.get("recall_at_10", 0.0) >= t["recall_at_10"]]
    name = (f"OpenSearch at {o['passages']:,} passages ({_versions(o)}): p50 <= {t['p50_ms']:g} ms at recall@10 >= "
            f"{t['recall_at_10']}")
    if not good:
        return name, False, "no mode reached the recall"
    p50, n, m = min(good, key=lambda g: g[0])
    return (name, p50 <= t["p50_ms"], f"fastest at that recall: {n['version']} {m['mode']} ({_mode_settings(m)}"
            f"{', merged' if m['merged'] else ''}) {p50:.2f} ms at recall@10 {m['recall_at_10']:.3f}")


def _versions(o: dict) -> str:
    return ", ".join(n["version"] for n in o["nodes"])


def opensearch_scale_section(o: dict, source: str = "bench/results/opensearch-scale.json") -> list[str]:
    """The section of the run in `source`: how it was run, the indexes (load, size, memory), the query modes (latency,
    recall), the target."""
    n = o["passages"]
    default_command = f'ksearch bench scale --sizes "" --opensearch --opensearch-passages {n}'
    load = f"load average {o.get('load_average_at_start')} at start, {o.get('load_average_at_end')} at the end"
    lines = [f"## OpenSearch at scale ({n:,} passages, {_versions(o)})", "",
             f"`{o.get('command') or default_command}` (results in `{source}`; {load}, 2 cores; the run itself keeps "
             "them busy while it loads, one core while it queries). Synthetic passages sampled as in the scale section "
             "above "
             f"(~{o['mean_nonzero']:.0f} weights each, from the {o['real_index']['passages']:,} real passage vectors of "
             f"the sample index, {o['real_index']['features']:,} features); {o['queries']} real queries "
             f"(~{o['mean_query_tokens']:.0f} tokens). Keys: rank_features by token, sparse_vector by the token's id in "
             f"the model's vocabulary. BM25-only index text: {o['bm25_text']}. Each index is one shard, no replica, "
             "loaded with opensearch-py `parallel_bulk` (2 threads, 2,000 passages a request) with `refresh_interval` "
             "-1, then refreshed; size is the primary store after a flush. Exact ground truth: the dot product in "
             f"Python (`exact_scoring.index_top_k`, p50 {o['python_exact_ms']['p50']:.2f} ms a query).", ""]
    if o.get("note"):
        lines += [f"Note on this run: {o['note']}", ""]
    bm25 = next((r["store_before_merge"]["bytes_per_passage"] for nd in o["nodes"] for r in nd["indexes"]
                 if r["kind"] == "bm25"), None)
    live = all("segment_bytes" in r["store"] for nd in o["nodes"] for r in nd["indexes"])
    lines += ["| node (heap) | index | passages/s | load s | force-merge s | segments before merge | bytes/passage "
              "before merge | bytes/passage merged | " + ("live segment bytes/passage merged | " if live else "")
              + "x BM25-only (before merge) | peak RSS MiB | RSS after MiB |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if live else "")]
    for nd in o["nodes"]:
        for r in nd["indexes"]:
            ratio = f"{r['store_before_merge']['bytes_per_passage'] / bm25:.2f}" if bm25 else "-"
            heap = nd["heap_setting"] or f"{nd['heap_max_mb']:.0f} MiB"
            segs = f"{r['store']['segment_bytes_per_passage']:.0f} | " if live else ""
            lines.append(f"| {nd['version']} ({heap}) | {_index_label(r)} | "
                         f"{r['load']['passages_per_s']:.0f} | {r['load']['seconds']:.0f} | {r['force_merge_seconds']:.0f} | "
                         f"{r['store_before_merge']['segments']} | {r['store_before_merge']['bytes_per_passage']:.0f} | "
                         f"{r['store']['bytes_per_passage']:.0f} | {segs}{ratio} | {_mb(r['peak_rss_mb'])} | "
                         f"{_mb(r['rss_after_mb'])} |")
    seismic = next(({k: v for k, v in r["seismic_parameters"].items() if k not in (r.get("index_settings") or {})}
                    for nd in o["nodes"] for r in nd["indexes"] if r["kind"] == "sparse_vector"), None)
    size_note = ("Sizes are the primary store after a flush (`_stats/store`); \"live segment bytes\" sums the sizes "
                 "`_segments` reports for the segments in use, so a store size above it counts files of merged-away "
                 "segments not yet deleted." if live else
                 "Sizes are the primary store after a flush. The merged size is read right after the force-merge, so "
                 "files of the merged-away segments may still be counted in it (not investigated).")
    lines += ["", size_note + " The ratio to the BM25-only index uses the sizes before the merge, when every index had "
              "the same few segments.",
              "", "Peak RSS: the JVM's high-water mark from its index's load to the end of its queries (reset before "
              "each index; the node pre-touches its whole heap, `-XX:+AlwaysPreTouch`, so RSS starts near the heap "
              "setting). SEISMIC index parameters: " + (_settings(seismic) if seismic else "-") + " (the rest at "
              "their defaults; n_postings defaults to 0.0005 x the segment's passages; `--seismic-param n_postings=...` "
              "changes it for every SEISMIC index, `--seismic-index-set` adds one index per set)." + _sweep_note(o), "",
              "| node | mode | settings | merged | p50 ms | p99 ms | node `took` p50 | recall@10 | target |",
              "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    t = o["target"]
    for nd, _, m in _modes(o):
        recall = m.get("recall_at_10")
        ok = recall is not None and recall >= t["recall_at_10"] and m["latency_ms"]["p50"] <= t["p50_ms"]
        lines.append(f"| {nd['version']} | {m['mode']} | {_mode_settings(m)} | {'yes' if m['merged'] else 'no'} | "
                     f"{m['latency_ms']['p50']:.2f} | {m['latency_ms']['p99']:.2f} | {m['took_ms']['p50']:.0f} | "
                     f"{'-' if recall is None else format(recall, '.3f')} | {'met' if ok else '-'} |")
    name, ok, figure = target_row(o)
    lines += ["", "Milliseconds at the client, one query at a time after 5 warm-ups, `_source` off, request cache off. "
              f"Target ({name}): **{'met' if ok else 'not met'}** ({figure})."]
    return lines


def _sweep_note(o: dict) -> str:
    sets = [r["index_settings"] for nd in o["nodes"] for r in nd["indexes"] if r.get("index_settings")]
    if not sets:
        return ""
    return (" This run built one SEISMIC index per set of " + "; ".join(_settings(x) for x in sets)
            + " (the mode table shows each index's set, then the search settings).")


def earlier_run_section(o: dict, source: str) -> list[str]:
    """The query modes of an earlier run (kept for comparison), with its command's settings and load average."""
    seismic = next((r["seismic_parameters"] for nd in o["nodes"] for r in nd["indexes"] if r["kind"] == "sparse_vector"),
                   None)
    lines = [f"### Earlier run: {o['passages']:,} passages, SEISMIC index at its default n_postings", "",
             f"`{source}`: the same command without `--seismic-index-set`/`--seismic-search` (load average "
             f"{o.get('load_average_at_start')} at start, {o.get('load_average_at_end')} at the end). SEISMIC index "
             f"parameters: {_settings(seismic) if seismic else '-'}, so n_postings was its default, 0.0005 x "
             f"{o['passages']:,} = {o['passages'] * 0.0005:.0f} postings a token in the merged segment.", "",
             "| node | mode | settings | merged | p50 ms | p99 ms | recall@10 |", "| --- | --- | --- | --- | ---: | ---: | ---: |"]
    for nd, _, m in _modes(o):
        recall = m.get("recall_at_10")
        lines.append(f"| {nd['version']} | {m['mode']} | {_mode_settings(m)} | {'yes' if m['merged'] else 'no'} | "
                     f"{m['latency_ms']['p50']:.2f} | {m['latency_ms']['p99']:.2f} | "
                     f"{'-' if recall is None else format(recall, '.3f')} |")
    return lines
