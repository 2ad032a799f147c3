"""`ksearch`: the one command-line entry point (encode, ingest, search, eval, bench, opensearch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Korean legal and medical search with a learned sparse encoder.", no_args_is_help=True)
model_app = typer.Typer(help="Manage encoder models.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print figures and ratios measured side by side.", no_args_is_help=True)
app.add_typer(model_app, name="model")
app.add_typer(bench_app, name="bench")
console = Console(width=None if Console().is_terminal else 120)

ModelOption = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Model folder or cached hub id (default: $KSEARCH_MODEL, production, shipped)."),
]


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(2)


def _load_encoder(model: str | None):
    from encoder import ModelNotFoundError
    from ksearch.opening import load_encoder

    try:
        return load_encoder(model)
    except (ModelNotFoundError, ValueError) as exc:  # ValueError: a bad setting (precision, pruning, ksearch.json)
        _fail(str(exc))


@app.command()
def encode(
    text: Annotated[str, typer.Argument(help="Korean text to encode.")],
    model: ModelOption = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many tokens to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"tokens": {feature: weight}}.')] = False,
    document: Annotated[bool, typer.Option("--document", help="Encode as a document (document pruning).")] = False,
) -> None:
    """Print the heaviest tokens of TEXT's sparse vector (the model card's get_top_tokens)."""
    enc = _load_encoder(model)
    vector = (enc.encode_documents if document else enc.encode_queries)([text])[0]
    top = dict(list(vector.items())[:top_k])
    if as_json:
        typer.echo(json.dumps({"tokens": {k: round(v, 4) for k, v in top.items()}}, ensure_ascii=False))
        return
    table = Table(title=f"{enc.model_id}: {len(vector)} non-zero tokens")
    table.add_column("token")
    table.add_column("feature name", style="dim")
    table.add_column("weight", justify="right")
    for name, weight in top.items():
        table.add_row(enc.display_token(name), name, f"{weight:.4f}")
    console.print(table)


@model_app.command("pull")
def model_pull(model_id: Annotated[str, typer.Argument(help="Hugging Face hub id, e.g. sewoong/korean-neural-sparse-encoder-v1")]) -> None:
    """Download a model into the local Hugging Face cache (the only command that uses the network)."""
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(model_id)
    except Exception as exc:  # the hub client raises many network error types
        _fail(f"could not download {model_id!r}: {type(exc).__name__}: {exc}")
    console.print(f"downloaded {model_id} to {path}")


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
    from ksearch.benchmarks.encode import meets_target, run_encode_bench
    from ksearch.benchmarks.parity import ParityData
    from ksearch.benchmarks.runner import write_json

    if not seed_sized and model is None:
        from ksearch.settings import get_settings

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
    console.print(f"wrote {write_json(result, out)}")


CorpusOption = Annotated[Path, typer.Option(help="JSONL corpus the benchmark indexes.")]
QueriesOption = Annotated[Path, typer.Option(help="Sample queries (JSONL with id and text).")]
SplitsOption = Annotated[Path, typer.Option(help="Query splits (JSON).")]
BenchHomeOption = Annotated[Optional[Path], typer.Option("--home", help="Where bench indexes live (default: $KSEARCH_HOME).")]


def _bench_home(home: Path | None) -> Path:
    from ksearch.settings import get_settings

    return Path(home or get_settings().home)


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

    enc = _load_encoder(model)
    result = run_query_bench(enc, corpus, queries, splits, split=split, home=_bench_home(home), index_name=index,
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

    enc = _load_encoder(model)
    with bench_opensearch(opensearch) as url:
        result = run_ingest_bench(enc, corpus, documents=documents, opensearch=url is not None)
    console.print(ingest_table(result))
    console.print(f"wrote {write_json(result, out)}")


@bench_app.command("scale")
def bench_scale(
    model: ModelOption = None,
    sizes: Annotated[str, typer.Option(help="Synthetic corpus sizes, comma-separated (e.g. 10000,100000,1000000).")] = "10000,100000",
    approximate: Annotated[bool, typer.Option(help="Also build a Seismic index and measure recall@10 vs exact.")] = True,
    max_queries: Annotated[int, typer.Option(min=1)] = 200,
    corpus: CorpusOption = Path("sample_data/corpus.jsonl"),
    queries: QueriesOption = Path("sample_data/queries.jsonl"),
    splits: SplitsOption = Path("sample_data/splits.json"),
    index: Annotated[str, typer.Option(help="Real index whose vectors are sampled.")] = "bench-sample",
    home: BenchHomeOption = None,
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/scale.json"),
) -> None:
    """Exact and approximate query latency, memory and recall on synthetic corpora shaped like the real vectors."""
    from ksearch.benchmarks.runner import scale_table, write_json
    from ksearch.benchmarks.scale import run_scale_bench

    enc = _load_encoder(model)
    result = run_scale_bench(enc, corpus, queries, splits, home=_bench_home(home), index_name=index,
                             sizes=[int(s) for s in sizes.split(",") if s.strip()], max_queries=max_queries,
                             approximate=approximate)
    console.print(scale_table(result))
    console.print(f"wrote {write_json(result, out)}")


@bench_app.command("all")
def bench_all(
    opensearch: Annotated[bool, typer.Option("--opensearch", help="Start the local OpenSearch node and benchmark it too.")] = False,
    sizes: Annotated[str, typer.Option(help="Scale sizes.")] = "10000,100000,1000000",
    results: Annotated[Path, typer.Option(help="Results folder.")] = Path("bench/results"),
    doc: Annotated[Path, typer.Option(help="The generated report.")] = Path("docs/benchmarks.md"),
) -> None:
    """encode (shipped model), query, ingest and scale with modest defaults, then write docs/benchmarks.md."""
    from encoder.model_resolution import SHIPPED_MODEL_ID
    from ksearch.benchmarks.report import write_report

    flag = " --opensearch" if opensearch else ""
    commands = [f"ksearch bench encode --model {SHIPPED_MODEL_ID} --passages 256 --repeats 3 --out {results}/encode-shipped.json",
                f"ksearch bench encode --seed-sized --passages 48 --repeats 2 --out {results}/encode-seed-sized.json",
                f"ksearch bench query{flag} --out {results}/query.json",
                f"ksearch bench ingest{flag} --documents 400 --out {results}/ingest.json",
                f"ksearch bench scale --sizes {sizes} --out {results}/scale.json"]
    bench_encode(model=SHIPPED_MODEL_ID, passages=256, repeats=3, out=results / "encode-shipped.json",
                 seed_sized=False, batch_size=32, tokens=48, corpus=Path("sample_data/corpus.jsonl"))
    bench_encode(model=None, passages=48, repeats=2, out=results / "encode-seed-sized.json", seed_sized=True,
                 batch_size=32, tokens=48, corpus=Path("sample_data/corpus.jsonl"))
    bench_query(opensearch=opensearch, out=results / "query.json")
    bench_ingest(opensearch=opensearch, out=results / "ingest.json")
    bench_scale(sizes=sizes, out=results / "scale.json")
    console.print(f"wrote {write_report(results, doc, ['ksearch bench all' + flag + f' --sizes {sizes}', '# runs:', *commands])}")


# ---------------------------------------------------------------------- ingest, search, eval
IndexOption = Annotated[Optional[str], typer.Option("--index", "-i", help="Index name (default: $KSEARCH_INDEX, 'sample').")]
BackendOption = Annotated[str, typer.Option("--backend", help="Search backend: embedded (a folder under $KSEARCH_HOME) "
                                                              "or opensearch ($KSEARCH_OPENSEARCH_URL).")]


def _index_name(index: str | None) -> str:
    from ksearch.settings import get_settings

    return index or get_settings().index


def _open_searcher(index: str | None, backend: str, model: str | None):
    """Open an index and an encoder sharing its vocabulary (default model: the index's own when loadable)."""
    from encoder import ModelNotFoundError
    from ksearch.opening import encoder_for_index, missing_index_message
    from retrieval.backends import open_index
    from retrieval.errors import IndexNotFoundError, RetrievalError
    from retrieval.searcher import Searcher

    name = _index_name(index)
    try:
        store = open_index(name, backend=backend)
    except IndexNotFoundError as exc:
        _fail(missing_index_message(name) if backend == "embedded" else str(exc))
    except (RetrievalError, ValueError) as exc:
        _fail(str(exc))
    try:
        enc = encoder_for_index(store.meta.model_id, model)
    except (ModelNotFoundError, ValueError) as exc:
        _fail(str(exc))
    try:
        return Searcher(enc, store)
    except RetrievalError as exc:
        _fail(str(exc))


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file, or a folder of .txt files (one document each).")],
    backend: BackendOption = "embedded",
    index: IndexOption = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="csv|jsonl|parquet|txt (default: from the extension).")] = None,
    id_col: Annotated[str, typer.Option("--id-col", help="Column of document ids.")] = "id",
    text_col: Annotated[str, typer.Option("--text-col", help="Column of document texts.")] = "text",
    title_col: Annotated[str, typer.Option("--title-col", help="Column of titles (optional).")] = "title",
    domain_col: Annotated[str, typer.Option("--domain-col", help="Column of domains (legal|medical).")] = "domain",
    domain: Annotated[Optional[str], typer.Option("--domain", help="Domain of rows without a domain column/value.")] = None,
    model: ModelOption = None,
    write_batch: Annotated[int, typer.Option("--write-batch", min=1, envvar="KSEARCH_WRITE_BATCH",
                                             help="Passages per durable write.")] = 256,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="OpenSearch: build a new concrete index and swap the "
                                                            "alias to it at the end (searches see the old one until then).")] = False,
) -> None:
    """Split, encode and store documents; re-running skips what is stored and replaces what changed."""
    from ingest import ColumnMapping, InputFileError, ingest_path
    from retrieval.backends import open_or_create_index
    from retrieval.errors import RetrievalError
    from retrieval.index_meta import IndexMeta

    from ingest.readers import infer_format

    if not path.exists():
        _fail(f"{path}: no such file or folder")
    try:
        infer_format(path, fmt)
    except InputFileError as exc:
        _fail(str(exc))
    enc = _load_encoder(model)
    name = _index_name(index)
    columns = ColumnMapping(id=id_col, text=text_col, title=title_col, domain_col=domain_col, domain=domain)
    try:
        store = open_or_create_index(name, IndexMeta.for_encoder(name, enc), backend=backend, rebuild=rebuild)
    except (RetrievalError, ValueError) as exc:
        _fail(str(exc))
    try:
        report = ingest_path(path, store, enc, fmt=fmt, columns=columns, write_batch=write_batch, progress=not quiet)
    except (InputFileError, RetrievalError) as exc:
        _fail(str(exc))
    finally:
        store.close()
    err = Console(stderr=True, width=console.width)
    for problem in report.problems[:50]:
        err.print(f"skipped {problem}", highlight=False, markup=False)
    if len(report.problems) > 50:
        err.print(f"... and {len(report.problems) - 50} more bad rows", highlight=False)
    for rejected in report.rejected[:50]:
        err.print(f"rejected {rejected.passage_id}: {rejected.reason}", highlight=False, markup=False)
    dead_letters = getattr(store, "dead_letter_file", None)
    if report.rejected and dead_letters is not None:
        err.print(f"{len(report.rejected)} rejected passages written to {dead_letters}", highlight=False, markup=False)
    console.print(
        f"index {name!r}: read {report.documents_read} documents -> {report.passages} passages; "
        f"written {report.written}, skipped (unchanged) {report.skipped_unchanged}, "
        f"removed stale {report.deleted_stale}, failed {report.failed}"
        + (f", rejected by the backend {len(report.rejected)}" if report.rejected else "")
        + (f", duplicates ignored {report.duplicates_ignored}" if report.duplicates_ignored else "")
        + (f" ({report.passages_per_second:.1f} passages/s)" if report.written else ""),
        highlight=False, markup=False,
    )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Korean query text.")],
    backend: BackendOption = "embedded",
    index: IndexOption = None,
    mode: Annotated[str, typer.Option("--mode", help="sparse (= neural_sparse) | rank_feature | bm25 | hybrid")] = "sparse",
    domain: Annotated[Optional[str], typer.Option("--domain", help="Only this domain (legal | medical).")] = None,
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="How many results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    passages: Annotated[bool, typer.Option("--passages", help="Rank passages instead of documents.")] = False,
    model: ModelOption = None,
) -> None:
    """Search an index: documents ranked by their best passage, with matched and expansion tokens."""
    from rich.markup import escape

    from retrieval.errors import RetrievalError

    if mode not in ("sparse", "neural_sparse", "rank_feature", "bm25", "hybrid"):
        _fail(f"--mode must be sparse (or neural_sparse), rank_feature, bm25 or hybrid, not {mode!r}")
    searcher = _open_searcher(index, backend, model)
    try:
        result = searcher.search(query, mode, k, domain=domain, per_document=not passages)
    except RetrievalError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    tokens = ", ".join(f"{t} {w:.2f}" for t, w in list(result.query_tokens.items())[:15])
    console.print(f"[bold]{escape(query)}[/bold]  ({mode}, {len(result.hits)} hits, {result.took_ms:.0f} ms)\n"
                  f"query tokens: {escape(tokens)}", highlight=False)
    for rank, item in enumerate(result.hits, start=1):
        h = item.hit
        console.print(f"\n[bold]{rank}. {escape(h.title or h.doc_id)}[/bold]  [dim]{escape(h.id)} {escape(h.domain)}[/dim]"
                      f"  score {h.score:.4f}", highlight=False)
        console.print(escape(h.text if len(h.text) <= 300 else h.text[:300] + "…"), highlight=False)
        matched = ", ".join(f"{t} {w:.2f}" for t, w in list(item.matched_tokens.items())[:10]) or "-"
        expansion = ", ".join(f"{t} {w:.2f}" for t, w in item.top_expansion_tokens().items()) or "-"
        lines = f"[green]matched:[/green] {escape(matched)}\n[cyan]expansion:[/cyan] {escape(expansion)}"
        if item.unmatched_query_tokens:
            lines += f"\n[yellow]not in this passage:[/yellow] {escape(', '.join(item.unmatched_query_tokens))}"
        console.print(lines, highlight=False)


@app.command("eval")
def evaluate(
    queries: Annotated[Path, typer.Option("--queries", help="JSONL with id and text (and style).")] = Path("sample_data/queries.jsonl"),
    qrels: Annotated[Path, typer.Option("--qrels", help="TREC qrels: QID 0 DOCID REL.")] = Path("sample_data/qrels.tsv"),
    splits: Annotated[Optional[Path], typer.Option("--splits", help="JSON {split: [query ids]}; ignored when missing.")] = Path("sample_data/splits.json"),
    split: Annotated[str, typer.Option("--split", help="Split to evaluate; 'all' for every query.")] = "test",
    backend: BackendOption = "embedded",
    index: IndexOption = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"sparse": {...}, "bm25": {...}, "hybrid": {...}}.')] = False,
    run_out: Annotated[Optional[Path], typer.Option("--run-out", help="Write DIR/<mode>.run TREC run files (top 100).")] = None,
    by_style: Annotated[bool, typer.Option("--by-style", help="Also break metrics down by query style.")] = False,
    model: ModelOption = None,
) -> None:
    """nDCG@10, MRR@10, Recall@10/100 of sparse, BM25 and hybrid on the same judged queries (ranx)."""
    from retrieval.errors import RetrievalError
    from retrieval.evaluation import METRICS, evaluate_modes, read_qrels, read_queries, read_split, write_trec_runs

    for label, path in (("--queries", queries), ("--qrels", qrels)):
        if not path.is_file():
            _fail(f"{label} {path}: no such file")
    used_split = None
    try:
        judged = read_queries(queries)
        relevance = read_qrels(qrels)
        if split != "all" and splits is not None and splits.is_file():
            wanted = read_split(splits, split)
            judged, used_split = [q for q in judged if q.id in wanted], split
    except ValueError as exc:
        _fail(str(exc))
    searcher = _open_searcher(index, backend, model)
    try:
        result = evaluate_modes(searcher, judged, relevance, by_style=by_style)
    except (ValueError, RetrievalError) as exc:
        _fail(str(exc))
    result.meta.update({"index": _index_name(index), "split": used_split})
    if run_out is not None:
        write_trec_runs(result.runs, run_out)
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    table = Table(title=f"{result.meta['queries']} queries ({used_split or 'all'}), index {result.meta['index']!r}, "
                        f"model {result.meta['model']}")
    table.add_column("mode")
    for m in METRICS:
        table.add_column(m, justify="right")
    for mode, values in result.metrics.items():
        table.add_row(mode, *(f"{values[m]:.4f}" for m in METRICS))
    console.print(table)
    for mode, styles in result.by_style.items():
        for style, values in styles.items():
            console.print(f"  {mode:7s} {style:12s} " + "  ".join(f"{m} {values[m]:.4f}" for m in METRICS), highlight=False)
    console.print(f"average non-zero weights: query {result.meta['avg_query_nonzero_weights']:.1f}, "
                  f"passage {result.meta['avg_passage_nonzero_weights']:.1f}", highlight=False)
    if run_out is not None:
        console.print(f"wrote {run_out}/{{sparse,bm25,hybrid}}.run", highlight=False)


@app.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", exists=True, dir_okay=False, help="TOML training config.")],
    stage: Annotated[str, typer.Option(help="all | prepare (Kiwi, BM25 mining: CPU) | fit (torch: CPU or GPU).")] = "all",
) -> None:
    """Train (or fine-tune) a SPLADE encoder as the config says; writes a model folder SparseEncoder loads."""
    import logging

    from encoder.training.config import TrainConfig
    from encoder.training.recipe import fit, prepare

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if stage not in ("all", "prepare", "fit"):
        _fail(f"--stage must be all, prepare or fit, not {stage!r}")
    try:
        cfg = TrainConfig.from_file(config)
    except (ValueError, OSError) as exc:
        _fail(f"{config}: {exc}")
    prepared = cfg.work_dir / "prepared"
    if stage in ("all", "prepare"):
        prepared = prepare(cfg)
        console.print(f"prepared training data in {prepared}")
    if stage in ("all", "fit"):
        if not (prepared / "prepared.json").is_file():
            _fail(f"{prepared} has no prepared data: run with --stage prepare first")
        out = fit(cfg, prepared)
        console.print(f"model written to {out}")


from ksearch.opensearch_cli import opensearch_app  # noqa: E402

app.add_typer(opensearch_app, name="opensearch")


if __name__ == "__main__":
    app()
