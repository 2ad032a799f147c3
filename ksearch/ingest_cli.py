"""`ksearch ingest`: split, encode and store a corpus (the command, and the run with its summary that `ksearch eval`
reuses to index a test collection)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ksearch.cli_common import ModelOption, console, fail, load_encoder_or_fail
from ksearch.encoding_cli import (DocumentModelIdOption, IngestEncodingOption, QueryModelIdOption,
                                  check_encoding_options, open_store_for_ingest)

IndexOption = Annotated[Optional[str], typer.Option("--index", "-i", help="Index name (default: $KSEARCH_INDEX, 'sample').")]
BackendOption = Annotated[str, typer.Option("--backend", help="Search backend: embedded (a folder under $KSEARCH_HOME) "
                                                              "or opensearch ($KSEARCH_OPENSEARCH_URL).")]


def index_name(index: str | None) -> str:
    """The index named, else $KSEARCH_INDEX (default 'sample')."""
    from retrieval.settings import get_settings

    return index or get_settings().index


def backend_config():  # -> retrieval.backends.BackendConfig
    """The backend settings of the environment ($KSEARCH_HOME, $KSEARCH_OPENSEARCH_URL, ...)."""
    from retrieval.settings import get_settings

    return get_settings().backend_config()


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
    encoding: IngestEncodingOption = None,
    model_id: DocumentModelIdOption = None,
    query_model_id: QueryModelIdOption = None,
    ann: Annotated[bool, typer.Option("--ann", help="OpenSearch 3.3+: create the index with a sparse_vector field and "
                                                    "the SEISMIC approximate method (token-id keys) instead of "
                                                    "rank_features.")] = False,
    ann_param: Annotated[Optional[list[str]], typer.Option("--ann-param", help="With --ann: a SEISMIC parameter, "
                         "KEY=VALUE (n_postings, cluster_ratio, summary_prune_ratio, approximate_threshold, "
                         "quantization_ceiling_search/_ingest; search: top_n, heap_factor, k). Repeatable.")] = None,
) -> None:
    """Split, encode and store documents; re-running skips what is stored and replaces what changed."""
    from ingest import ColumnMapping

    check_encoding_options(encoding, backend, model_id, query_model_id)
    if ann_param and not ann:
        fail("--ann-param needs --ann")
    columns = ColumnMapping(id=id_col, text=text_col, title=title_col, domain_col=domain_col, domain=domain)
    run_ingest(path, backend, index_name(index), model, fmt=fmt, columns=columns, write_batch=write_batch,
               quiet=quiet, rebuild=rebuild, encoding=encoding, model_ids=(model_id, query_model_id),
               ann=list(ann_param or []) if ann else None)


def run_ingest(path: Path, backend: str, name: str, model: str | None, *, fmt: str | None = None, columns=None,
               write_batch: int = 256, quiet: bool = False, rebuild: bool = False, summary: bool = True,
               encoding: str | None = None, model_ids: tuple[str | None, str | None] = (None, None),
               ann: list[str] | None = None) -> None:
    """Ingest PATH into index NAME and print the summary (bad rows and rejected passages on stderr); `encoding`
    server: the OpenSearch models `model_ids` (documents, queries; default: registered here) encode; `ann`: the
    SEISMIC parameters of a sparse_vector index (--ann)."""
    from ingest import ColumnMapping, InputFileError, ingest_path
    from ingest.readers import infer_format
    from retrieval.errors import RetrievalError
    from retrieval.settings import get_settings

    if not path.exists():
        fail(f"{path}: no such file or folder")
    try:
        infer_format(path, fmt)
    except InputFileError as exc:
        fail(str(exc))
    enc = load_encoder_or_fail(model)
    try:
        seismic = None
        if ann is not None:
            from retrieval.backends.opensearch_seismic import SeismicTokens, parse_parameters

            seismic = SeismicTokens(enc.feature_names, parse_parameters(ann))
        store = open_store_for_ingest(name, enc, backend=backend, config=backend_config(), rebuild=rebuild,
                                      encoding=encoding, document_model_id=model_ids[0], query_model_id=model_ids[1],
                                      models_dir=get_settings().models_dir, seismic=seismic)
    except (RetrievalError, ValueError, RuntimeError, OSError) as exc:  # RuntimeError: exporting the model
        fail(str(exc))
    try:
        report = ingest_path(path, store, enc, fmt=fmt, columns=columns or ColumnMapping(), write_batch=write_batch,
                             progress=not quiet)
    except (InputFileError, RetrievalError) as exc:
        fail(str(exc))
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
    if not summary:
        return
    console.print(
        f"index {name!r}: read {report.documents_read} documents -> {report.passages} passages; "
        f"written {report.written}, skipped (unchanged) {report.skipped_unchanged}, "
        f"removed stale {report.deleted_stale}, failed {report.failed}"
        + (f", rejected by the backend {len(report.rejected)}" if report.rejected else "")
        + (f", duplicates ignored {report.duplicates_ignored}" if report.duplicates_ignored else "")
        + (f" ({report.passages_per_second:.1f} passages/s)" if report.written else ""),
        highlight=False, markup=False,
    )
