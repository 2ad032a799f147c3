"""`ksearch bench ...`: benchmarks that print figures and ratios measured side by side (code in ksearch/benchmarks/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ksearch.cli_common import ModelOption, console, fail, load_encoder_or_fail

bench_app = typer.Typer(help="Benchmarks that print figures and ratios measured side by side.", no_args_is_help=True)


@bench_app.command("encode")
def bench_encode(
    model: ModelOption = None,
    seed_sized: Annotated[bool, typer.Option("--seed-sized", help="Random ModernBERT of the production model's size.")] = False,
    passages: Annotated[int, typer.Option(min=1)] = 64,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    tokens: Annotated[int, typer.Option(help="Target passage length in tokens.")] = 48,
    repeats: Annotated[int, typer.Option(min=1, help="Runs per variant; the median is reported.")] = 1,
    corpus: Annotated[Path, typer.Option(help="Passages are cut from this JSONL corpus when it exists.")] = Path("sample_data/corpus.jsonl"),
    parity: Annotated[bool, typer.Option(help="Also index the sample corpus with each variant and compare test-split "
                                              "nDCG@10 with fp32 (needs sample_data/).")] = True,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/encode.json"),
) -> None:
    """Card loop vs batched vs optimised encoders: passages/s, peak memory, ratio, parity."""
    from ksearch.benchmarks.encode import meets_target, onnx_parity_holds, run_encode_bench
    from ksearch.benchmarks.parity import ParityData
    from ksearch.benchmarks.runner import write_json

    if not seed_sized and model is None:
        from retrieval.settings import get_settings

        model = get_settings().model
    result = run_encode_bench(model, seed_sized, passages, batch_size, tokens, corpus, repeats,
                              parity=ParityData.sample() if parity else None)
    table = Table(title=f"encode: {result['model']} | {result['passages']} passages, ~{result['mean_tokens']:.0f} tokens | "
                        f"{result['hardware']} | default precision {result['default_precision']}")
    for col in ("variant", "passages/s", "x card loop", "peak RSS MiB", "peak extra MiB", "top-20 overlap", "nDCG@10",
                "parity", "target"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for v in result["variants"]:
        fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        table.add_row(v["name"], f"{v['passages_per_s']:.2f}", f"{v['speedup_vs_card']:.2f}", f"{v['peak_rss_mb']:.0f}",
                      f"{v['peak_extra_mb']:.0f}", fmt(v["top20_overlap_vs_fp32"]), fmt(v["ndcg_at_10"]),
                      fmt(v["ndcg_parity_vs_fp32"]), "met" if meets_target(v) else "-")
    console.print(table)
    onnx_ok = onnx_parity_holds(result)
    if onnx_ok is not None:
        console.print(f"ONNX nDCG@10 within {result['onnx_ndcg_tolerance']} of torch fp32: "
                      f"{'[green]yes[/green]' if onnx_ok else '[red]no[/red]'}")
    console.print(f"wrote {write_json(result, out)}")


CorpusOption = Annotated[Path, typer.Option(help="JSONL corpus the benchmark indexes.")]
QueriesOption = Annotated[Path, typer.Option(help="Sample queries (JSONL with id and text).")]
SplitsOption = Annotated[Path, typer.Option(help="Query splits (JSON).")]
BenchHomeOption = Annotated[Optional[Path], typer.Option("--home", help="Where bench indexes live (default: $KSEARCH_HOME).")]


def _bench_config(home: Path | None):  # -> retrieval.backends.BackendConfig
    from retrieval.settings import get_settings

    return get_settings().backend_config(home=home)


@bench_app.command("query")
def bench_query(
    model: ModelOption = None,
    opensearch: Annotated[bool, typer.Option("--opensearch", help="Start the local OpenSearch node and benchmark it too.")] = False,
    corpus: CorpusOption = Path("sample_data/corpus.jsonl"),
    queries: QueriesOption = Path("sample_data/queries.jsonl"),
    splits: SplitsOption = Path("sample_data/splits.json"),
    split: Annotated[str, typer.Option(help="Query split (dev, test, train, all).")] = "dev",
    max_queries: Annotated[Optional[int], typer.Option(min=1, help="Use at most this many queries.")] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Passes over the queries.")] = 1,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent clients.")] = 8,
    index: Annotated[str, typer.Option(help="Bench index name (built from --corpus once, reused).")] = "bench-sample",
    home: BenchHomeOption = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/query.json"),
) -> None:
    """Encode / search / total latency percentiles and QPS per backend and mode, 1 and N clients."""
    from ksearch.benchmarks.query import run_query_bench
    from ksearch.benchmarks.runner import bench_opensearch, query_table, write_json

    enc = load_encoder_or_fail(model)
    result = run_query_bench(enc, corpus, queries, splits, split=split, config=_bench_config(home), index_name=index,
                             clients=clients, rounds=rounds, max_queries=max_queries,
                             opensearch=(lambda: bench_opensearch(True)) if opensearch else None)
    console.print(query_table(result))
    console.print(f"wrote {write_json(result, out)}")


@bench_app.command("ingest")
def bench_ingest(
    model: ModelOption = None,
    opensearch: Annotated[bool, typer.Option("--opensearch", help="Start the local OpenSearch node and ingest into it too.")] = False,
    corpus: CorpusOption = Path("sample_data/corpus.jsonl"),
    documents: Annotated[int, typer.Option(min=1, help="Documents taken from the start of the corpus.")] = 400,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/ingest.json"),
) -> None:
    """Ingest passages/s into each backend vs pure batched encoding of the same passages."""
    from ksearch.benchmarks.ingest import run_ingest_bench
    from ksearch.benchmarks.runner import bench_opensearch, ingest_table, write_json

    enc = load_encoder_or_fail(model)
    with bench_opensearch(opensearch) as conn:
        result = run_ingest_bench(enc, corpus, documents=documents, opensearch=conn)
    console.print(ingest_table(result))
    console.print(f"wrote {write_json(result, out)}")


@bench_app.command("ingest-memory")
def bench_ingest_memory(
    size_mb: Annotated[float, typer.Option("--size-mb", min=0.1, help="Size of the synthetic JSONL corpus in MiB.")] = 2048,
    backend: Annotated[str, typer.Option(help="embedded, or opensearch: a local node started for the run, whose "
                                              "memory is reported apart from the worker's.")] = "embedded",
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Encode with this model instead of a tiny random "
                                                 "BERT built on the spot (the real model takes hours per GB on CPU).")] = None,
    work_dir: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="An existing folder where the corpus "
                                                  "and index are written (deleted after).")] = None,
    out: Annotated[Path, typer.Option(help="The JSON results: this backend's run replaces an earlier one, other "
                                           "backends' runs are kept.")] = Path("bench/results/ingest-memory.json"),
) -> None:
    """Peak RSS of the ingest worker while a synthetic JSONL is ingested: flat in the corpus size when streamed."""
    import json

    from ksearch.benchmarks.ingest_memory import (BACKENDS, BenchmarkBusyError, ingest_memory_table, merge_run,
                                                  run_ingest_memory_bench)

    if backend not in BACKENDS:
        raise typer.BadParameter(f"{backend!r} is not one of {', '.join(BACKENDS)}", param_hint="--backend")
    try:
        result = run_ingest_memory_bench(size_mb, backend=backend, model=model, work_dir=work_dir)
    except BenchmarkBusyError as exc:
        fail(str(exc))
    console.print(ingest_memory_table(result))
    previous = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
    out.parent.mkdir(parents=True, exist_ok=True)  # each run has its own load average; the file gets none of its own
    out.write_text(json.dumps(merge_run(previous, result), ensure_ascii=False, indent=2), encoding="utf-8")
    console.print(f"wrote {out}")


@bench_app.command("scale")
def bench_scale(
    model: ModelOption = None,
    sizes: Annotated[str, typer.Option(help="Synthetic corpus sizes, comma-separated (e.g. 10000,100000,1000000).")] = "10000,100000",
    approximate: Annotated[bool, typer.Option(help="Also measure the approximate method (impact-ordered postings) "
                                                   "and its recall@10 vs exact.")] = True,
    through_index: Annotated[bool, typer.Option(help="With --approximate, also ingest each corpus into an embedded "
                                                     "index (its approximate index built at the end, as an ingest "
                                                     "does; deleted afterwards) and search it.")] = True,
    max_queries: Annotated[int, typer.Option(min=1)] = 200,
    corpus: CorpusOption = Path("sample_data/corpus.jsonl"),
    queries: QueriesOption = Path("sample_data/queries.jsonl"),
    splits: SplitsOption = Path("sample_data/splits.json"),
    index: Annotated[str, typer.Option(help="Real index whose vectors are sampled.")] = "bench-sample",
    home: BenchHomeOption = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/scale.json"),
    opensearch: Annotated[bool, typer.Option("--opensearch", help="Also bulk-load --opensearch-passages synthetic "
                                             "passages into local OpenSearch nodes (or $KSEARCH_OPENSEARCH_URL) and "
                                             "measure load rate, size, latency and recall of each mode.")] = False,
    opensearch_passages: Annotated[int, typer.Option(min=100, help="Passages loaded into OpenSearch.")] = 1_000_000,
    opensearch_versions: Annotated[str, typer.Option(help="Nodes started, in order: 2.x gets BM25 + rank_features "
                                                          "(exact, two-phase), 3.x SEISMIC.")] = "2.19.1,3.6.0",
    opensearch_heap: Annotated[str, typer.Option(help="JVM heap of the nodes started here.")] = "4g",
    seismic_param: Annotated[Optional[list[str]], typer.Option(
        "--seismic-param", help="SEISMIC index parameter KEY=VALUE for the sparse_vector index (n_postings, "
                                "cluster_ratio, summary_prune_ratio, approximate_threshold, quantization_ceiling_*); "
                                "repeatable.")] = None,
    seismic_index_set: Annotated[Optional[list[str]], typer.Option(
        "--seismic-index-set", help="One more sparse_vector index with these SEISMIC index parameters "
                                    "(KEY=VALUE,KEY=VALUE, on top of --seismic-param); repeatable: one index each, "
                                    "loaded and merged in turn.")] = None,
    seismic_search: Annotated[Optional[list[str]], typer.Option(
        "--seismic-search", help="A SEISMIC search setting (top_n=..,heap_factor=..,k=..) to measure instead of the "
                                 "built-in four; repeatable.")] = None,
    opensearch_out: Annotated[Path, typer.Option(help="Where to write the OpenSearch results.")]
    = Path("bench/results/opensearch-scale.json"),
) -> None:
    """Exact and approximate query latency, memory and recall on synthetic corpora shaped like the real vectors
    (`--sizes ""` skips the embedded sizes, e.g. with --opensearch)."""
    from ksearch.benchmarks.runner import opensearch_scale_table, scale_index_table, scale_table, write_json
    from ksearch.benchmarks.scale import run_scale_bench, sample_inputs

    enc = load_encoder_or_fail(model)
    wanted = [int(s) for s in sizes.split(",") if s.strip()]
    if wanted:
        result = run_scale_bench(enc, corpus, queries, splits, config=_bench_config(home), index_name=index,
                                 sizes=wanted, max_queries=max_queries, approximate=approximate,
                                 through_index=through_index)
        console.print(scale_table(result))
        if (through := scale_index_table(result)) is not None:
            console.print(through)
        console.print(f"wrote {write_json(result, out)}")
    if opensearch:
        from ksearch.benchmarks.encode import hardware_string
        from ksearch.benchmarks.opensearch_scale import run_opensearch_scale
        from ksearch.benchmarks.opensearch_scale_node import opensearch_url_from_env
        from retrieval.backends.opensearch_seismic import INDEX_PARAMETERS, SEARCH_PARAMETERS

        overrides = _seismic_sets([",".join(seismic_param or [])], INDEX_PARAMETERS, "--seismic-param")[0]
        index_sets = _seismic_sets(seismic_index_set or [""], INDEX_PARAMETERS, "--seismic-index-set")
        searches = _seismic_sets(seismic_search, SEARCH_PARAMETERS, "--seismic-search") if seismic_search else None

        view, dist, vectors = sample_inputs(enc, corpus, queries, splits, config=_bench_config(home), index_name=index,
                                            max_queries=max_queries)
        result = run_opensearch_scale(dist, view.features, enc.feature_names, vectors, passages=opensearch_passages,
                                      versions=[v.strip() for v in opensearch_versions.split(",") if v.strip()],
                                      heap=opensearch_heap, url=opensearch_url_from_env(), seismic_overrides=overrides,
                                      seismic_index_sets=index_sets,
                                      **({"seismic_search": searches} if searches else {}),
                                      say=lambda m: console.print(m, highlight=False))
        import shlex
        import sys

        result.update(model=enc.model_id, hardware=hardware_string(), command=shlex.join(["ksearch", *sys.argv[1:]]),
                      real_index={"passages": int(view.matrix.shape[0]), "features": int(view.matrix.shape[1])})
        console.print(opensearch_scale_table(result))
        console.print(f"wrote {write_json(result, opensearch_out)}")


def _seismic_sets(values: list[str], allowed: tuple[str, ...], option: str) -> list[dict[str, float | int]]:
    """Each `KEY=VALUE,KEY=VALUE` value as SEISMIC parameters, every key one of `allowed` (BadParameter otherwise)."""
    from retrieval.backends.opensearch_seismic import parse_parameters

    out = []
    for value in values:
        try:
            params = parse_parameters([p for p in value.split(",") if p.strip()])
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint=option) from None
        if set(params) - set(allowed):
            raise typer.BadParameter(f"{value!r}: only {', '.join(allowed)} here", param_hint=option)
        out.append(params)
    return out


@bench_app.command("startup")
def bench_startup(
    index: Annotated[str, typer.Option("--index", "-i", help="A prebuilt embedded index to search.")] = "sample",
    repeats: Annotated[int, typer.Option(min=1, help="Fresh processes per command (median).")] = 3,
    app: Annotated[bool, typer.Option("--app/--no-app", help="Also time the app's first search (Streamlit AppTest).")] = True,
    home: BenchHomeOption = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/startup.json"),
) -> None:
    """Cold start: `python -c pass`, `ksearch search`, `ksearch encode` (and the app's first search) in fresh processes."""
    from ksearch.benchmarks.runner import write_json
    from ksearch.benchmarks.startup import run_startup_bench

    result = run_startup_bench(index, repeats, app, home)
    table = Table(title=f"startup: median of {repeats} fresh processes | {result['hardware']} | load average "
                        f"{result['load_average_at_start']:.1f} at start | encoder {result['encoder_backend']}, "
                        f"torch imported: {result['torch_imported']}")
    for col in ("command", "median s", "x python -c pass", "target s", "met"):
        table.add_column(col, justify="left" if col == "command" else "right")
    for name, row in result["rows"].items():
        if "median_s" not in row:
            table.add_row(name, "-", "-", "-", f"error: {row.get('error', '')[:60]}")
            continue
        table.add_row(name, f"{row['median_s']:.2f}", f"{row['x_python']:.1f}", f"{row.get('target_s', '-')}",
                      {True: "met", False: "not met"}.get(row.get("meets_target"), "-"))
    console.print(table)
    console.print(f"wrote {write_json(result, out)}")


@bench_app.command("node-start")
def bench_node_start(
    repeats: Annotated[int, typer.Option(min=1, help="Starts of each flavor (median).")] = 3,
    settle: Annotated[float, typer.Option(help="Seconds after readiness before memory is read.")] = 10.0,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/node-start.json"),
    versions: Annotated[Optional[str], typer.Option(help="Comma-separated OpenSearch versions (default: all).")] = None,
    ml: Annotated[bool, typer.Option("--ml/--no-ml", help="Also the node with ml-commons (`start --ml`).")] = True,
) -> None:
    """The local OpenSearch node of each version, and with ml-commons (`start --ml`): start time, RSS and heap use."""
    from ksearch.benchmarks.node_start import run_node_start_bench
    from ksearch.benchmarks.runner import write_json

    result = run_node_start_bench(repeats, settle, versions.split(",") if versions else None, ml)
    table = Table(title=f"local node start: median of {repeats} | heap {result['heap']} | {result['hardware']} | "
                        f"load average {result['load_average_at_start']:.1f} at start")
    for col in ("node", "start s", f"RSS MB after {settle:g} s", "heap used %", "Java"):
        table.add_column(col, justify="left" if col in ("node", "Java") else "right")
    for name, row in result["rows"].items():
        table.add_row(name, f"{row['start_s']:.1f}", f"{row['rss_mb']:.0f}", f"{row['heap_percent']:.0f}",
                      Path(row["java_home"]).name)
    console.print(table)
    console.print(f"wrote {write_json(result, out)}")


@bench_app.command("cluster-start")
def bench_cluster_start(
    nodes: Annotated[int, typer.Option(min=2, help="Nodes in the cluster.")] = 3,
    settle: Annotated[float, typer.Option(help="Seconds after readiness before memory is read.")] = 10.0,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/cluster-start.json"),
    versions: Annotated[Optional[str], typer.Option(help="Comma-separated OpenSearch versions (default: all).")] = None,
) -> None:
    """A local N-node cluster (`ksearch opensearch start --nodes N`) of each version: start time, each node's RSS
    and heap."""
    from ksearch.benchmarks.cluster_start import run_cluster_start_bench
    from ksearch.benchmarks.runner import write_json

    result = run_cluster_start_bench(nodes, settle, versions.split(",") if versions else None)
    table = Table(title=f"local {nodes}-node cluster | heap {result['heap']} per node | {result['hardware']} | "
                        f"load average {result['load_average_at_start']:.1f} at start")
    for col in ("version", "start s", "node", f"RSS MB after {settle:g} s", "heap used MB", "heap max MB"):
        table.add_column(col, justify="left" if col in ("version", "node") else "right")
    for version, row in result["rows"].items():
        for i, (name, m) in enumerate(row["nodes"].items()):
            table.add_row(version if i == 0 else "", f"{row['start_s']:.1f}" if i == 0 else "", name,
                          f"{m['rss_mb']:.0f}", f"{m['heap_used_mb']:.0f}", f"{m['heap_max_mb']:.0f}")
        table.add_row("", "", "all", f"{row['rss_total_mb']:.0f}", "", "")
    console.print(table)
    console.print(f"wrote {write_json(result, out)}")


@bench_app.command("adapt")
def bench_adapt(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Starting model (default: the shipped model).")] = None,
    corpus: Annotated[Optional[list[Path]], typer.Option(help="Corpus whose first documents are adapted to (any "
                                                        "format ingest reads); repeat it to take documents from the "
                                                        "next when one runs out. A training-pair file "
                                                        "(training_data/*pairs*.jsonl) counts as its passages.")] = None,
    passages: Annotated[int, typer.Option(min=2, help="Passages to adapt to (the first documents that make them).")] = 300,
    minutes: Annotated[Optional[float], typer.Option(min=0.05, help="Training budget, as `ksearch adapt --minutes` "
                                                              "(default: adapt's own, the rest of a 30-minute run).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/adapt.json"),
) -> None:
    """Time `ksearch adapt` on N passages, phase by phase (in a temporary models folder; nothing is kept)."""
    from encoder.model_resolution import SHIPPED_MODEL_ID
    from ksearch.benchmarks.adapt import run_adapt_bench
    from ksearch.benchmarks.runner import write_json

    enc = load_encoder_or_fail(model or SHIPPED_MODEL_ID)
    result = run_adapt_bench(enc, corpus or [Path("sample_data/corpus.jsonl")], passages=passages, minutes=minutes,
                             progress=not quiet)
    console.print(f"adapt: {result['model']} | {result['documents']} documents, {result['passages']} passages | "
                  f"{result['hardware']} | {result['device']} | budget {result['minutes_budget']:.3g} min", highlight=False)
    table = Table()
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    for phase, seconds in result["phases_seconds"].items():
        table.add_row(phase, f"{seconds:.1f}")
    table.add_row("total", f"{result['total_seconds']:.1f}")
    console.print(table)
    console.print(f"{result['steps']} of {result['planned_steps']} planned steps, {result['seconds_per_step']} s/step"
                  f"{' (stopped by the budget)' if result['stopped_by_budget'] else ''}; pairs {result['pairs']}; "
                  f"negatives {result['negatives']}", highlight=False)
    console.print(f"wrote {write_json(result, out)}")


def bench_all_steps(opensearch: bool, sizes: str, results: Path) -> list[list[str]]:
    """The `ksearch` command lines `bench all` runs, in order: what it runs and what the report says it ran."""
    from encoder.model_resolution import SHIPPED_MODEL_ID

    flag = ["--opensearch"] if opensearch else []
    return [["bench", "encode", "--model", SHIPPED_MODEL_ID, "--passages", "256", "--repeats", "3",
             "--out", f"{results}/encode-shipped.json"],
            ["bench", "encode", "--seed-sized", "--passages", "48", "--repeats", "2", "--out", f"{results}/encode-seed-sized.json"],
            ["bench", "query", *flag, "--out", f"{results}/query.json"],
            ["bench", "startup", "--index", "bench-sample", "--out", f"{results}/startup.json"],  # the index bench query built
            ["bench", "ingest", *flag, "--documents", "400", "--out", f"{results}/ingest.json"],
            ["bench", "scale", "--sizes", sizes, "--out", f"{results}/scale.json"]]


def run_command_line(argv: list[str]) -> None:
    """Run one `ksearch` command line in this process; its failure stops the caller with the same exit code."""
    from ksearch.cli import app

    code = typer.main.get_command(app).main(args=argv, prog_name="ksearch", standalone_mode=False)
    if code:
        raise typer.Exit(code)


@bench_app.command("all")
def bench_all(
    opensearch: Annotated[bool, typer.Option("--opensearch", help="Start the local OpenSearch node and benchmark it too.")] = False,
    sizes: Annotated[str, typer.Option(help="Scale sizes.")] = "10000,100000,1000000",
    results: Annotated[Path, typer.Option(help="Results folder.")] = Path("bench/results"),
    doc: Annotated[Path, typer.Option(help="The generated report.")] = Path("docs/benchmarks.md"),
) -> None:
    """encode (shipped model), query, ingest and scale with modest defaults, then write docs/benchmarks.md."""
    import shlex

    from ksearch.benchmarks.report import write_report

    steps = bench_all_steps(opensearch, sizes, results)
    for argv in steps:
        run_command_line(argv)
    flag = " --opensearch" if opensearch else ""
    commands = [shlex.join(["ksearch", *argv]) for argv in steps]
    console.print(f"wrote {write_report(results, doc, ['ksearch bench all' + flag + f' --sizes {sizes}', '# runs:', *commands])}")
