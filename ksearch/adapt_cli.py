"""`ksearch adapt CORPUS --out NAME`: fit the model to a corpus with no labels (the work is in ksearch/adaptation.py)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from ksearch.cli_common import console, fail, load_encoder_or_fail


def adapt(
    corpus: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file, or a folder of .txt files (as ingest reads).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Name of the new model: written to $KSEARCH_HOME/models/NAME, "
                                                        "used with --model NAME.")],
    from_model: Annotated[Optional[str], typer.Option("--from", help="Starting model: folder, cached hub id or a name "
                                                      "under $KSEARCH_HOME/models (default: the shipped model).")] = None,
    minutes: Annotated[Optional[float], typer.Option("--minutes", min=0.05, help="Training time budget in minutes; "
                                                     "training stops cleanly when it is spent (default: what keeps the "
                                                     "whole run within 30 minutes, at least 5 minutes of training).")] = None,
    objective: Annotated[str, typer.Option("--objective", help="distill: learn the margins an ensemble teacher (the "
                                           "starting model and this corpus's BM25) puts between each pseudo-query's "
                                           "passages; contrastive: `ksearch train`'s ranking loss (collapses the "
                                           "vectors, see README).")] = "distill",
    epochs: Annotated[Optional[float], typer.Option("--epochs", min=0.01, help="Passes over the pseudo-queries "
                                                    "(default 2); the --minutes budget usually ends training first.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace NAME if ksearch adapt wrote it earlier (never any "
                                                        "other model).")] = False,
    fmt: Annotated[Optional[str], typer.Option("--format", help="csv|jsonl|parquet|txt (default: from the extension).")] = None,
    id_col: Annotated[str, typer.Option("--id-col", help="Column of document ids.")] = "id",
    text_col: Annotated[str, typer.Option("--text-col", help="Column of document texts.")] = "text",
    title_col: Annotated[str, typer.Option("--title-col", help="Column of titles (optional).")] = "title",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Fit a model to CORPUS with no labels: pseudo-queries from its titles, key nouns and sentences, hard
    negatives from BM25 and the starting model, distilled from the starting model's and BM25's scores of them
    (or `ksearch train`'s ranking loss with --objective contrastive); GPU when present.

    Ctrl-C leaves no model folder; running the same command again resumes.
    """
    from encoder import ModelNotFoundError
    from encoder.model_resolution import SHIPPED_MODEL_ID
    from encoder.onnx_runtime import torch_available
    from ingest import ColumnMapping, InputFileError
    from retrieval.settings import get_settings

    if not torch_available():
        fail("adapting trains the model and needs torch: install the training extra with `pip install -e .[train]`")
    if objective not in ("distill", "contrastive"):
        fail(f"--objective {objective!r}: choose distill or contrastive")
    if not corpus.exists():
        fail(f"{corpus}: no such file or folder")
    from encoder.training.model_install import ModelFolderError
    from ksearch.adaptation import AdaptError, adapt_corpus

    models_dir = get_settings().models_dir
    encoder = load_encoder_or_fail(from_model or SHIPPED_MODEL_ID)
    columns = ColumnMapping(id=id_col, text=text_col, title=title_col)

    def phase_done(name: str, seconds: float) -> None:
        console.print(f"[dim]{name}: {seconds:.1f} s[/dim]", highlight=False)

    try:
        report = adapt_corpus(corpus, out, encoder, models_dir=models_dir, minutes=minutes, force=force, fmt=fmt,
                              columns=columns, progress=not quiet, on_phase=phase_done,
                              recipe_overrides={"objective": objective, **({"epochs": epochs} if epochs else {})})
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/yellow]: no model written to {models_dir / out}; run the same command "
                      f"again to resume", highlight=False)
        raise typer.Exit(130) from None
    except (AdaptError, ModelFolderError, InputFileError, ModelNotFoundError) as exc:
        fail(str(exc))
    _print_summary(report, corpus)


def _print_summary(report, corpus: Path) -> None:
    from rich.markup import escape

    fit = report.fit
    pairs = ", ".join(f"{kind} {count}" for kind, count in sorted(report.pairs.items()))
    negatives = ", ".join(f"{miner} {count}" for miner, count in sorted(report.negatives.items()))
    lines = [
        f"adapted {report.parent_id} to {corpus}: {report.documents} documents -> {report.passages} passages"
        + (f" ({report.passages_used} used)" if report.passages_used < report.passages else "")
        + (f", {len(report.problems)} bad rows skipped" if report.problems else ""),
        f"training pairs: {pairs}; hard negatives: {negatives}" + (" (reused from the interrupted run)"
                                                                   if report.reused_prepared else ""),
        f"trained {fit.steps} of {fit.max_steps} planned steps in {fit.seconds / 60:.1f} min on {fit.device}"
        + (f" (resumed at step {fit.resumed_from_step})" if fit.resumed_from_step else "")
        + (f"; stopped by the {report.minutes:.3g}-minute budget" if fit.stopped_by_budget else ""),
        f"wrote {report.target} (adapt.json records the parent model, the corpus fingerprint and the recipe)",
    ]
    for line in lines:
        console.print(escape(line), highlight=False)
    for problem in report.problems[:10]:
        console.print(f"[dim]skipped {escape(str(problem))}[/dim]", highlight=False)
    if report.onnx_error:
        console.print(f"[yellow]no model.onnx[/yellow] ({escape(report.onnx_error)}): the model runs with torch; "
                      f"write it later with `ksearch model export-onnx {escape(report.name)}`", highlight=False)
    name, path = report.name, shlex.quote(str(corpus))
    console.print("use it:\n"
                  f"  ksearch ingest {escape(path)} --model {escape(name)} --index {escape(name)}\n"
                  f"  ksearch search \"질문\" --index {escape(name)}   (the index remembers its model)", highlight=False)
