"""The ingest-memory part of `docs/benchmarks.md`, from `bench/results/ingest-memory.json` (`ksearch bench
ingest-memory`, one run per backend)."""

from __future__ import annotations

FULL_SIZE_MB = 2048  # the command's default, the "2 GB JSONL"


def runs_of(results: dict) -> dict[str, dict]:
    """Backend -> run (a file from before `--backend` holds one embedded run at its top level)."""
    return results["runs"] if "runs" in results else {"embedded": {"backend": "embedded", **results}}


def _phase(run: dict, name: str) -> dict | None:
    return next((p for p in run["phases"] if p["phase"] == name), None)


def _command(run: dict) -> str:
    return f"ksearch bench ingest-memory --size-mb {run['file_mb']:.0f} --backend {run['backend']} --work-dir /tmp"


def ingest_memory_commands(results: dict) -> list[str]:
    """The command line of every run, for the report's list of commands."""
    return [_command(run) for run in runs_of(results).values()]


def _table(run: dict) -> list[str]:
    node = "node_peak_mb" in run
    head = "| phase | s | worker RSS MiB | worker peak MiB |" + (" node RSS MiB | node peak MiB |" if node else "")
    lines = [head, "| --- | ---: | ---: | ---: |" + (" ---: | ---: |" if node else "")]
    for p in run["phases"]:
        row = f"| {p['phase']} | {p['seconds']:.0f} | {p['rss_mb']:.0f} | {p['peak_mb']:.0f} |"
        lines.append(row + (f" {p['node_rss_mb']:.0f} | {p['node_peak_mb']:.0f} |" if node else ""))
    return lines


def _run_lines(run: dict) -> list[str]:
    backend, mib = run["backend"], run["file_mb"]
    start, end = _phase(run, "10% written"), _phase(run, "100% written")
    rate = run["written"] / run["ingest_seconds"] if run["ingest_seconds"] else 0.0
    lines = [f"### Into {'an embedded index' if backend == 'embedded' else 'OpenSearch'}: {mib:.0f} MiB JSONL, "
             f"{run['documents']:,} documents, {run['passages']:,} passages", "",
             f"`{_command(run)}`: {run['ingest_seconds'] / 60:.0f} min of ingest ({rate:.0f} passages/s, "
             f"{run['ingest_seconds'] / mib:.0f} s per MiB); load average at the end {run.get('load_average_at_end')}.",
             "", *_table(run), ""]
    if start and end:
        lines.append(f"Worker over the write loop (10% to 100% of {run['written']:,} passages written): "
                     f"{start['rss_mb']:.0f} -> {end['rss_mb']:.0f} MiB, highest sample {end['peak_mb']:.0f} MiB "
                     f"({run['write_loop_growth_mb']:+.0f} MiB).")
    if backend == "embedded" and end:
        finish = run["phases"][-1]
        extra = finish["peak_mb"] - end["rss_mb"]
        lines[-1] += (f" `finish_writes` then peaks {extra:.0f} MiB higher ({extra * 2**20 / max(run['written'], 1) / 1024:.1f} "
                      "KiB per passage): it compacts the segments and builds BM25 over every live row in memory.")
    if "node_peak_mb" in run:
        lines[-1] += (f" The OpenSearch node (heap {run['node_heap']}), measured apart: "
                      f"{run['node_write_loop_growth_mb']:+.0f} MiB over the write loop, peak {run['node_peak_mb']:.0f} MiB.")
    return lines + [""]


def ingest_memory_section(results: dict) -> list[str]:
    """Worker RSS by phase for each backend, what stays flat, what grows with the index, and how far it was run."""
    runs = runs_of(results)
    largest = max(run["file_mb"] for run in runs.values())
    first = next(iter(runs.values()))
    lines = [f"## Ingest memory (up to {largest:.0f} MiB of JSONL)", "",
             f"From `bench/results/ingest-memory.json`. Text: {first['text']}. Encoded by {first['encoder']}: the "
             "model is not what is measured; the reader, splitter, spool and writer are. Worker: the ingest process "
             "and its children, without the OpenSearch node, whose RSS is its own column. Sampled every 50 ms; each "
             "row's peak is the highest sample since the row before.", ""]
    for run in runs.values():
        lines += _run_lines(run)
    lines += ["What the worker holds does not depend on how much has been read or written: passages wait in a "
              "temporary file (about the size of their text), the ids and digests of the documents seen in a "
              "temporary SQLite database, and a batch or two of passages is in memory at a time "
              "(tests/test_ingest_streaming.py counts them). The rise while reading is Kiwi's model loading (~350 MiB "
              "on its own); between the end of splitting and 10% written come the first batches, the allocator's "
              "pools and, for the embedded index, the Kiwi memo of the BM25 analyses filling up to its 4096 texts. "
              "After that the worker stays where it is.", "",
              "The embedded index is different at the end: `finish_writes` merges the segments (more than 32) and "
              "builds BM25 over every live row, so its peak grows with the index, by the rows' text, metadata, "
              "morphemes and vectors. Most of it is what searching the index takes anyway (a search process holds "
              "the same rows; building BM25 adds transient lists of token ids); for a corpus whose index does "
              "not fit in memory, ingest into OpenSearch."]
    if largest < FULL_SIZE_MB:
        rates = [(r["backend"], r["ingest_seconds"] / r["file_mb"]) for r in runs.values()]
        lines += ["", f"Largest size measured: {largest:.0f} MiB, not the {FULL_SIZE_MB / 1024:.0f} GiB of the issue. "
                  f"{FULL_SIZE_MB / 1024:.0f} GiB would take about "
                  + " and ".join(f"{s * FULL_SIZE_MB / 3600:.0f} hours into {b} ({s:.0f} s per MiB)" for b, s in rates)
                  + " on this 2-core machine, most of it in Kiwi (sentence splitting, and for the embedded index the BM25 morphemes), not in the "
                  "throwaway encoder. Since the worker's RSS is flat from 10% to 100% written, a larger file changes "
                  "the temporary spool and SQLite files on disk, not the worker's memory" + _full_size_index(runs) + "."]
    return lines


def _full_size_index(runs: dict[str, dict]) -> str:
    """What the embedded index's `finish_writes` would add at the full size, extrapolated per passage."""
    run = runs.get("embedded")
    end = _phase(run, "100% written") if run else None
    if not end or not run["written"]:
        return ""
    per_passage = (run["phases"][-1]["peak_mb"] - end["rss_mb"]) / run["written"]
    passages = run["passages"] / run["file_mb"] * FULL_SIZE_MB
    return (f"; the embedded index's `finish_writes` would add about {per_passage * passages / 1024:.0f} GiB at "
            f"{FULL_SIZE_MB / 1024:.0f} GiB ({passages / 1e6:.1f} million passages at this run's "
            f"{run['passages'] / run['file_mb']:,.0f} per MiB), most of which a process searching that index holds anyway")
