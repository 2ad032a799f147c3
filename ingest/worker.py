"""The ingest worker: read a corpus, split it into passages, encode the new ones, write them in batches.

Resumable and idempotent: every passage carries a content hash (text + metadata + model, see
`retrieval.passage.content_hash`); passages whose stored hash matches are skipped, the rest are
encoded and written `write_batch` at a time (each write is durable on its own; a batch is written
while the next one is encoded), and stored chunks a changed document no longer has are deleted.
Running the same command again after a crash therefore finishes the job without duplicating anything.

Streamed: documents are read, split and compared with the stored hashes one batch at a time, and the passages to
write wait in a temporary file (`PassageSpool`) until stale chunks are deleted and encoding starts; the ids and
digests of the documents seen wait in a temporary SQLite database (`SeenDocuments`). What is held for the whole run
is the stored ids and hashes and the problem rows.

A backend that encodes documents itself (an OpenSearch index with an ml-commons ingest pipeline,
`encodes_documents`) gets each passage as the model reads it (`encoder.model_text`: Kiwi-segmented for models
that ask for it) instead of a vector; the encoder then only splits and segments. Its content hashes name the
cluster's model, so switching between client- and server-side encoding re-writes every passage.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ingest.chunking import PassageSplitter
from ingest.documents_seen import SeenDocuments, batched, document_digest
from ingest.passage_spool import PassageSpool
from ingest.problems import RowProblem
from ingest.readers import ColumnMapping, SourceDocument, read_documents
from retrieval.backends.base import RejectedWrite, SearchBackend
from retrieval.passage import Passage, content_hash, doc_id_of, passage_id

log = logging.getLogger(__name__)

DEFAULT_WRITE_BATCH = 256  # passages per durable write (one segment of the embedded index)


@dataclass
class IngestReport:
    """The summary of one ingest run."""

    documents_read: int = 0
    passages: int = 0
    written: int = 0
    skipped_unchanged: int = 0
    deleted_stale: int = 0
    duplicates_ignored: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    rejected: list[RejectedWrite] = field(default_factory=list)  # passages the backend refused (dead letters)
    encode_seconds: float = 0.0

    @property
    def failed(self) -> int:
        """Bad rows skipped."""
        return len(self.problems)

    @property
    def passages_per_second(self) -> float:
        """Encoding + writing throughput of this run."""
        return self.written / self.encode_seconds if self.encode_seconds else 0.0


def model_fingerprint(encoder) -> str:
    """What of the encoder makes a stored vector reusable: model, vocabulary, document pruning, precision, and the
    model folder's revision when it records one (an adapted model replaced with `ksearch adapt --force`)."""
    precision = getattr(encoder, "precision", "fp32")
    suffix = "" if precision == "fp32" else f"|{precision}"  # fp32 fingerprints stay what they were before precisions
    revision = getattr(encoder, "revision", None)
    suffix += f"|rev:{revision}" if revision else ""  # likewise for models without a revision
    return f"{encoder.model_id}|{encoder.vocab_hash}|{encoder.document_pruning}{suffix}"


def ingest_fingerprint(encoder, backend: SearchBackend) -> str:
    """What a stored passage's vector depends on: `model_fingerprint`, or, when the backend encodes documents
    itself, the model, vocabulary and pruning and the cluster's document model (not the client's precision)."""
    server = backend.meta.server_encoding if backend.encodes_documents else None
    if server is None:
        return model_fingerprint(encoder)
    return f"{encoder.model_id}|{encoder.vocab_hash}|{encoder.document_pruning}|server:{server.document_model_id}"


def iter_documents(path: Path, fmt: str | None, cols: ColumnMapping, report: IngestReport) -> Iterator[SourceDocument]:
    """Valid documents of `path`, streamed in file order; bad rows and conflicting duplicate ids go to the report.

    Only a digest of each document is kept to tell duplicates apart (`SeenDocuments`, on disk), never its text."""
    with SeenDocuments() as seen:
        for item in read_documents(path, fmt, cols):
            if isinstance(item, RowProblem):
                report.problems.append(item)
                continue
            first = seen.first_seen(item)
            if first is None:
                report.documents_read += 1
                yield item
            elif first.digest == document_digest(item):
                report.duplicates_ignored += 1
            else:
                where = f"line {first.where}" if isinstance(first.where, int) else first.where
                report.problems.append(RowProblem(item.file, item.line, f"duplicate id {item.doc_id!r} with different "
                                                  f"content (first seen at {where}); kept the first"))


def collect_documents(path: Path, fmt: str | None, cols: ColumnMapping, report: IngestReport) -> list[SourceDocument]:
    """`iter_documents` as a list (for callers that need every document at once: adaptation, benchmarks)."""
    return list(iter_documents(path, fmt, cols, report))


SPLIT_BATCH = 256  # documents whose token counts are taken in one call (Kiwi analyses a list on all its workers)


def iter_document_passages(documents: Iterable[SourceDocument], splitter: PassageSplitter,
                           fingerprint: str) -> Iterator[tuple[str, list[Passage]]]:
    """(document id, its passages `DOCID#N` with metadata and content hash), `SPLIT_BATCH` documents split at a time."""
    for chunk in batched(documents, SPLIT_BATCH):
        for doc, pieces in zip(chunk, splitter.split_many([d.text for d in chunk])):
            passages = []
            for number, text in enumerate(pieces):
                p = Passage(id=passage_id(doc.doc_id, number), doc_id=doc.doc_id, text=text, title=doc.title,
                            domain=doc.domain, extra=dict(doc.extra))
                passages.append(Passage(**{**p.__dict__, "content_hash": content_hash(p, fingerprint)}))
            yield doc.doc_id, passages


def split_documents(documents: list[SourceDocument], splitter: PassageSplitter, fingerprint: str) -> list[Passage]:
    """Every document's passages (`DOCID#N`), with metadata and content hash."""
    return [p for _, passages in iter_document_passages(documents, splitter, fingerprint) for p in passages]


def plan_writes(groups: Iterable[tuple[str, list[Passage]]], stored: Mapping[str, str], spool: PassageSpool,
                report: IngestReport) -> list[str]:
    """Put every passage whose stored hash differs into `spool`; return the stored ids the input's documents no longer
    have (stale chunks). Holds one document's passages at a time, plus the stored ids grouped by document."""
    stored_by_doc: dict[str, list[str]] = defaultdict(list)
    for pid in stored:
        stored_by_doc[doc_id_of(pid)].append(pid)
    stale: list[str] = []
    for doc_id, passages in groups:
        report.passages += len(passages)
        if doc_id in stored_by_doc:
            new_ids = {p.id for p in passages}
            stale += [pid for pid in stored_by_doc.pop(doc_id) if pid not in new_ids]
        for p in passages:
            if stored.get(p.id) == p.content_hash:
                report.skipped_unchanged += 1
            else:
                spool.append(p)
    return stale


def _encode_and_write(spool: PassageSpool, backend: SearchBackend, encoder, report: IngestReport, write_batch: int,
                      progress: bool, on_batch_written: Callable[[int], None] | None,
                      on_progress: Callable[[int, int], None] | None) -> None:
    """Encode the spooled passages `write_batch` at a time, one write in flight while the next batch is encoded."""
    to_write = len(spool)
    if on_progress is not None:
        on_progress(0, to_write)

    def written(count: int) -> None:
        report.written += count
        bar.update(count)
        if on_batch_written is not None:
            on_batch_written(report.written)
        if on_progress is not None:
            on_progress(report.written, to_write)

    if backend.encodes_documents:  # the backend encodes: send each passage as the model reads it
        encode, write, desc = encoder.model_text, backend.add_texts, "sending"
    else:
        encode, write, desc = encoder.encode_documents, backend.add, "encoding"

    # Leaving the `with` (also on Ctrl-C or an error) waits for the write in flight, so every started write is whole
    # before we return.
    with tqdm(total=to_write, unit="passage", desc=desc, disable=not progress or not to_write, smoothing=0.1) as bar, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") as writer:
        pending: tuple[Future, int] | None = None
        for batch in spool.batches(write_batch):
            encoded = encode([p.text for p in batch])
            if pending is not None:
                pending[0].result()  # a failed write stops the run here, before anything later is written
                written(pending[1])
            pending = (writer.submit(write, batch, encoded), len(batch))
        if pending is not None:
            pending[0].result()
            written(pending[1])


def ingest_path(
    path: Path,
    backend: SearchBackend,
    encoder,
    *,
    fmt: str | None = None,
    columns: ColumnMapping = ColumnMapping(),
    write_batch: int = DEFAULT_WRITE_BATCH,
    progress: bool = True,
    on_batch_written: Callable[[int], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest `path` into `backend` with `encoder`; see the module docstring.

    `on_progress(written, to_write)` is called once before encoding and after every batch written.
    """
    backend.check_encoder(encoder.model_id, encoder.vocab_hash)
    report = IngestReport()
    documents = iter_documents(Path(path), fmt, columns, report)
    groups = iter_document_passages(documents, PassageSplitter(encoder), ingest_fingerprint(encoder, backend))
    with PassageSpool() as spool:  # passages to write wait on disk, not in memory
        stale = plan_writes(groups, backend.content_hashes(), spool, report)
        report.deleted_stale = backend.delete(stale) if stale else 0
        start = time.perf_counter()
        _encode_and_write(spool, backend, encoder, report, write_batch, progress, on_batch_written, on_progress)
    backend.finish_writes(progress=progress)  # the embedded index may build its approximate index here
    report.encode_seconds = time.perf_counter() - start  # includes the backend's final flush
    report.rejected = backend.rejected_writes()
    report.written -= len(report.rejected)
    return report

