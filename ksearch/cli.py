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
    from encoder import ModelNotFoundError, SparseEncoder
    from ksearch.settings import get_settings

    settings = get_settings()
    try:
        return SparseEncoder.load(
            model or settings.model,
            document_pruning=settings.document_pruning,
            query_pruning=settings.query_pruning,
            batch_size=settings.batch_size,
        )
    except ModelNotFoundError as exc:
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
    out: Annotated[Path, typer.Option(help="Where to write the JSON results.")] = Path("bench/results/encode.json"),
) -> None:
    """Card loop vs batched vs optimised encoders: passages/s, peak memory, ratio, parity."""
    from ksearch.benchmarks.encode import run_encode_bench

    if not seed_sized and model is None:
        from ksearch.settings import get_settings

        model = get_settings().model
    result = run_encode_bench(model, seed_sized, passages, batch_size, tokens, corpus, repeats)
    table = Table(title=f"encode: {result['model']} | {result['passages']} passages, ~{result['mean_tokens']:.0f} tokens | {result['hardware']}")
    for col in ("variant", "passages/s", "x card loop", "peak RSS MiB", "peak extra MiB", "top-20 overlap"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for v in result["variants"]:
        overlap = "-" if v["top20_overlap_vs_fp32"] is None else f"{v['top20_overlap_vs_fp32']:.3f}"
        table.add_row(v["name"], f"{v['passages_per_s']:.2f}",
                      f"{v['speedup_vs_card']:.2f}", f"{v['peak_rss_mb']:.0f}", f"{v['peak_extra_mb']:.0f}", overlap)
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    console.print(f"wrote {out}")


from ksearch.opensearch_cli import opensearch_app  # noqa: E402

app.add_typer(opensearch_app, name="opensearch")


if __name__ == "__main__":
    app()
