"""Bad input matrix: every malformed file, hostile query and invalid vector gets a clear error or a documented
handling, and what is already stored is never lost or changed (see docs/reliability.md)."""

from __future__ import annotations

import json
import math
import uuid

import pandas as pd
import pytest

from encoder import SparseEncoder
from ingest import InputFileError, ingest_path
from retrieval.backends import EmbeddedIndex
from retrieval.backends.vector_check import InvalidVectorError
from retrieval.index_meta import IndexMeta
from retrieval.passage import Passage
from retrieval.query import prepare_query_tokens
from retrieval.searcher import Searcher
from tiny_models import KOREAN_SENTENCES

BASE = [{"id": f"B-{i}", "domain": "legal", "title": f"기존 {i}", "text": KOREAN_SENTENCES[i]} for i in range(3)]


@pytest.fixture(scope="module")
def encoder(tiny_model_dir) -> SparseEncoder:
    return SparseEncoder.load(tiny_model_dir, device="cpu")


@pytest.fixture
def store(tmp_path, encoder):
    """An embedded index already holding three documents."""
    index = EmbeddedIndex.open_or_create(tmp_path / "idx", IndexMeta.for_encoder("idx", encoder))
    base = tmp_path / "base.jsonl"
    base.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in BASE), encoding="utf-8")
    ingest_path(base, index, encoder, progress=False)
    yield index
    index.close()


def _snapshot(index) -> dict[str, tuple[str, str]]:
    """Passage id -> (content hash, text): what must survive a bad ingest unchanged."""
    hashes = index.content_hashes()
    return {p.id: (hashes[p.id], p.text) for p in index.get_passages(sorted(hashes))}


def _ingest(path, index, encoder, **kw):
    before = _snapshot(index)
    report = ingest_path(path, index, encoder, progress=False, **kw)
    after = _snapshot(index)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing stored was lost or changed
    return report, after


def _problems(report) -> list[tuple[int | None, str]]:
    return [(p.line, p.reason) for p in report.problems]


# ------------------------------------------------------------------ malformed files


def test_csv_ragged_rows_are_reported_per_line(tmp_path, store, encoder):
    path = tmp_path / "ragged.csv"
    path.write_text('id,text,title\nA,보증금 반환,t\nB,본문,t,extra,more\nC,본문만\n\nD,"여러\n줄",t\nE,당뇨,t\n',
                    encoding="utf-8")
    report, after = _ingest(path, store, encoder)
    assert _problems(report) == [(3, "5 fields where the header has 3 (ragged row; quote cells that contain commas)"),
                                 (4, "2 fields where the header has 3 (ragged row; quote cells that contain commas)")]
    assert report.written == 3 and {"A#0", "D#0", "E#0"} <= after.keys()


def test_csv_with_the_wrong_delimiter_names_it(tmp_path, store, encoder):
    path = tmp_path / "semi.csv"
    path.write_text("id;text;title\nA;본문;t\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="no column 'id'.*semicolon-separated"):
        _ingest(path, store, encoder)
    assert store.count() == 3


def test_csv_byte_order_mark_is_dropped(tmp_path, store, encoder):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffid,text\nA,보증금 반환\n".encode("utf-8"))
    report, after = _ingest(path, store, encoder)
    assert report.written == 1 and not report.problems and after["A#0"][1] == "보증금 반환"


def test_empty_csv_and_header_only(tmp_path, store, encoder):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty or has no header"):
        _ingest(empty, store, encoder)
    header = tmp_path / "header.csv"
    header.write_text("id,text\n", encoding="utf-8")
    report, _ = _ingest(header, store, encoder)
    assert (report.documents_read, report.written, report.failed) == (0, 0, 0)


def test_broken_jsonl_lines_are_reported_and_the_rest_ingested(tmp_path, store, encoder):
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"id": "J1", "text": "\xeb\xb3\xb4\xec\xa6\x9d\xea\xb8\x88"}\n{"id": "J2", "text": \n[1, 2]\n'
                     b'{"id": "J3", "text": "ok \xff"}\n{"id": "J4", "text": "\xeb\x8b\xb9\xeb\x87\xa8"}\n')
    report, after = _ingest(path, store, encoder)
    assert [(line, reason.split(" (")[0]) for line, reason in _problems(report)] == [
        (2, "invalid JSON"), (3, "expected a JSON object, got list"), (4, "broken UTF-8")]
    assert report.written == 2 and {"J1#0", "J4#0"} <= after.keys()


def test_jsonl_that_is_not_jsonl_fails_the_file(tmp_path, store, encoder):
    path = tmp_path / "x.jsonl"
    path.write_text("id,text\nA,본문\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="not a JSON Lines file"):
        _ingest(path, store, encoder)
    assert store.count() == 3


def test_parquet_with_missing_columns_says_which(tmp_path, store, encoder):
    path = tmp_path / "nocol.parquet"
    pd.DataFrame({"id": ["P1"], "body": ["본문"]}).to_parquet(path)
    with pytest.raises(InputFileError, match="no column 'text'.*--text-col"):
        _ingest(path, store, encoder)
    nulls = tmp_path / "nulls.parquet"
    pd.DataFrame({"id": ["P1", None, "P3"], "text": [None, "본문", "당뇨"]}).to_parquet(nulls)
    report, after = _ingest(nulls, store, encoder)
    assert _problems(report) == [(1, "missing 'text'"), (2, "missing 'id'")] and "P3#0" in after


# ------------------------------------------------------------------ hostile contents


def test_empty_and_whitespace_only_texts_are_skipped(tmp_path, store, encoder):
    path = tmp_path / "blank.jsonl"
    rows = [{"id": "E1", "text": ""}, {"id": "E2", "text": " \t\n\u3000 "}, {"id": "E3", "text": "본문"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report, after = _ingest(path, store, encoder)
    assert _problems(report) == [(1, "empty 'text'"), (2, "empty 'text'")] and "E3#0" in after


def test_a_one_megabyte_document_is_split_into_passages(tmp_path, store, encoder):
    sentence = "임대인은 보증금을 돌려주어야 한다. "
    text = sentence * (1024 * 1024 // len(sentence.encode("utf-8")) + 1)
    assert len(text.encode("utf-8")) >= 1024 * 1024
    path = tmp_path / "big.csv"
    pd.DataFrame([{"id": "BIG", "text": text}]).to_csv(path, index=False)  # one CSV cell far over csv's 128 KiB default
    report, after = _ingest(path, store, encoder, write_batch=1024)
    assert report.failed == 0 and report.passages > 100 and report.written == report.passages
    big = [k for k in after if k.startswith("BIG#")]
    assert len(big) == report.passages and encoder.truncated_count == 0


def test_control_characters_emoji_and_mixed_scripts_are_stored_verbatim(tmp_path, store, encoder):
    texts = {"CTL": "보증금\x00 반환\x1b[31m\x07 요청\u200b", "EMO": "보증금 😀🏠 돌려받기 👍🏽",
             "MIX": "Deposit 보증금 保證金 депозит وديعة 1,000만원"}
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": v}, ensure_ascii=False) + "\n" for k, v in texts.items()),
                    encoding="utf-8")
    report, after = _ingest(path, store, encoder)
    assert report.written == 3 and not report.problems
    for doc_id, text in texts.items():
        assert after[f"{doc_id}#0"][1] == text  # stored exactly as given
    reopened = EmbeddedIndex.open(store.root)
    assert reopened.get_passages(["CTL#0"])[0].text == texts["CTL"]
    reopened.close()
    hits = Searcher(encoder, store).search("보증금 반환", "bm25", 10).hits
    assert {"CTL", "EMO", "MIX"} & {h.hit.doc_id for h in hits}


def test_duplicate_ids_and_ids_with_spaces_or_slashes(tmp_path, store, encoder):
    path = tmp_path / "ids.jsonl"
    rows = [{"id": "same", "text": "첫 본문"}, {"id": "same", "text": "다른 본문"}, {"id": "same", "text": "첫 본문"},
            {"id": "a b/c\\d#1", "text": "보증금"}, {"id": "../etc/passwd", "text": "당뇨"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    report, after = _ingest(path, store, encoder)
    assert [(line, reason.split(" (")[0]) for line, reason in _problems(report)] == [
        (2, "duplicate id 'same' with different content")]
    assert report.duplicates_ignored == 1 and after["same#0"][1] == "첫 본문"
    assert after["a b/c\\d#1#0"][1] == "보증금" and after["../etc/passwd#0"][1] == "당뇨"
    assert sorted(p.name for p in store.root.iterdir() if "passwd" in p.name) == []  # ids never become paths


def test_invalid_utf8_in_csv_is_reported_per_line(tmp_path, store, encoder):
    path = tmp_path / "bytes.csv"
    path.write_bytes("id,text\nU1,보증금\n".encode() + b"U2,\xff\xfe bad\n" + "U3,당뇨\n".encode())
    report, after = _ingest(path, store, encoder)
    assert _problems(report) == [(3, "broken UTF-8")] and {"U1#0", "U3#0"} <= after.keys()


# ------------------------------------------------------------------ queries


@pytest.mark.parametrize("query", ["", "   ", "보증금 " * 2000, '{"query": {"match_all": {}}}',
                                   "<script>alert(1)</script><img src=x onerror=alert(1)>",
                                   'title:(보증금 OR 당뇨) AND text:"반환"~2 * ? \\ / [1 TO 5] {a} ^3 -x +y && || !'])
def test_hostile_queries_return_ranked_hits_or_nothing(store, encoder, query):
    searcher = Searcher(encoder, store)
    before = _snapshot(store)
    for mode in ("sparse", "bm25", "hybrid"):
        result = searcher.search(query, mode, 5)
        assert len(result.hits) <= 5 and all(math.isfinite(h.hit.score) for h in result.hits)
        if not query.strip():
            assert result.hits == []
    assert _snapshot(store) == before


# ------------------------------------------------------------------ vectors sent to backends

BAD_VECTORS = {"zero": {"보증금": 0.0}, "negative": {"보증금": -1.0}, "nan": {"보증금": float("nan")},
               "inf": {"보증금": float("inf")}, "dot": {"6.5": 1.0}, "space": {"보 증금": 1.0}, "empty": {"": 1.0}}


def _passage(pid: str) -> Passage:
    return Passage(id=pid, doc_id=pid.split("#")[0], text="보증금 반환", title=pid, domain="legal", content_hash=f"h-{pid}")


@pytest.mark.parametrize("case", sorted(BAD_VECTORS))
def test_embedded_index_refuses_invalid_vectors_and_stores_nothing(store, case):
    before = _snapshot(store)
    with pytest.raises(InvalidVectorError, match=r"passage 'BAD#0': .*(finite|> 0|feature name)"):
        store.add([_passage("OK#0"), _passage("BAD#0")], [{"보증금": 1.0}, BAD_VECTORS[case]])
    assert _snapshot(store) == before
    reopened = EmbeddedIndex.open(store.root)
    assert reopened.count() == 3
    reopened.close()


def test_the_bulk_writer_refuses_every_invalid_vector_before_sending(tmp_path):
    from retrieval.backends.opensearch_bulk import BulkWriter

    writer = BulkWriter(client=None, index="i", dead_letter_path=tmp_path / "dead.jsonl")
    cases = sorted(BAD_VECTORS)
    passages = [_passage("OK#0")] + [_passage(f"{c.upper()}#0") for c in cases]
    actions = list(writer._actions(passages, [{"보증금": 1.0}] + [BAD_VECTORS[c] for c in cases]))
    writer.drain()
    assert [a["_id"] for a in actions] == ["OK#0"]
    assert {r.passage_id for r in writer.rejected} == {f"{c.upper()}#0" for c in cases}
    assert all(r.status is None for r in writer.rejected)
    assert len((tmp_path / "dead.jsonl").read_text(encoding="utf-8").splitlines()) == len(cases)


def test_query_vectors_drop_bad_weights_and_refuse_unsafe_tokens():
    assert prepare_query_tokens({"a": 0.0, "b": -1.0, "c": float("nan"), "d": float("inf"), "e": 100.0, "f": 1.0}) == \
        {"e": 64.0, "f": 1.0}
    for name in ("6.5", "보 증금", ""):
        with pytest.raises(ValueError, match="not an OpenSearch-safe feature name"):
            prepare_query_tokens({name: 1.0})


@pytest.mark.opensearch
@pytest.mark.every_opensearch_version
def test_opensearch_dead_letters_every_invalid_vector(opensearch_url, encoder, tmp_path):
    from retrieval.backends.opensearch import OpenSearchIndex
    from retrieval.backends.opensearch_connection import OpenSearchConnection

    name = f"bad-{uuid.uuid4().hex[:10]}"
    store = OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder),
                                           conn=OpenSearchConnection(url=opensearch_url), dead_letter_dir=tmp_path)
    try:
        cases = sorted(BAD_VECTORS)
        passages = [_passage("a b/c#0")] + [_passage(f"{c.upper()}#0") for c in cases]
        store.add(passages, [{"보증금": 1.0}] + [BAD_VECTORS[c] for c in cases])
        store.finish_writes()
        rejected = {r.passage_id: r for r in store.rejected_writes()}
        assert set(rejected) == {f"{c.upper()}#0" for c in cases}
        assert all(r.reason for r in rejected.values())
        assert all(r.status is None for r in rejected.values())  # refused before sending, none by OpenSearch
        assert "feature name" in rejected["DOT#0"].reason and "> 0" in rejected["ZERO#0"].reason
        assert store.count() == 1 and store.get_passages(["a b/c#0"])[0].text == "보증금 반환"
        assert [h.id for h in store.search_bm25('title:(보증금) AND "반환"~2 *', 5)] == ["a b/c#0"]
        assert store.search_bm25("보증금 " * 2000, 5)[0].id == "a b/c#0"
    finally:
        store.delete_index()
        store.close()
