"""`ServerEncodedIndex`: an OpenSearch index whose ml-commons model encodes, documents and queries, in the cluster.

`ksearch ingest --backend opensearch --encoding server` creates such an index (`open_or_create_server_index`):

* the models (`ml_commons_models.ensure_server_models`): given, found by name, or exported, registered and deployed;
* an ingest pipeline `ksearch-NAME-sparse-encoding` with one `sparse_encoding` processor (the document model, the
  encoder's document pruning as `prune_type`/`prune_ratio`), set as the index's `default_pipeline`, so every
  write is encoded by the cluster, whoever sends it (curl, a Java service);
* the ids and the pipeline recorded in the index metadata (`IndexMeta.server_encoding`).

Passages are then sent without vectors (`add_texts`): the text, and for a model that reads Kiwi-segmented text the
client's segmented copy in `model_text`, which the pipeline encodes (OpenSearch cannot run Kiwi). Ids, content
hashes and resuming are those of every OpenSearch index. `search_text` sends `neural_sparse` with `query_text`
(segmented for such models) and the query model's id. Stored vectors are the cluster's; `nnz` is not stored
(the pipeline cannot count), so stats report 0 non-zero weights for these passages.

Without `server_encoding` metadata the class is a plain `OpenSearchIndex` (every OpenSearch index is opened as
one), whose queries can still be encoded by a model given by id (`query_model_id`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from retrieval.backends.base import SearchFilters
from retrieval.backends.ml_commons_bodies import MODEL_TEXT_FIELD, sparse_encoding_pipeline_body
from retrieval.backends.ml_commons_models import ServerModels, ensure_deployed, ensure_server_models
from retrieval.backends.opensearch import OpenSearchIndex
from retrieval.backends.opensearch_bulk import BulkWriter
from retrieval.backends.opensearch_connection import OpenSearchConnection, translated_errors
from retrieval.backends.opensearch_mapping import passage_source
from retrieval.errors import IndexNotFoundError, RetrievalError
from retrieval.hits import Hit
from retrieval.index_meta import IndexMeta, ServerEncoding
from retrieval.passage import Passage
from retrieval.query import SPARSE_FIELD, TEXT_FIELD, neural_sparse_text_body

def pipeline_name(index_name: str) -> str:
    """The ingest pipeline of index (alias) `index_name`."""
    return f"ksearch-{index_name}-sparse-encoding"


def server_encoding_for(index_name: str, models: ServerModels, encoder) -> ServerEncoding:
    """What an index encoded by `models` records: the ids, its pipeline, and the field the pipeline encodes."""
    return ServerEncoding(document_model_id=models.document_model_id, query_model_id=models.query_model_id,
                          pipeline=pipeline_name(index_name),
                          source_field=MODEL_TEXT_FIELD if encoder.segmenter is not None else TEXT_FIELD)


def put_pipeline(client, conn: OpenSearchConnection, meta: IndexMeta) -> None:
    """Create (or replace) the index's ingest pipeline: `sparse_encoding` of its source field with its document
    model, pruned like the index's document pruning."""
    server = meta.server_encoding
    body = sparse_encoding_pipeline_body(server.document_model_id, source_field=server.source_field,
                                         pruning=meta.document_pruning,
                                         description=f"ksearch index {meta.name}: sparse vectors of "
                                                     f"{server.source_field} by model {server.document_model_id}")
    with translated_errors(conn, f"creating ingest pipeline {server.pipeline!r}"):
        client.ingest.put_pipeline(id=server.pipeline, body=body)


class TextBulkWriter(BulkWriter):
    """Background bulk writes of passages without vectors: the index's default pipeline encodes `source_field`."""

    def __init__(self, client, index: str, dead_letter_path: Path, source_field: str,
                 morphemes: Callable[[list[str]], list[list[str]]] | None = None) -> None:
        self.source_field = source_field
        super().__init__(client, index, dead_letter_path, morphemes)

    def _actions(self, passages: list[Passage], model_texts: list[str]) -> Iterator[dict[str, Any]]:
        morphemes = self.morphemes([p.text for p in passages]) if self.morphemes else [None] * len(passages)
        for passage, model_text, morph in zip(passages, model_texts, morphemes):
            source = passage_source(passage, {}, morph)
            del source[SPARSE_FIELD], source["nnz"]  # the pipeline writes the vector; nobody counts its weights
            if self.source_field != TEXT_FIELD and model_text.strip():
                # an empty field would fail the processor; without it the passage is stored with no vector, like a
                # client-encoded passage whose vector is empty
                source[self.source_field] = model_text
            yield {"_op_type": "index", "_index": self.index, "_id": passage.id, "_source": source}


class ServerEncodedIndex(OpenSearchIndex):
    """An OpenSearch index whose deployed model encodes documents (ingest pipeline) and queries (`query_text`);
    see the module docstring."""

    query_model_override: str | None = None  # a model id given for searching (e.g. an index encoded client-side)

    @property
    def encodes_documents(self) -> bool:
        """True when the cluster encodes this index's documents: write them with `add_texts`."""
        return self.meta.server_encoding is not None

    @property
    def query_model_id(self) -> str | None:
        """The deployed model `search_text` names: the one given, else the index's query model, else None."""
        if self.query_model_override:
            return self.query_model_override
        return self.meta.server_encoding.query_model_id if self.meta.server_encoding else None

    def add(self, passages: Sequence[Passage], vectors: Sequence[Mapping[str, float]]) -> None:
        """Client-encoded writes (refused when the cluster encodes this index)."""
        if self.encodes_documents:
            raise RetrievalError(f"OpenSearch index {self.name!r} encodes its documents in the cluster (model "
                                 f"{self.meta.server_encoding.document_model_id}): send texts (`ksearch ingest "
                                 f"--encoding server`), not vectors")
        super().add(passages, vectors)

    def add_texts(self, passages: Sequence[Passage], model_texts: Sequence[str]) -> None:
        """Queue passages without vectors (`model_texts`: each passage as the model reads it, e.g. Kiwi-segmented);
        the index's default pipeline encodes them. Same queueing and dead letters as `add`."""
        server = self.meta.server_encoding
        if server is None:
            raise RetrievalError(f"OpenSearch index {self.name!r} was built with client-side encoding: it has no "
                                 f"ingest pipeline to encode texts; rebuild it with `--encoding server --rebuild`")
        if len(passages) != len(model_texts):
            raise ValueError(f"{len(passages)} passages but {len(model_texts)} model texts")
        if not passages:
            return
        if self._writer is None:
            self._writer = TextBulkWriter(self.client, self.concrete, self._dead_letter_path(), server.source_field,
                                          self._bm25_morphemes())
        with self._errors(f"indexing into {self.concrete!r}"):
            self._writer.submit(passages, list(model_texts))

    def search_text(self, text: str, k: int = 10, *, segmenter=None, filters: SearchFilters | None = None,
                    per_document: bool = True, offset: int = 0) -> list[Hit]:
        """Top-k by `neural_sparse` with `query_text` (segmented by `segmenter` first, when the model reads
        segmented text) and the query model's id: the cluster encodes the query."""
        model_id = self.query_model_id
        if model_id is None:
            raise RetrievalError(f"OpenSearch index {self.name!r} records no model to encode queries: ingest it with "
                                 f"`--encoding server`, or give the id of a deployed SPARSE_ENCODING model")
        domain = filters.domain if filters else None
        try:
            body = neural_sparse_text_body(text, model_id, segmenter=segmenter, size=k, domain=domain)
        except ValueError:  # nothing to encode (e.g. punctuation only): no hits, as a client-side empty query
            return []
        try:
            return self._run_search(body, per_document, offset,
                                    f"searching {self.name!r} (neural_sparse, query encoded by model {model_id})")
        except RetrievalError as exc:
            if "not ready" not in str(exc).lower():
                raise
            raise RetrievalError(f"{exc} Deploy it (POST /_plugins/_ml/models/{model_id}/_deploy), or run `ksearch "
                                 f"ingest ... --index {self.name}` again, which deploys the index's models.") from None

    def delete_index(self) -> None:
        """Delete the index (`OpenSearchIndex.delete_index`) and its ingest pipeline."""
        super().delete_index()
        if self.meta.server_encoding is not None:
            with self._errors(f"deleting ingest pipeline {self.meta.server_encoding.pipeline!r}"):
                self.client.ingest.delete_pipeline(id=self.meta.server_encoding.pipeline, ignore=[404])


def open_or_create_server_index(name: str, encoder, *, conn: OpenSearchConnection, rebuild: bool = False,
                                analyzer: str = "auto", dead_letter_dir: Path | None = None,
                                source: Path | str | None = None, models_dir: Path | str | None = None,
                                document_model_id: str | None = None, query_model_id: str | None = None,
                                notify: Callable[[str], None] | None = None, shards: int = 1,
                                replicas: int | None = None) -> ServerEncodedIndex:
    """Open server-encoded index `name` (its models deployed, its pipeline in place) or create it (models from
    `ensure_server_models`, pipeline, index with it as default pipeline); `rebuild` as `OpenSearchIndex`.
    Refuses an existing client-encoded index, or model ids other than the recorded ones, without `rebuild`."""
    existing = None
    if not rebuild:
        try:
            existing = ServerEncodedIndex.open(name, conn=conn, dead_letter_dir=dead_letter_dir)
        except IndexNotFoundError:
            pass
    if existing is not None:
        try:
            _check_reuse(existing, document_model_id, query_model_id)
            server = existing.meta.server_encoding
            for model_id in dict.fromkeys((server.document_model_id, server.query_model_id)):
                ensure_deployed(existing.client, model_id, notify)
            put_pipeline(existing.client, conn, existing.meta)  # in case it was deleted: same body
        except BaseException:
            existing.close()
            raise
        return existing
    client = conn.client()
    try:
        models = ensure_server_models(client, encoder, source=source, models_dir=models_dir,
                                      document_model_id=document_model_id, query_model_id=query_model_id,
                                      notify=notify)
        meta = IndexMeta.for_encoder(name, encoder)
        meta = meta.model_copy(update={"server_encoding": server_encoding_for(name, models, encoder)})
        put_pipeline(client, conn, meta)
    finally:
        client.close()
    return ServerEncodedIndex.open_or_create(name, meta, conn=conn, rebuild=rebuild, analyzer=analyzer,
                                             shards=shards, replicas=replicas,
                                             dead_letter_dir=dead_letter_dir)


def _check_reuse(index: ServerEncodedIndex, document_model_id: str | None, query_model_id: str | None) -> None:
    server = index.meta.server_encoding
    if server is None:
        raise RetrievalError(f"OpenSearch index {index.name!r} was built with client-side encoding: rebuild it with "
                             f"`--encoding server --rebuild` (or ingest into a new --index)")
    for given, recorded, option in ((document_model_id, server.document_model_id, "--model-id"),
                                    (query_model_id, server.query_model_id, "--query-model-id")):
        if given and given != recorded:
            raise RetrievalError(f"OpenSearch index {index.name!r} is encoded by model {recorded}, not {option} "
                                 f"{given}: add --rebuild to re-encode it with that model")
