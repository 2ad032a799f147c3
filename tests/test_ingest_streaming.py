"""The ingest worker streams: it never holds the corpus's documents or passages, only a batch or two of them.

Structural, not timed: live `SourceDocument` / `Passage` objects are counted (gc) while the reader yields and while the
index writes, and must stay within a batch or two although the corpus is many times larger."""

from __future__ import annotations

import gc
import json
import tracemalloc

import pytest

import ingest.worker as worker
from encoder import SparseEncoder
from ingest.readers import SourceDocument
from retrieval.backends import EmbeddedIndex
from retrieval.index_meta import IndexMeta
from retrieval.passage import Passage
from tiny_models import KOREAN_SENTENCES

DOCUMENTS = 600
WRITE_BATCH = 32
SPLIT_BATCH = 64


def _live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    return SparseEncoder.load(tiny_model_dir, device="cpu")


def test_ingest_holds_a_batch_of_documents_and_passages_not_the_corpus(tmp_path, encoder, monkeypatch):
    path = tmp_path / "many.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(DOCUMENTS):
            text = f"{KOREAN_SENTENCES[i % len(KOREAN_SENTENCES)]} 문서 번호 {i}"
            fh.write(json.dumps({"id": f"D-{i}", "domain": "legal", "text": text}, ensure_ascii=False) + "\n")
    index = EmbeddedIndex.open_or_create(tmp_path / "s", IndexMeta.for_encoder("s", encoder))
    base_docs, base_passages = _live(SourceDocument), _live(Passage)
    docs_while_reading: list[int] = []
    real_reader, real_add = worker.read_documents, index.add

    def counting_reader(*args):
        for n, item in enumerate(real_reader(*args), start=1):
            if n % 100 == 0:
                docs_while_reading.append(_live(SourceDocument) - base_docs)
            yield item

    at_writes: list[tuple[int, int]] = []

    def counting_add(passages, vectors):
        real_add(passages, vectors)
        at_writes.append((_live(SourceDocument) - base_docs, _live(Passage) - base_passages))

    monkeypatch.setattr(worker, "SPLIT_BATCH", SPLIT_BATCH)
    monkeypatch.setattr(worker, "read_documents", counting_reader)
    monkeypatch.setattr(index, "add", counting_add)
    report = worker.ingest_path(path, index, encoder, progress=False, write_batch=WRITE_BATCH)
    monkeypatch.undo()

    assert report.written == report.passages == DOCUMENTS and len(at_writes) == DOCUMENTS // WRITE_BATCH + 1
    # reading: the batch being split and the next one being read (the old worker kept them all: 100, 200, ... 600)
    assert len(docs_while_reading) == DOCUMENTS // 100
    assert max(docs_while_reading) <= 2 * SPLIT_BATCH + 1, docs_while_reading
    # writing: no document left, and the passages of the batch being written, the one encoded and the one read
    assert max(d for d, _ in at_writes) == 0, at_writes
    assert max(p for _, p in at_writes) <= 3 * WRITE_BATCH, at_writes
    # and the index did not keep what it wrote: the rows are read back from disk when needed
    assert index._snapshot.segments is None
    assert len(index.content_hashes()) == DOCUMENTS and index.count() == DOCUMENTS
    index.close()


def test_a_rerun_after_streaming_finds_everything_stored(tmp_path, encoder):
    rows = [{"id": f"R-{i}", "text": f"{KOREAN_SENTENCES[i % len(KOREAN_SENTENCES)]} {i}"} for i in range(40)]
    rows.append(dict(rows[3]))  # the same document twice: ignored, not written twice
    rows.append({"id": "R-5", "text": "다른 내용"})  # the same id with other content: reported, the first kept
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    index = EmbeddedIndex.open_or_create(tmp_path / "r", IndexMeta.for_encoder("r", encoder))
    first = worker.ingest_path(path, index, encoder, progress=False, write_batch=7)
    assert (first.documents_read, first.written, first.duplicates_ignored, first.failed) == (40, 40, 1, 1)
    assert "duplicate id 'R-5'" in first.problems[0].reason and "line 6" in first.problems[0].reason
    index.close()
    reopened = EmbeddedIndex.open(tmp_path / "r")
    again = worker.ingest_path(path, reopened, encoder, progress=False)
    assert (again.written, again.skipped_unchanged, reopened.count()) == (0, 40, 40)
    reopened.close()


def test_documents_seen_live_in_sqlite_not_in_python_objects():
    from ingest.documents_seen import SeenDocuments, document_digest

    def doc(i: int, text: str = "본문", line: int | None = None, file: str = "c.jsonl") -> SourceDocument:
        return SourceDocument(doc_id=f"D-{i}", text=text, title="", domain="legal", file=file, line=line)

    docs = [doc(i, line=i + 1) for i in range(5000)]
    with SeenDocuments() as seen:
        assert seen.first_seen(docs[0]) is None
        tracemalloc.start()
        try:
            assert all(seen.first_seen(d) is None for d in docs[1:])
            held, _ = tracemalloc.get_traced_memory()  # Python's allocations: SQLite's own are not traced
        finally:
            tracemalloc.stop()
        assert held < 50_000, held  # a dict of ids, digests and lines held ~1.2 MB for these 5000
        assert len(seen) == 5000
        again = seen.first_seen(doc(42, text="다른 본문", line=9000))
        assert again is not None and again.where == 43 and again.digest == document_digest(doc(42))
        # a document without a line number is named by its file; odd ids and file names survive the round trip
        assert seen.first_seen(doc(-1, line=None, file="폴더/\udcff.txt")) is None
        assert seen.first_seen(SourceDocument("\ud800", "본문", "", "legal", line=3)) is None
        assert seen.first_seen(doc(-1, text="x", line=None, file="b.txt")).where == "폴더/\udcff.txt"
        assert seen.first_seen(SourceDocument("\ud800", "x", "", "legal", line=4)).where == 3
