"""`--encoding` of `ksearch ingest` and `ksearch search`: ksearch's encoder (client) or the model deployed in
OpenSearch (server, ml-commons), and the stores each opens."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console

from ksearch.cli_common import fail

IngestEncodingOption = Annotated[Optional[str], typer.Option(
    "--encoding", help="client (ksearch encodes) | server (OpenSearch encodes with a deployed ml-commons model: an "
                       "ingest pipeline with sparse_encoding). Default: how the index was built; client for a new one.")]
DocumentModelIdOption = Annotated[Optional[str], typer.Option(
    "--model-id", help="--encoding server: the deployed model that encodes documents (default: MODEL exported, "
                       "registered and deployed, or the one registered for it before).")]
QueryModelIdOption = Annotated[Optional[str], typer.Option(
    "--query-model-id", help="--encoding server: the deployed model that encodes queries (default: MODEL's query "
                             "export when it prunes queries, else the document model).")]
SearchEncodingOption = Annotated[str, typer.Option(
    "--encoding", help="client (ksearch encodes the query) | server (OpenSearch encodes it: neural_sparse with "
                       "query_text and the index's query model).")]
SearchModelIdOption = Annotated[Optional[str], typer.Option(
    "--model-id", help="--encoding server: a deployed model to encode queries instead of the index's.")]


def check_encoding_options(encoding: str | None, backend: str, *model_ids: str | None) -> None:
    """Exit with a message for an unknown encoding, server encoding off OpenSearch, or model ids without it."""
    from retrieval.backends import ENCODINGS

    if encoding is not None and encoding not in ENCODINGS:
        fail(f"--encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")
    if encoding == "server" and backend != "opensearch":
        fail("--encoding server needs --backend opensearch: the model runs inside OpenSearch (ml-commons)")
    if any(model_ids) and (backend != "opensearch" or encoding == "client"):
        fail("--model-id and --query-model-id name models deployed in OpenSearch: use them with --backend opensearch "
             "--encoding server")


def recorded_encoding(name: str, config) -> str:
    """How the OpenSearch index `name` encodes ("server" when it records a deployed model; "client" when it does
    not, or does not exist)."""
    from retrieval.backends import open_index
    from retrieval.errors import IndexNotFoundError

    try:
        store = open_index(name, backend="opensearch", config=config)
    except IndexNotFoundError:
        return "client"
    try:
        return "server" if store.encodes_documents else "client"
    finally:
        store.close()


def open_store_for_ingest(name: str, enc, *, backend: str, config, rebuild: bool, encoding: str | None,
                          document_model_id: str | None, query_model_id: str | None, models_dir, seismic=None):
    """The index an ingest writes to: as before for client encoding; for server encoding with its models
    deployed and its pipeline in place (`open_or_create_server_index`); `seismic` (--ann) is for client encoding.
    Raises `RetrievalError`, `ValueError`."""
    from retrieval.backends import open_or_create_index
    from retrieval.errors import RetrievalError
    from retrieval.index_meta import IndexMeta

    if encoding is None:
        encoding = recorded_encoding(name, config) if backend == "opensearch" else "client"
        if any((document_model_id, query_model_id)):
            encoding = "server"
    if encoding == "client":
        store = open_or_create_index(name, IndexMeta.for_encoder(name, enc), backend=backend, rebuild=rebuild,
                                     config=config, seismic=seismic)
        if store.encodes_documents:
            store.close()
            raise RetrievalError(f"OpenSearch index {name!r} is encoded in the cluster (model "
                                 f"{store.meta.server_encoding.document_model_id}): ingest with --encoding server "
                                 f"(the default for it), or add --rebuild to rebuild it with client-side encoding")
        return store
    if seismic is not None:
        raise ValueError("--ann (sparse_vector + SEISMIC) needs client-side encoding: the sparse_encoding pipeline "
                         "writes token keys, not the token ids SEISMIC needs")
    from encoder.model_resolution import resolve_model
    from retrieval.backends.opensearch_server_encoding import open_or_create_server_index

    try:
        source = resolve_model(enc.model_id, models_dir)[1]
    except (OSError, RuntimeError):
        source = None
    notes = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
    return open_or_create_server_index(name, enc, conn=config.opensearch, rebuild=rebuild,
                                       analyzer=config.bm25_analyzer, dead_letter_dir=config.dead_letter_dir,
                                       source=source, models_dir=models_dir, document_model_id=document_model_id,
                                       query_model_id=query_model_id, notify=notes.print, shards=config.shards,
                                       replicas=config.replicas)


def check_query_model(store, enc, query_model_id: str | None) -> None:
    """Refuse a `--model-id` given for searching that cannot encode `enc`'s queries (`MLCommonsError`)."""
    if query_model_id is None:
        return
    from retrieval.backends.ml_commons_models import QUERIES, check_server_model

    check_server_model(store.client, query_model_id, enc, QUERIES)
