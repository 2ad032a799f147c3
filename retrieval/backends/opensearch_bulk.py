"""`BulkWriter`: indexes batches of passages with `streaming_bulk` on a background thread; `delete_passages`.

`submit` hands a batch to the thread and returns at once, so the ingest worker encodes the next
batch while this one is indexed (a queue of two batches bounds memory). Vectors that cannot be stored
(`vector_check.vector_problem`: unsafe feature names, weights not finite and > 0) are refused before
sending; they and per-document failures (`raise_on_error=False`) become `RejectedWrite`s, appended to a
dead-letter JSONL file. A transport failure (node down) stops the thread and is raised by the next
`submit` or `drain`.

`delete_passages` deletes by id in bulk and raises what OpenSearch refused (a missing index, a blocked
index, an overloaded node) instead of dropping it; an id that was not stored is not a failure.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from retrieval.backends.base import RejectedWrite
from retrieval.backends.opensearch_connection import OpenSearchConnection, http_error, translated_errors
from retrieval.backends.opensearch_mapping import passage_source
from retrieval.backends.vector_check import vector_problem
from retrieval.passage import Passage

log = logging.getLogger(__name__)

BULK_CHUNK_DOCS = 256  # documents per bulk request
BULK_CHUNK_BYTES = 8 * 1024 * 1024  # UTF-8 bytes per bulk request (Hangul is 3 bytes a character)
BULK_MAX_RETRIES = 6  # retries of a document answered HTTP 429 (too many requests)
BULK_INITIAL_BACKOFF = 1  # seconds; doubled on every retry
BULK_MAX_BACKOFF = 30
QUEUED_BATCHES = 2

_STOP = object()


class BulkWriter:
    """Background `streaming_bulk` into one index, with a dead-letter file for rejected passages."""

    def __init__(self, client, index: str, dead_letter_path: Path,
                 morphemes: Callable[[list[str]], list[list[str]]] | None = None) -> None:
        self.client = client
        self.index = index
        self.dead_letter_path = dead_letter_path
        self.morphemes = morphemes  # Kiwi analysis for the text_morphemes field, when the index uses it
        self.rejected: list[RejectedWrite] = []
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUED_BATCHES)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"bulk-{index}", daemon=True)
        self._thread.start()

    def submit(self, passages: Sequence[Passage], vectors: Sequence[Mapping[str, float]]) -> None:
        """Queue one batch (blocks while two batches are waiting); raises a failure of an earlier batch."""
        self._raise_failure()
        self._queue.put((list(passages), list(vectors)))

    def drain(self) -> None:
        """Wait until every queued batch is indexed; stop the thread; raise its failure if it had one."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue  # a failed writer drops later batches; the ingest is resumed by re-running it
            try:
                self._index_batch(*item)
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc

    def _actions(self, passages: list[Passage], vectors: list[Mapping[str, float]]) -> Iterator[dict[str, Any]]:
        morphemes = self.morphemes([p.text for p in passages]) if self.morphemes else [None] * len(passages)
        for passage, vector, morph in zip(passages, vectors, morphemes):
            reason = vector_problem(vector)  # refused here, as the embedded index does, not by OpenSearch's 400
            if reason is not None:
                self._reject(RejectedWrite(passage.id, passage.doc_id, reason, status=None))
                continue
            yield {"_op_type": "index", "_index": self.index, "_id": passage.id,
                   "_source": passage_source(passage, vector, morph)}

    def _index_batch(self, passages: list[Passage], vectors: list[Mapping[str, float]]) -> None:
        from opensearchpy.helpers import streaming_bulk

        doc_of = {p.id: p.doc_id for p in passages}
        for ok, item in streaming_bulk(self.client, self._actions(passages, vectors), chunk_size=BULK_CHUNK_DOCS,
                                       max_chunk_bytes=BULK_CHUNK_BYTES, raise_on_error=False,
                                       max_retries=BULK_MAX_RETRIES, initial_backoff=BULK_INITIAL_BACKOFF,
                                       max_backoff=BULK_MAX_BACKOFF):
            result = next(iter(item.values()))
            if ok:
                continue
            error = result.get("error")
            if isinstance(error, dict):
                cause = error.get("caused_by") or {}
                reason = f"{error.get('type', '')}: {error.get('reason', '')}"
                if cause:
                    reason += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
            else:
                reason = str(error)
            pid = result.get("_id", "")
            self._reject(RejectedWrite(pid, doc_of.get(pid, ""), reason, status=result.get("status")))

    def _reject(self, rejected: RejectedWrite) -> None:
        self.rejected.append(rejected)
        log.warning("OpenSearch rejected passage %s: %s", rejected.passage_id, rejected.reason)
        self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        record = {"id": rejected.passage_id, "doc_id": rejected.doc_id, "index": self.index, "status": rejected.status,
                  "reason": rejected.reason, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with self.dead_letter_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


DELETE_MAX_RETRIES = 3  # retries of an id answered HTTP 429
SHOWN_FAILURES = 5  # failed ids named in an error message


def delete_passages(client, conn: OpenSearchConnection, index: str, passage_ids: Iterable[str], *,
                    alias: str | None = None) -> int:
    """Delete passages by id from the concrete `index` (of alias `alias`), refresh, and return how many were stored.

    Ids that were not stored count as nothing. Anything else OpenSearch refused raises, after the refresh, the
    error its status calls for: `IndexNotFoundError` (the index is gone), `OpenSearchRefusedError` (403: a
    read-only or blocked index, permissions), `OpenSearchUnavailableError` (429, 5xx, unreachable: retry),
    `OpenSearchBadRequestError` (400); the message says how many were deleted before and which ids failed.
    """
    from opensearchpy.helpers import streaming_bulk

    name = alias or index
    actions = ({"_op_type": "delete", "_index": index, "_id": pid} for pid in passage_ids)
    deleted, failed = 0, []
    with translated_errors(conn, f"deleting passages from {name!r}", name):
        for ok, item in streaming_bulk(client, actions, raise_on_error=False, max_retries=DELETE_MAX_RETRIES):
            result = item["delete"]
            if ok:
                deleted += result.get("result") == "deleted"
            elif not (result.get("status") == 404 and result.get("result") == "not_found"):
                failed.append(result)
        if deleted or not failed:
            client.indices.refresh(index=index)
    if not failed:
        return deleted
    first = failed[0]
    ids = ", ".join(repr(r.get("_id")) for r in failed[:SHOWN_FAILURES]) + (" ..." if len(failed) > SHOWN_FAILURES else "")
    what = (f"deleting {len(failed)} passage(s) from {name!r} ({deleted} other(s) deleted; failed ids: {ids})")
    raise http_error(conn, what, first.get("status"), first.get("error"), name)
