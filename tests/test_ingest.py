"""The ingest worker: every input format, bad rows, chunking, replacement of changed documents."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from encoder import SparseEncoder
from ingest import ColumnMapping, InputFileError, PassageSplitter, ingest_path
from retrieval.backends import EmbeddedIndex
from retrieval.index_meta import IndexMeta
from tiny_models import KOREAN_SENTENCES

DOCS = [
    {"id": "L-1", "domain": "legal", "category": "임대차", "title": "보증금 반환", "text": KOREAN_SENTENCES[0]},
    {"id": "L-2", "domain": "legal", "category": "노동", "title": "해고 예고", "text": KOREAN_SENTENCES[3]},
    {"id": "M-1", "domain": "medical", "category": "내분비", "title": "당뇨 진단", "text": KOREAN_SENTENCES[5]},
]
LONG_TEXT = " ".join(KOREAN_SENTENCES * 2)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    return SparseEncoder.load(tiny_model_dir, device="cpu")


def _index(tmp_path, encoder, name="t"):
    return EmbeddedIndex.open_or_create(tmp_path / name, IndexMeta.for_encoder(name, encoder))


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_ingest_tabular_formats(tmp_path, encoder, fmt):
    path = tmp_path / f"docs.{fmt}"
    frame = pd.DataFrame(DOCS)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        _write_jsonl(path, DOCS)
    index = _index(tmp_path, encoder)
    report = ingest_path(path, index, encoder, progress=False)
    assert (report.documents_read, report.written, report.failed) == (3, 3, 0)
    stored = {p.id: p for p in index.get_passages(["L-1#0", "L-2#0", "M-1#0"])}
    assert stored["M-1#0"].domain == "medical" and stored["M-1#0"].title == "당뇨 진단"
    assert stored["L-2#0"].extra["category"] == "노동"
    assert index.search_bm25("보증금")[0].doc_id == "L-1"
    again = ingest_path(path, index, encoder, progress=False)
    assert (again.written, again.skipped_unchanged) == (0, 3)


def test_ingest_txt_folder(tmp_path, encoder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "lease.txt").write_text("전세 보증금 안내\n" + KOREAN_SENTENCES[0], encoding="utf-8")
    (folder / "one_line.txt").write_text(KOREAN_SENTENCES[7], encoding="utf-8")
    (folder / "broken.txt").write_bytes("첫 줄\n둘째 줄 ".encode() + b"\xff\n")
    index = _index(tmp_path, encoder)
    report = ingest_path(folder, index, encoder, columns=ColumnMapping(domain="legal"), progress=False)
    assert report.written == 2 and report.failed == 1
    assert str(report.problems[0]).startswith(f"{folder / 'broken.txt'}:2: broken UTF-8")
    lease, one = index.get_passages(["lease#0", "one_line#0"])
    assert (lease.title, lease.text, lease.domain) == ("전세 보증금 안내", KOREAN_SENTENCES[0], "legal")
    assert one.title == "one_line"


def test_bad_rows_are_reported_with_file_and_line(tmp_path, encoder):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(DOCS[0], ensure_ascii=False), '{"id": "e", "text": "   "}', "{not json",
             '{"id": "n", "text": 123}', '{"text": "아이디 없음"}',
             json.dumps({"id": "L-1", "text": "다른 본문"}, ensure_ascii=False), json.dumps(DOCS[1], ensure_ascii=False)]
    data = "\n".join(lines).encode() + b'\n{"id": "u", "text": "\xed\x95\x9c\xff"}\n'
    path.write_bytes(data)
    report = ingest_path(path, _index(tmp_path, encoder), encoder, progress=False)
    assert report.written == 2 and report.failed == 6
    got = [(p.line, p.reason.split(" (")[0]) for p in report.problems]
    assert got == [(2, "empty 'text'"), (3, "invalid JSON"), (4, "'text' is int, expected a string"),
                   (5, "missing 'id'"), (6, "duplicate id 'L-1' with different content"), (8, "broken UTF-8")]
    assert all(p.file == str(path) for p in report.problems)


def test_csv_line_numbers_and_unparseable_files(tmp_path, encoder):
    path = tmp_path / "d.csv"
    path.write_text('id,text,title\nA,"첫 줄\n둘째 줄",t\nB,,t\nC,본문,t\n', encoding="utf-8")
    report = ingest_path(path, _index(tmp_path, encoder), encoder, progress=False)
    assert [(p.line, p.reason) for p in report.problems] == [(4, "empty 'text'")]
    bad = tmp_path / "x.parquet"
    bad.write_text("not parquet", encoding="utf-8")
    with pytest.raises(InputFileError, match="x.parquet"):
        ingest_path(bad, _index(tmp_path, encoder, "u"), encoder, progress=False)
    nocol = tmp_path / "y.csv"
    nocol.write_text("doc,body\n1,본문\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="no column 'id'.*--id-col"):
        ingest_path(nocol, _index(tmp_path, encoder, "v"), encoder, progress=False)


def test_chunking_fits_overlaps_and_numbers(tmp_path, encoder):
    splitter = PassageSplitter(encoder, overlap=8)
    pieces = splitter.split(LONG_TEXT)
    assert len(pieces) > 3
    for piece in pieces:
        assert len(encoder.tokenizer(piece)["input_ids"]) <= encoder.max_length
    for a, b in zip(pieces, pieces[1:]):  # consecutive passages share text
        assert any(b.startswith(a[i:]) for i in range(1, len(a)) if a[i] == " " or a[i - 1] == " ")
    assert splitter.split("짧은 문장입니다.") == ["짧은 문장입니다."]
    path = _write_jsonl(tmp_path / "long.jsonl", [{"id": "LONG", "title": "긴 글", "domain": "legal", "text": LONG_TEXT}])
    index = _index(tmp_path, encoder)
    ingest_path(path, index, encoder, progress=False)
    ids = sorted(index.content_hashes(), key=lambda i: int(i.split("#")[1]))
    assert ids == [f"LONG#{n}" for n in range(len(pieces))]
    assert all(p.doc_id == "LONG" and p.title == "긴 글" for p in index.get_passages(ids))
    assert encoder.truncated_count == 0
    # the document shrinks: its surplus chunks are removed, the others replaced
    _write_jsonl(path, [{"id": "LONG", "title": "긴 글", "domain": "legal", "text": KOREAN_SENTENCES[1]}])
    report = ingest_path(path, index, encoder, progress=False)
    assert report.deleted_stale == len(pieces) - 1
    assert index.content_hashes().keys() == {"LONG#0"}
    assert index.get_passages(["LONG#0"])[0].text == KOREAN_SENTENCES[1]


def test_a_new_precision_re_encodes_once_and_fp32_fingerprints_are_unchanged(tmp_path, encoder, tiny_model_dir):
    from ingest.worker import model_fingerprint

    assert model_fingerprint(encoder) == f"{encoder.model_id}|{encoder.vocab_hash}|{encoder.document_pruning}"
    path = _write_jsonl(tmp_path / "docs.jsonl", DOCS)
    index = _index(tmp_path, encoder)
    assert ingest_path(path, index, encoder, progress=False).written == 3
    bf16 = SparseEncoder.load(tiny_model_dir, device="cpu", precision="bf16")
    assert model_fingerprint(bf16).endswith("|bf16")
    first = ingest_path(path, index, bf16, progress=False)
    assert (first.written, first.skipped_unchanged, index.count()) == (3, 0, 3)
    again = ingest_path(path, index, bf16, progress=False)
    assert (again.written, again.skipped_unchanged, index.count()) == (0, 3, 3)


def test_a_failed_background_write_stops_the_run_and_a_rerun_completes_it(tmp_path, encoder, monkeypatch):
    docs = [{"id": f"D-{i}", "text": f"{KOREAN_SENTENCES[i % len(KOREAN_SENTENCES)]} 문서 번호 {i}"} for i in range(10)]
    path = _write_jsonl(tmp_path / "docs.jsonl", docs)
    index = _index(tmp_path, encoder)
    calls, real_add = [], index.add

    def add_failing_on_third(passages, vectors):
        calls.append(len(passages))
        if len(calls) == 3:
            raise OSError("disk full")
        real_add(passages, vectors)

    monkeypatch.setattr(index, "add", add_failing_on_third)
    seen = []
    with pytest.raises(OSError, match="disk full"):
        ingest_path(path, index, encoder, progress=False, write_batch=2, on_batch_written=seen.append)
    assert calls == [2, 2, 2] and seen == [2, 4]  # the 4th batch was encoded but never written
    assert index.count() == 4
    monkeypatch.setattr(index, "add", real_add)
    rerun = ingest_path(path, index, encoder, progress=False, write_batch=2)
    assert (rerun.written, rerun.skipped_unchanged, index.count()) == (6, 4, 10)


def test_split_many_equals_split_one_by_one(encoder):
    splitter = PassageSplitter(encoder, overlap=8)
    texts = [LONG_TEXT, "  ", "짧은 문장입니다.", KOREAN_SENTENCES[0], " " + LONG_TEXT[:300] + " "]
    assert splitter.split_many(texts) == [splitter.split(t) for t in texts]
    assert splitter.split_many([]) == []
