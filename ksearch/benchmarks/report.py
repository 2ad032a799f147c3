"""`docs/benchmarks.md` from the JSON results in bench/results (plots as PNG when matplotlib is installed)."""

from __future__ import annotations

import json
from pathlib import Path

QUERY_TARGET_MS = 15.0


EARLIER_OPENSEARCH_SCALE = "opensearch-scale-default-seismic.json"  # an earlier OpenSearch scale run, kept beside
# OpenSearch scale runs, each a section of its own: the million-passage runs (one per node version), then 100,000
OPENSEARCH_SCALE_RUNS = ("opensearch-scale-1m-3.6.0.json", "opensearch-scale-1m-2.19.1.json", "opensearch-scale.json")


def _load(results: Path, name: str) -> dict | None:
    path = results / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _targets_section(encode: dict | None, query: dict | None, ingest: dict | None, scale: dict | None,
                     os_scale: list[dict] = (), startup: dict | None = None, adapt: dict | None = None) -> list[str]:
    """One line per target of the benchmark issue: met, not met, or not measured, with the figure."""
    from ksearch.benchmarks.encode import meets_target

    rows = []
    if encode and encode.get("parity"):
        defaults = [v for v in encode["variants"] if v["precision"] == encode["default_precision"]
                    and v.get("backend", "torch") == encode.get("default_backend", "torch")]
        shown = defaults[0] if defaults else max(encode["variants"], key=lambda v: v["speedup_vs_card"])
        rows.append(("encoder >= 3x the card's loop at >= 0.99 nDCG@10 parity (the default setting)", meets_target(shown),
                     f"{shown['name']}: {shown['speedup_vs_card']:.2f}x, parity {shown['ndcg_parity_vs_fp32'] or 0:.3f}"))
    if query:
        p50 = query["backends"]["embedded"]["modes"]["sparse"]["single"]["total_ms"]["p50"]
        rows.append((f"embedded sparse total p50 <= {QUERY_TARGET_MS:.0f} ms", p50 <= QUERY_TARGET_MS, f"{p50:.2f} ms"))
    from ksearch.benchmarks.report_scale import scale_target_rows

    rows += scale_target_rows(scale)
    for backend, r in (ingest or {}).get("backends", {}).items():
        rows.append((f"ingest into {backend} >= 85% of pure encoding", r["meets_target"], f"{r['ratio_to_pure_encoding']:.2f}"))
    if os_scale:
        from ksearch.benchmarks.report_opensearch import target_row

        rows += [target_row(run) for run in os_scale]
    if startup:
        from ksearch.benchmarks.report_startup import target_rows

        rows += target_rows(startup)
    if adapt:
        from ksearch.benchmarks.report_adapt import target_rows as adapt_rows

        rows += adapt_rows(adapt)
    if not rows:
        return []
    return ["## Targets", "", "| target | result | measured |", "| --- | --- | --- |",
            *[f"| {name} | **{'met' if ok else 'not met'}** | {figure} |" for name, ok, figure in rows]]


def _encode_section(e: dict) -> list[str]:
    from ksearch.benchmarks.encode import meets_target

    fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    lines = [f"## Encoding ({e['model']}, {e['passages']} passages of ~{e['mean_tokens']:.0f} model tokens)", "",
             "| variant | passages/s | x card loop | peak extra MiB | top-20 overlap vs fp32 | nDCG@10 | parity vs fp32 | "
             "target |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for v in e["variants"]:
        lines.append(f"| {v['name']} | {v['passages_per_s']:.1f} | {v['speedup_vs_card']:.2f} | {v['peak_extra_mb']:.0f} | "
                     f"{fmt(v['top20_overlap_vs_fp32'])} | {fmt(v.get('ndcg_at_10'))} | {fmt(v.get('ndcg_parity_vs_fp32'))} | "
                     f"{'met' if meets_target(v) else '-'} |")
    met = [v["name"] for v in e["variants"] if meets_target(v)]
    if not e.get("parity"):
        return lines + ["", "Random weights: speed and top-20 overlap only (no retrieval parity to measure)."]
    lines += ["", f"Target >= {e['target']['speedup_vs_card']:.0f}x the card's loop at >= {e['target']['ndcg_parity']} "
              f"nDCG@10 parity: **{'met' if met else 'not met'}**{' by ' + ', '.join(met) if met else ''}. "
              f"This machine's default precision for the model: **{e['default_precision']}** (the model folder's "
              "`cpu_precision`, first one the CPU runs natively; `KSEARCH_PRECISION` overrides)."]
    lines.append(f"Parity: {e['parity']['metric']}, {e['parity']['split']} split of {e['parity']['queries']}.")
    return lines


def _query_section(q: dict) -> list[str]:
    lines = [f"## Query latency (`{q['queries']}` {q['split']} queries x {q['rounds']}, k={q['k']})", "",
             "| backend | mode | encode p50 | search p50 | total p50 | total p90 | total p99 | QPS 1 client | "
             f"total p50, {q['clients']} clients | QPS {q['clients']} clients |", "| --- | --- |" + " ---: |" * 8]
    for backend, b in q["backends"].items():
        for mode, r in b["modes"].items():
            s, c = r["single"], r["concurrent"]
            lines.append(f"| {backend} | {mode} | {s['encode_ms']['p50']:.2f} | {s['search_ms']['p50']:.2f} | "
                         f"{s['total_ms']['p50']:.2f} | {s['total_ms']['p90']:.2f} | {s['total_ms']['p99']:.2f} | "
                         f"{s['qps']:.1f} | {c['total_ms']['p50']:.2f} | {c['qps']:.1f} |")
    sparse = q["backends"]["embedded"]["modes"]["sparse"]["single"]["total_ms"]["p50"]
    met = "met" if sparse <= QUERY_TARGET_MS else "not met"
    lines += ["", f"Milliseconds. Target embedded sparse total p50 <= {QUERY_TARGET_MS:.0f} ms: **{met}** ({sparse:.2f} ms)."]
    return lines


def _ingest_section(i: dict) -> list[str]:
    lines = [f"## Ingest throughput ({i['documents']} documents, {i['passages']} passages)", "",
             f"Pure batched encoding: {i['pure_encoding']['passages_per_s']:.1f} passages/s (before "
             f"{i['pure_encoding']['before']:.1f}, after {i['pure_encoding']['after']:.1f}).", "",
             "| backend | passages/s (encode+write loop) | ratio | passages/s (whole call) | ratio | target >= 85 % |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for backend, r in i["backends"].items():
        lines.append(f"| {backend} | {r['passages_per_s']:.1f} | {r['ratio_to_pure_encoding']:.2f} | "
                     f"{r['wall_passages_per_s']:.1f} | {r['wall_ratio_to_pure_encoding']:.2f} | "
                     f"{'met' if r['meets_target'] else 'not met'} |")
    lines += ["", "The loop encodes a batch while the previous one is written (a writer thread). The whole call also reads "
              "the file, splits documents into passages (Kiwi) and builds BM25. The local OpenSearch node runs on the "
              "same cores as the encoder, so its indexing work takes CPU from encoding: overlap hides waiting, not "
              "CPU time, and on 2 cores OpenSearch ingest stays well below pure encoding."]
    return lines


def _plots(results: Path, docs: Path, scale: dict | None, query: dict | None) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ["", "_Plots skipped: matplotlib is not installed._"]
    out = []
    if scale and scale["sizes"]:
        fig, ax = plt.subplots(figsize=(6, 4))
        xs = [r["passages"] for r in scale["sizes"]]
        ax.plot(xs, [r["exact_index_ms"]["p50"] for r in scale["sizes"]], "o-", label="exact (EmbeddedIndex)")
        ax.plot(xs, [r["exact_full_matrix_ms"]["p50"] for r in scale["sizes"]], "o-", label="exact, full matrix (before)")
        if all(r.get("index") for r in scale["sizes"]):
            ax.plot(xs, [r["index"]["latency_ms"]["p50"] for r in scale["sizes"]], "o-",
                    label="approximate (EmbeddedIndex.search)")
        elif all(r.get("impact") for r in scale["sizes"]):
            ax.plot(xs, [r["impact"]["latency_ms"]["p50"] for r in scale["sizes"]], "o-", label="approximate (kernel)")
        ax.set(xscale="log", yscale="log", xlabel="passages", ylabel="p50 ms", title="Query latency vs corpus size")
        ax.legend()
        fig.tight_layout()
        fig.savefig(docs / "benchmarks-scale.png", dpi=100)
        plt.close(fig)
        out += ["", "![Query latency vs corpus size](benchmarks-scale.png)"]
    if query:
        fig, ax = plt.subplots(figsize=(7, 4))
        labels, vals = [], []
        for backend, b in query["backends"].items():
            for mode, r in b["modes"].items():
                labels.append(f"{backend}\n{mode}")
                vals.append(r["single"]["total_ms"]["p50"])
        ax.bar(labels, vals)
        ax.set(ylabel="total p50 ms", title="Query latency, one client")
        ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        fig.savefig(docs / "benchmarks-query.png", dpi=100)
        plt.close(fig)
        out += ["", "![Query latency per backend and mode](benchmarks-query.png)"]
    return out


def write_report(results: Path = Path("bench/results"), out: Path = Path("docs/benchmarks.md"),
                 commands: list[str] | None = None, note: str = "") -> Path:
    """Write the benchmark report from whatever JSON results exist; return its path."""
    encode, query, ingest, scale = (_load(results, n) for n in ("encode-shipped.json", "query.json", "ingest.json", "scale.json"))
    hardware = next((d["hardware"] for d in (query, ingest, scale, encode) if d), "unknown")
    lines = ["# Benchmarks", "", f"Hardware: {hardware}.", ""]
    loads = {n: d["load_average_at_end"] for n, d in (("query", query), ("ingest", ingest), ("scale", scale))
             if d and "load_average_at_end" in d}
    if loads:
        lines += ["Load average (1/5/15 min) when each result was written (2 cores; a benchmark keeps about 2 of them busy "
                  "itself, the local OpenSearch node some more; far above that, other work shared the CPU): " + ", ".join(f"{n} {v}" for n, v in loads.items()) + ".", ""]
    if note:
        lines += [note, ""]
    lines += ["Commands:", "", "```console", *(commands or ["ksearch bench all"]), "```", ""]
    os_runs = [(f"bench/results/{name}", run) for name in OPENSEARCH_SCALE_RUNS if (run := _load(results, name))]
    os_scale, startup = [run for _, run in os_runs], _load(results, "startup.json")
    adapt = _load(results, "adapt.json")
    lines += _targets_section(encode, query, ingest, scale, os_scale, startup, adapt) + [""]
    for data in (encode, _load(results, "encode-seed-sized.json")):
        if data and "default_precision" in data:
            lines += _encode_section(data) + [""]
    from ksearch.benchmarks.report_scale import scale_index_section, scale_section

    for data, section in ((query, _query_section), (ingest, _ingest_section), (scale, scale_section),
                          (scale, scale_index_section)):
        if data and (part := section(data)):
            lines += part + [""]
    if os_scale:
        from ksearch.benchmarks.report_opensearch import opensearch_scale_section

        for source, run in os_runs:
            lines += opensearch_scale_section(run, source) + [""]
        earlier = _load(results, EARLIER_OPENSEARCH_SCALE)
        if earlier:
            from ksearch.benchmarks.report_opensearch import earlier_run_section

            lines += earlier_run_section(earlier, f"bench/results/{EARLIER_OPENSEARCH_SCALE}") + [""]
    if startup:
        from ksearch.benchmarks.report_startup import startup_section

        lines += startup_section(startup) + [""]
    if memory := _load(results, "ingest-memory.json"):
        from ksearch.benchmarks.report_ingest_memory import ingest_memory_section

        lines += ingest_memory_section(memory) + [""]
    if adapt:
        from ksearch.benchmarks.report_adapt import adapt_section

        lines += adapt_section(adapt) + [""]
    out.parent.mkdir(parents=True, exist_ok=True)
    lines += _plots(results, out.parent, scale, query)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
