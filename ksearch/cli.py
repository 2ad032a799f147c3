"""`ksearch`: the one command-line entry point (encode, ingest, search, eval, index, train, adapt, bench, opensearch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ksearch.adapt_cli import adapt
from ksearch.bench_cli import bench_app
from ksearch.cli_common import ModelOption, console
from ksearch.cli_common import fail as _fail  # the command bodies below call these two by their old names
from ksearch.cli_common import load_encoder_or_fail as _load_encoder
from ksearch.encoding_cli import SearchEncodingOption, SearchModelIdOption, check_encoding_options, check_query_model
from ksearch.index_cli import index_app
from ksearch.ingest_cli import BackendOption, IndexOption, ingest
from ksearch.ingest_cli import backend_config as _backend_config
from ksearch.ingest_cli import index_name as _index_name
from ksearch.ingest_cli import run_ingest as _run_ingest
from ksearch.model_cli import model_app
from ksearch.opensearch_cli import opensearch_app

app = typer.Typer(help="Korean legal and medical search with a learned sparse encoder.", no_args_is_help=True)
app.add_typer(model_app, name="model")


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


app.command()(ingest)


# ---------------------------------------------------------------------- search, eval
def _open_searcher(index: str | None, backend: str, model: str | None, encoding: str = "client",
                   query_model_id: str | None = None):
    """Open an index and an encoder sharing its vocabulary (default model: the index's own when loadable); `encoding`
    server: queries encoded by the index's deployed model (or `query_model_id`)."""
    from encoder import ModelNotFoundError
    from retrieval.backends import open_index
    from retrieval.errors import IndexNotFoundError, RetrievalError
    from retrieval.opening import encoder_for_index, missing_index_message
    from retrieval.searcher import Searcher
    from retrieval.settings import get_settings

    name, config = _index_name(index), _backend_config()
    try:
        store = open_index(name, backend=backend, config=config, query_model_id=query_model_id)
    except IndexNotFoundError as exc:
        _fail(missing_index_message(name, config.home) if backend == "embedded" else str(exc))
    except (RetrievalError, ValueError) as exc:
        _fail(str(exc))
    try:
        enc = encoder_for_index(get_settings(), store.meta.model_id, model)
    except (ModelNotFoundError, ValueError) as exc:
        store.close()
        _fail(str(exc))
    try:
        check_query_model(store, enc, query_model_id)
        return Searcher(enc, store, encoding=encoding, hybrid_weight=get_settings().hybrid_weight)
    except RetrievalError as exc:
        store.close()
        _fail(str(exc))


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
    encoding: SearchEncodingOption = "client",
    model_id: SearchModelIdOption = None,
) -> None:
    """Search an index: documents ranked by their best passage, with matched and expansion tokens."""
    from rich.markup import escape

    from retrieval.errors import RetrievalError

    if mode not in ("sparse", "neural_sparse", "rank_feature", "bm25", "hybrid"):
        _fail(f"--mode must be sparse (or neural_sparse), rank_feature, bm25 or hybrid, not {mode!r}")
    check_encoding_options(encoding, backend, model_id)
    searcher = _open_searcher(index, backend, model, encoding, model_id)
    with searcher.backend:  # closed before printing (an OpenSearch index holds a client)
        try:
            result = searcher.search(query, mode, k, domain=domain, per_document=not passages)
        except RetrievalError as exc:
            _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        return
    tokens = ", ".join(f"{t} {w:.2f}" for t, w in list(result.query_tokens.items())[:15])
    console.print(f"[bold]{escape(query)}[/bold]  ({mode}, {len(result.hits)} hits, {result.took_ms:.0f} ms"
                  f"{', query encoded in OpenSearch' if result.encoding == 'server' else ''})\n"
                  f"query tokens: {escape(tokens)}", highlight=False)
    if result.notice:
        console.print(f"[yellow]note:[/yellow] {escape(result.notice)}", highlight=False)
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
    collection: Annotated[Optional[Path], typer.Option("--collection", help="A test collection folder (corpus.jsonl, "
                          "queries.jsonl, qrels.tsv, splits.json), e.g. eval_data/ood-legal: its corpus is brought up to date "
                          "in index eval-NAME first (unchanged passages are skipped).")] = None,
    queries: Annotated[Optional[Path], typer.Option("--queries", help="JSONL with id and text (and style); default: the "
                       "collection's (sample_data/queries.jsonl).")] = None,
    qrels: Annotated[Optional[Path], typer.Option("--qrels", help="TREC qrels: QID 0 DOCID REL.")] = None,
    splits: Annotated[Optional[Path], typer.Option("--splits", help="JSON {split: [query ids]}; default: the collection's "
                      "when --queries is not given.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Split to evaluate, 'all' for every query (default: test "
                     "with a splits file, else all).")] = None,
    backend: BackendOption = "embedded",
    index: IndexOption = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"sparse": {...}, "bm25": {...}, "hybrid": {...}}.')] = False,
    run_out: Annotated[Optional[Path], typer.Option("--run-out", help="Write DIR/<mode>.run TREC run files (top 100).")] = None,
    by_style: Annotated[bool, typer.Option("--by-style", help="Also break metrics down by query style.")] = False,
    answer_spans: Annotated[Optional[Path], typer.Option("--answer-spans", help="JSONL {query_id, doc_id, answer}: count "
                            "how often the passage shown holds the answer (default: the collection's, when it has one).")] = None,
    model: ModelOption = None,
) -> None:
    """nDCG@10, MRR@10, Recall@10/100 of sparse, BM25 and hybrid on the same judged queries (ranx)."""
    from retrieval.errors import RetrievalError
    from retrieval.evaluation import (METRICS, Collection, evaluate_modes, read_answer_spans, read_qrels, read_queries,
                                      read_split, write_trec_runs)

    own = Collection(collection or Path("sample_data"))
    if collection is not None:
        try:
            own.check()
        except ValueError as exc:
            _fail(str(exc))
        index = index or f"eval-{collection.resolve().name}"
    if queries is None:  # the collection's own queries, judgments, splits and answer spans
        queries, qrels = own.queries, qrels or own.qrels
        splits = splits or (own.splits if own.splits.is_file() else None)
        answer_spans = answer_spans or (own.answer_spans if own.answer_spans.is_file() else None)
    elif qrels is None:
        _fail("--queries needs --qrels (TREC: QID 0 DOCID REL)")
    split = split or ("test" if splits is not None else "all")
    for label, path in (("--queries", queries), ("--qrels", qrels), ("--splits", splits), ("--answer-spans", answer_spans)):
        if path is not None and not path.is_file():
            _fail(f"{label} {path}: no such file")
    used_split = None
    try:
        judged = read_queries(queries)
        relevance = read_qrels(qrels)
        spans = read_answer_spans(answer_spans) if answer_spans is not None else []
        if split != "all":
            if splits is None:
                _fail(f"--split {split} needs a splits file (--splits)")
            wanted = read_split(splits, split)
            judged, used_split = [q for q in judged if q.id in wanted], split
    except ValueError as exc:
        _fail(str(exc))
    if collection is not None:  # resumable: unchanged passages are skipped, a changed model re-encodes
        _run_ingest(own.corpus, backend, _index_name(index), model, quiet=True, summary=not as_json)
    searcher = _open_searcher(index, backend, model)
    with searcher.backend:
        try:
            result = evaluate_modes(searcher, judged, relevance, by_style=by_style, answer_spans=spans)
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
    for mode, values in result.answer_passage.items():
        console.print(f"  {mode:7s} answer in the passage shown: {values['holds']:.0f} of {values['retrieved']:.0f} "
                      f"retrieved judged documents ({values['rate']:.1%}; {values['pairs']:.0f} answer spans)", highlight=False)
    console.print(f"average non-zero weights: query {result.meta['avg_query_nonzero_weights']:.1f}, "
                  f"passage {result.meta['avg_passage_nonzero_weights']:.1f}", highlight=False)
    if run_out is not None:
        console.print(f"wrote {run_out}/{{sparse,bm25,hybrid}}.run", highlight=False)


@app.command("eval-expansions")
def eval_expansions(
    probe: Annotated[Path, typer.Option("--probe", help="JSONL {id, text, expected: [words]}.")] = Path("eval_data/expansion_probe.jsonl"),
    top: Annotated[int, typer.Option("--top", min=1, help="Expansion tokens judged per query.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary and every query's judged expansions.")] = False,
    model: ModelOption = None,
) -> None:
    """Share of the words the model adds to everyday queries that are related to them (expansion quality)."""
    from retrieval.expansion_quality import evaluate_expansions, read_probe

    if not probe.is_file():
        _fail(f"--probe {probe}: no such file")
    try:
        queries = read_probe(probe)
    except ValueError as exc:
        _fail(str(exc))
    enc = _load_encoder(model)
    summary, results = evaluate_expansions(enc, queries, top)
    summary["model"] = enc.model_id
    if as_json:
        typer.echo(json.dumps({"summary": summary, "queries": [r.to_json() for r in results]}, ensure_ascii=False))
        return
    for r in results[:10]:
        shown = ", ".join(f"{t}{'' if ok else '✗'}" for (t, _), ok in zip(r.expansions, r.related))
        console.print(f"{r.query.text}  →  {shown}", highlight=False, markup=False)
    console.print(f"{summary['queries']} probe queries, model {enc.model_id}: {summary['related_share']:.1%} of "
                  f"{summary['expansion_tokens']} top-{top} expansion tokens related (per query "
                  f"{summary['related_share_per_query']:.1%}; ✗ = judged unrelated)", highlight=False)


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


app.command()(adapt)
app.add_typer(bench_app, name="bench")
app.add_typer(opensearch_app, name="opensearch")
app.add_typer(index_app, name="index")


if __name__ == "__main__":
    app()
