"""Request bodies for serving a ksearch model inside OpenSearch: ml-commons registration, the ingest pipeline.

Pure builders (no connection): `register_model_body` (`POST /_plugins/_ml/models/_register`, the zip read
from a URL), `register_meta_body` (`POST /_plugins/_ml/models/_register_meta`, then the zip in chunks to
`/_plugins/_ml/models/{id}/upload_chunk/{n}`), and `sparse_encoding_pipeline_body` (`PUT /_ingest/pipeline/NAME`
with neural-search's `sparse_encoding` processor). The zip comes from `encoder.torchscript_export`.

A model that pre-segments text (Kiwi) is encoded on the server from segmented text: the client writes the
segmented passage into `MODEL_TEXT_FIELD` and the pipeline encodes that field (`encoding_source_field`); queries
go through `retrieval.query.neural_sparse_text_query` with the segmenter.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from encoder.pruning import Pruning, PruneType
from encoder.torchscript_export import TorchScriptExport
from retrieval.query import SPARSE_FIELD, TEXT_FIELD

FUNCTION_NAME = "SPARSE_ENCODING"
MODEL_FORMAT = "TORCH_SCRIPT"
FRAMEWORK_TYPE = "huggingface_transformers"
MODEL_TEXT_FIELD = "model_text"  # the passage as a pre-segmenting model reads it, written by the client
UPLOAD_CHUNK_BYTES = 10_000_000  # ml-commons refuses a chunk over 10 MB (ModelHelper.CHUNK_SIZE)


def encoding_source_field(export: TorchScriptExport) -> str:
    """The field the ingest pipeline encodes: the raw text, or the client's segmented copy of it."""
    return MODEL_TEXT_FIELD if export.pre_segmentation else TEXT_FIELD


def model_name(export: TorchScriptExport) -> str:
    """The registered name: the model id, marked when the zip is the query model."""
    return export.model_id + (" (queries)" if export.role == "queries" else "")


def model_description(export: TorchScriptExport) -> str:
    """What a reader of `GET /_plugins/_ml/models/{id}` must know to use the model."""
    parts = [f"ksearch SPLADE sparse encoder {export.model_id}, for {export.role}; weights keyed by ksearch feature "
             f"names; truncates at {export.max_length} tokens"]
    if export.pruning != "none":
        parts.append(f"pruned in the model ({export.pruning})")
    if export.pre_segmentation:
        parts.append(f"INPUT MUST BE {export.pre_segmentation['type'].upper()}-SEGMENTED TEXT (content morphemes "
                     f"joined by spaces, as ksearch's KiwiSegmenter writes them); raw text gives wrong vectors")
    return "; ".join(parts) + "."


def model_config(export: TorchScriptExport) -> dict[str, Any]:
    """`model_config`: ml-commons' text-embedding config (dimension = vocabulary) with the export record in
    `all_config`, so the pre-segmentation and pruning travel with the registered model."""
    return {
        "model_type": export.model_type,
        "embedding_dimension": export.vocab_size,
        "framework_type": FRAMEWORK_TYPE,
        "model_max_length": export.max_length,
        "all_config": json.dumps({"ksearch": export.record()}, ensure_ascii=False, sort_keys=True),
    }


def _common(export: TorchScriptExport, name: str | None, version: str, model_group_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name or model_name(export),
        "version": version,
        "description": model_description(export),
        "function_name": FUNCTION_NAME,
        "model_format": MODEL_FORMAT,
        "model_content_hash_value": export.sha256,
        "model_content_size_in_bytes": export.size_bytes,
        "model_config": model_config(export),
    }
    if model_group_id:
        body["model_group_id"] = model_group_id
    return body


def register_model_body(export: TorchScriptExport, *, url: str | None = None, name: str | None = None,
                        version: str = "1.0.0", model_group_id: str | None = None) -> dict[str, Any]:
    """`POST /_plugins/_ml/models/_register` body; `url` defaults to the zip's `file://` URL (the node must be
    able to read that path, and `plugins.ml_commons.allow_registering_model_via_url` must be true)."""
    body = _common(export, name, version, model_group_id)
    body["url"] = url or Path(export.path).resolve().as_uri()
    return body


def chunk_count(size_bytes: int, chunk_bytes: int = UPLOAD_CHUNK_BYTES) -> int:
    """How many `upload_chunk` calls a zip of `size_bytes` takes."""
    return max(1, math.ceil(size_bytes / chunk_bytes))


def register_meta_body(export: TorchScriptExport, *, name: str | None = None, version: str = "1.0.0",
                       model_group_id: str | None = None, chunk_bytes: int = UPLOAD_CHUNK_BYTES) -> dict[str, Any]:
    """`POST /_plugins/_ml/models/_register_meta` body, for uploading the zip in `chunk_bytes` pieces (needs
    `plugins.ml_commons.allow_registering_model_via_local_file`)."""
    body = _common(export, name, version, model_group_id)
    body["total_chunks"] = chunk_count(export.size_bytes, chunk_bytes)
    return body


def processor_pruning(pruning: Pruning) -> dict[str, Any]:
    """`prune_type` / `prune_ratio` of the `sparse_encoding` processor ({} for no pruning), checked against
    neural-search's rules (top_k: a positive whole number; max_ratio and alpha_mass in [0, 1); abs_value >= 0)."""
    t, r = pruning.type, pruning.ratio
    if t is PruneType.NONE:
        return {}
    if t is PruneType.TOP_K:
        return {"prune_type": t.value, "prune_ratio": int(r)}
    if t in (PruneType.MAX_RATIO, PruneType.ALPHA_MASS) and not 0 <= r < 1:
        raise ValueError(f"the sparse_encoding processor needs {t.value} prune_ratio in [0, 1), got {r:g}")
    return {"prune_type": t.value, "prune_ratio": float(r)}


def sparse_encoding_pipeline_body(model_id: str, *, source_field: str = TEXT_FIELD, target_field: str = SPARSE_FIELD,
                                  pruning: Pruning | str | None = None, batch_size: int | None = None,
                                  description: str | None = None) -> dict[str, Any]:
    """`PUT /_ingest/pipeline/NAME` body: one `sparse_encoding` processor that encodes `source_field` with the
    deployed model `model_id` into the `rank_features` field `target_field`, pruned like `pruning` (a
    `Pruning` or its "top_k:200" form; the model folder's document pruning keeps client and server alike)."""
    if not model_id:
        raise ValueError("the sparse_encoding processor needs the model_id of a deployed model")
    if source_field == target_field:
        raise ValueError(f"the processor would overwrite its input field {source_field!r}")
    pruning = pruning if isinstance(pruning, Pruning) else Pruning.parse(pruning)
    processor: dict[str, Any] = {"model_id": model_id, "field_map": {source_field: target_field},
                                 **processor_pruning(pruning)}
    if batch_size is not None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        processor["batch_size"] = batch_size
    return {"description": description or f"ksearch: sparse vectors of {source_field} into {target_field} (model {model_id})",
            "processors": [{"sparse_encoding": processor}]}


def pipeline_body_for(export: TorchScriptExport, model_id: str, *, batch_size: int | None = None) -> dict[str, Any]:
    """The pipeline for a document export: its source field and the model folder's document pruning."""
    if export.role != "documents":
        raise ValueError(f"{export.path} is a query model (pruned for queries); export the documents model for ingest")
    return sparse_encoding_pipeline_body(model_id, source_field=encoding_source_field(export),
                                         pruning=export.document_pruning, batch_size=batch_size)
