"""`ksearch model ...`: fetch a model, and export it for the light runtime (ONNX) or for OpenSearch (TorchScript)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ksearch.cli_common import console, fail

model_app = typer.Typer(help="Manage encoder models.", no_args_is_help=True)
notes = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)  # stdout stays the JSON body, for scripts

ModelArgument = Annotated[Optional[str], typer.Argument(help="Model folder or cached hub id (default: the model search uses).")]


def _require_torch() -> None:
    from encoder.onnx_runtime import torch_available

    if not torch_available():
        fail("exporting needs torch: install the training extra with `pip install -e .[train]`")


@model_app.command("pull")
def model_pull(model_id: Annotated[str, typer.Argument(help="Hugging Face hub id, e.g. sewoong/korean-neural-sparse-encoder-v1")]) -> None:
    """Download a model into the local Hugging Face cache (the only command that uses the network)."""
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(model_id)
    except Exception as exc:  # the hub client raises many network error types
        fail(f"could not download {model_id!r}: {type(exc).__name__}: {exc}")
    console.print(f"downloaded {model_id} to {path}")


@model_app.command("export-onnx")
def model_export_onnx(
    model: ModelArgument = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Folder for model.onnx (default: the model folder).")] = None,
) -> None:
    """Write MODEL's model.onnx: the light runtime that searches and ingests without torch (needs the train extra).

    Run it again whenever the folder's weights change: a model.onnx exported from other weights is not used.
    """
    from encoder import ModelNotFoundError

    _require_torch()
    from encoder.onnx_export import export_onnx

    from retrieval.settings import get_settings

    try:
        path = export_onnx(model, out, models_dir=get_settings().models_dir)
    except (ModelNotFoundError, OSError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    console.print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB)")


@model_app.command("export-opensearch")
def model_export_opensearch(
    model: ModelArgument = None,
    out: Annotated[Path, typer.Option("--out", help="The zip to write (FILE.zip).")] = Path("model.zip"),
    queries: Annotated[bool, typer.Option("--queries", help="Export the query model: the folder's query pruning "
                                                           "applied inside the model (neural_sparse does not prune).")] = False,
    url: Annotated[Optional[str], typer.Option("--url", help="Where the node reads the zip (default: its file:// URL).")] = None,
    chunked: Annotated[bool, typer.Option("--chunked", help="Print the _register_meta body (upload in chunks) "
                                                           "instead of _register with a URL.")] = False,
    version: Annotated[str, typer.Option("--version", help="Registered model version.")] = "1.0.0",
) -> None:
    """Write MODEL as a TorchScript zip for OpenSearch ml-commons (SPARSE_ENCODING) and print its register body.

    stdout: the JSON body of POST /_plugins/_ml/models/_register (or _register_meta with --chunked).
    stderr: the zip, the token-key convention, what clients must send, and the next requests.
    """
    from encoder import ModelNotFoundError

    _require_torch()
    from encoder.torchscript_export import export_torchscript
    from retrieval.backends.ml_commons_bodies import register_meta_body, register_model_body
    from retrieval.settings import get_settings

    try:
        export = export_torchscript(model, out, queries=queries, models_dir=get_settings().models_dir)
    except (ModelNotFoundError, OSError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    body = register_meta_body(export, version=version) if chunked else register_model_body(export, url=url, version=version)
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
    _print_notes(export, chunked)


def _print_notes(export, chunked: bool) -> None:
    from retrieval.backends.ml_commons_bodies import chunk_count, encoding_source_field, pipeline_body_for

    notes.print(f"wrote {export.path} ({export.size_bytes / 2**20:.1f} MB, sha256 {export.sha256}): "
                f"{export.role} model, truncates at {export.max_length} tokens, pruning in the model: {export.pruning}")
    notes.print("token keys: ml-commons names each weight by tokenizer.decode([id]); the zip's tokenizer decodes every "
                "id to its ksearch feature name (the vocabulary token, with '.', '%' and blanks escaped as %XX), so "
                "vectors encoded in the cluster have the keys `ksearch encode` prints"
                + (f"; {len(export.unnamed_ids)} ids without a name are zero" if export.unnamed_ids else ""))
    if export.pre_segmentation:
        notes.print(f"[bold red]this model reads {export.pre_segmentation['type'].upper()}-SEGMENTED text[/]: OpenSearch "
                    "cannot run Kiwi, so clients must send the segmented text (encoder.segmentation.KiwiSegmenter"
                    f".for_model(...).segment): documents in the field `{encoding_source_field(export)}` that the "
                    "pipeline encodes, queries as neural_sparse query_text (retrieval.query.neural_sparse_text_query "
                    "with the segmenter). Raw text gives wrong vectors.", markup=True)  # only this line is styled
    register = ("POST /_plugins/_ml/models/_register_meta (this body), then the zip in "
                f"{chunk_count(export.size_bytes)} pieces to POST /_plugins/_ml/models/MODEL_ID/upload_chunk/N"
                if chunked else "POST /_plugins/_ml/models/_register (this body), then GET /_plugins/_ml/tasks/TASK_ID")
    notes.print(f"next: {register}; POST /_plugins/_ml/models/MODEL_ID/_deploy")
    if export.role == "documents":
        pipeline = json.dumps(pipeline_body_for(export, "MODEL_ID"), ensure_ascii=False)
        notes.print(f"ingest: PUT /_ingest/pipeline/NAME {pipeline}")
        if export.query_pruning != "none" or not export.query_expansion:
            notes.print(f"queries: this model does not prune queries ({export.query_pruning} client-side); register the "
                        "--queries export for neural_sparse query_text to rank as ksearch does")
