"""The ml-commons models a server-encoded index runs: checked when given, else found by name, else exported,
registered and deployed here.

A ksearch model becomes one or two `SPARSE_ENCODING` models in the cluster: the document model (no pruning in the
graph; the ingest processor prunes as the model folder says) and, when the folder prunes queries or turns query
expansion off, the query model (`export_torchscript(queries=True)`: that pruning inside the graph, since
`neural_sparse` does not prune `query_text` vectors). Each is registered under a name that fingerprints what it
was exported from (`registered_name`), so a second ingest, or another index with the same model, reuses the
registered model instead of exporting and uploading it again. A model id given by the user is checked against the
encoder with the record the export put in `model_config.all_config` (vocabulary size, role, pre-segmentation).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from retrieval.backends.ml_commons_client import (MLCommonsError, deploy_model, find_models, get_model, model_state,
                                                  register_model_zip)

log = logging.getLogger(__name__)

DOCUMENTS, QUERIES = "documents", "queries"
WEIGHT_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
READY_STATES = ("DEPLOYED", "PARTIALLY_DEPLOYED")
REUSABLE_STATES = ("DEPLOYED", "PARTIALLY_DEPLOYED", "DEPLOYING", "REGISTERED", "UNDEPLOYED", "DEPLOY_FAILED")


@dataclass(frozen=True)
class ServerModels:
    """The deployed models that encode an index's documents and its queries (the same id when queries need no
    model of their own)."""

    document_model_id: str
    query_model_id: str


def needs_query_model(encoder) -> bool:
    """True when the encoder's queries differ from its unpruned document vectors (query pruning, or no query
    expansion, or an expansion gate), so `neural_sparse` needs the query export to rank as the client does."""
    return (str(encoder.query_pruning) != "none" or not encoder.query_expansion
            or getattr(encoder, "expansion_gate", None) is not None)


def weights_digest(source: Path | str | None) -> str:
    """sha256 of a model folder's weight files, ksearch.json and tokenizer ("" when it is not a local folder)."""
    if source is None or not Path(source).is_dir():
        return ""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(source).iterdir() if p.is_file() and (
        p.suffix in WEIGHT_FILE_SUFFIXES or p.name in ("ksearch.json", "tokenizer.json", "vocab.txt")))
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def registered_name(encoder, role: str, source: Path | str | None) -> str:
    """The name the export of `encoder` for `role` is registered under: the model id and a fingerprint of the
    weights, vocabulary, length, pre-segmentation and (queries) pruning it was exported with."""
    described = {"model_id": encoder.model_id, "vocab_hash": encoder.vocab_hash, "revision": encoder.revision,
                 "max_length": encoder.max_length, "role": role, "weights": weights_digest(source),
                 "pre_segmentation": encoder.segmenter.config() if encoder.segmenter else None,
                 "pruning": str(encoder.query_pruning) if role == QUERIES else "none",
                 "query_expansion": bool(encoder.query_expansion) if role == QUERIES else True}
    fingerprint = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:12]
    return f"ksearch {encoder.model_id} {role} {fingerprint}"


def export_record(model: dict) -> dict | None:
    """The ksearch export record a registered model carries in `model_config.all_config` (None: none)."""
    try:
        return json.loads(model["model_config"]["all_config"])["ksearch"]
    except (KeyError, TypeError, ValueError):
        return None


def check_server_model(client, model_id: str, encoder, role: str) -> None:
    """Refuse a model that cannot stand for `encoder`'s `role` (not SPARSE_ENCODING, another vocabulary, other
    pre-segmentation, a query model for documents); warn when it cannot be checked or ranks differently."""
    try:
        model = get_model(client, model_id)
    except MLCommonsError as exc:
        raise MLCommonsError(f"ml-commons has no usable model {model_id!r}: {exc}") from None
    what = f"model {model_id} ({model.get('name', '?')})"
    if model.get("algorithm") != "SPARSE_ENCODING":
        raise MLCommonsError(f"{what} is a {model.get('algorithm')} model; encoding for ksearch needs SPARSE_ENCODING "
                             f"(`ksearch model export-opensearch`)")
    record = export_record(model)
    if record is None:
        log.warning("%s carries no ksearch export record: cannot check that it encodes like %s", what, encoder.model_id)
        return
    segmentation = encoder.segmenter.config() if encoder.segmenter else None
    if record.get("vocab_size") != encoder.vocab_size:
        raise MLCommonsError(f"{what} has a vocabulary of {record.get('vocab_size')} tokens, {encoder.model_id} "
                             f"{encoder.vocab_size}: its weights would be keyed by other tokens")
    if record.get("pre_segmentation") != segmentation:
        raise MLCommonsError(f"{what} reads text pre-segmented as {record.get('pre_segmentation')}, {encoder.model_id} "
                             f"as {segmentation}: the text the client sends would be wrong for it")
    if role == DOCUMENTS and record.get("role") != DOCUMENTS:
        raise MLCommonsError(f"{what} is a query export (pruned inside the model): documents need the documents "
                             f"export (`ksearch model export-opensearch` without --queries)")
    if record.get("model_id") != encoder.model_id:
        log.warning("%s was exported from %s; encoding for %s (same vocabulary)", what, record.get("model_id"),
                    encoder.model_id)
    if role == QUERIES and needs_query_model(encoder) and (
            record.get("role") != QUERIES or record.get("pruning") != str(encoder.query_pruning)):
        log.warning("%s does not prune queries as %s does (%s): server-side rankings will differ from client-side "
                    "ones; give the --queries export", what, encoder.model_id, encoder.query_pruning)


def ensure_deployed(client, model_id: str, notify: Callable[[str], None] | None = None) -> None:
    """Deploy `model_id` unless it is deployed already (`MLCommonsError` with ml-commons' reason on failure)."""
    if model_state(client, model_id) in READY_STATES:
        return
    if notify:
        notify(f"deploying ml-commons model {model_id}")
    deploy_model(client, model_id)


def ensure_server_models(client, encoder, *, source: Path | str | None = None, models_dir: str | os.PathLike | None = None,
                         document_model_id: str | None = None, query_model_id: str | None = None,
                         notify: Callable[[str], None] | None = None) -> ServerModels:
    """Deployed models for `encoder`'s documents and queries: the ids given (checked), else models registered
    before under `registered_name`, else `encoder`'s exports registered now (needs torch). `source` is the model
    folder (for the name's fingerprint); `models_dir` lets the export find a named model."""
    documents = document_model_id or _registered(client, encoder, DOCUMENTS, source, models_dir, notify)
    check_server_model(client, documents, encoder, DOCUMENTS)
    if query_model_id:
        queries = query_model_id
    elif needs_query_model(encoder):
        queries = _registered(client, encoder, QUERIES, source, models_dir, notify)
    else:
        queries = documents
    if queries != documents:
        check_server_model(client, queries, encoder, QUERIES)
    for model_id in dict.fromkeys((documents, queries)):
        ensure_deployed(client, model_id, notify)
    return ServerModels(documents, queries)


def _registered(client, encoder, role: str, source, models_dir, notify) -> str:
    """The id of `encoder`'s `role` export registered under its name, registering it first when there is none."""
    name = registered_name(encoder, role, source)
    states = {model_id: model_state(client, model_id) for model_id in find_models(client, name)}
    usable = [m for m, s in states.items() if s in REUSABLE_STATES]
    if usable:
        return next((m for m in usable if states[m] in READY_STATES), usable[0])
    from encoder.torchscript_export import export_torchscript
    from retrieval.backends.ml_commons_bodies import model_config, model_description

    if notify:
        notify(f"exporting {encoder.model_id} ({role}) for ml-commons and registering it as {name!r}")
    with tempfile.TemporaryDirectory(prefix="ksearch-export-") as tmp:
        try:
            export = export_torchscript(encoder.model_id, Path(tmp) / "model.zip", queries=role == QUERIES,
                                        models_dir=models_dir)
        except ImportError as exc:
            raise MLCommonsError(f"exporting {encoder.model_id} for OpenSearch needs torch ({exc}): install the train "
                                 f"extra (`pip install -e .[train]`), or pass the id of a model registered and deployed "
                                 f"already (--model-id / --query-model-id)") from None
        return register_model_zip(client, export.path, name=name, description=model_description(export),
                                  model_config=model_config(export))
