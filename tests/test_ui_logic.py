"""Pure logic of the app: highlighting and escaping, literal vs expansion tokens, rank comparison, uploads, choices."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from retrieval.hits import Hit
from search_ui.backend_choice import available_backends, modes_for
from search_ui.compare import compare_rankings, ndcg_at_10
from search_ui.highlight import Morpheme, Span, find_spans, highlight_html, kiwi_morphemes, morpheme_spans, substring_spans
from search_ui.html_render import chip_html, domain_badge_html, hit_card_html
from search_ui.query_analysis import EXPANSION, LITERAL, classify_query_tokens
from search_ui.sample_data import judged_sample, suggested_queries
from search_ui.upload import MAX_UPLOAD_BYTES, UploadError, check_size, safe_stem, upload_format, write_upload


# ------------------------------------------------------------------ highlighting
def _marked(text: str, spans: list[Span]) -> list[str]:
    return [text[s.start : s.end] for s in spans]


def test_kiwi_spans_cover_the_surface_of_conjugated_and_inflected_words():
    text = "집주인이 보증금을 안 돌려줘요"
    spans = find_spans(text, ["보증금", "돌려주", "집주인"], kiwi_morphemes)
    assert _marked(text, spans) == ["집주인", "보증금", "돌려줘"]
    assert [s.token for s in spans] == ["집주인", "보증금", "돌려주"]


def test_kiwi_spans_glue_suffixes_and_units_like_the_segmenter():
    text = "임차권등기명령을 신청했고 HbA1c는 7%입니다"
    spans = find_spans(text, ["임차권", "hba1c", "7%"], kiwi_morphemes)
    assert _marked(text, spans) == ["임차권", "HbA1c", "7%"]


def test_morpheme_spans_only_glue_touching_morphemes():
    morphemes = [Morpheme("임차", 0, 2), Morpheme("권", 3, 1)]  # not adjacent
    assert morpheme_spans(morphemes, ["임차권"]) == []
    assert morpheme_spans([Morpheme("임차", 0, 2), Morpheme("권", 2, 1)], ["임차권"]) == [Span(0, 3, "임차권")]


def test_substring_spans_without_segmentation_are_case_insensitive_and_prefer_longer_tokens():
    text = "HbA1c and hba1c, 보증금과 보증"
    spans = substring_spans(text, ["HBA1C", "보증", "보증금"])
    assert _marked(text, spans) == ["HbA1c", "hba1c", "보증금", "보증"]
    assert find_spans(text, ["보증금"]) == [Span(17, 20, "보증금")]
    assert find_spans("", ["x"]) == [] and find_spans("abc", []) == []


def test_highlight_html_escapes_all_text_and_marks_spans():
    text = '<script>alert(1)</script> 보증금 <img src=x onerror=alert(1)> "q" & 끝'
    start = text.index("보증금")
    html = highlight_html(text, [Span(start, start + 3, "보증금")], {"보증금": "ks-expansion"})
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<mark class="ks-expansion" title="보증금">보증금</mark>' in html
    assert "&quot;q&quot; &amp; 끝" in html


def test_highlight_html_escapes_hostile_tokens_and_classes_and_keeps_newlines():
    text = "a<b\nc"
    html = highlight_html(text, [Span(0, 1, '"><script>')], {'"><script>': '"onmouseover='})
    assert "<script>" not in html and 'title="&quot;&gt;&lt;script&gt;"' in html and 'class="&quot;onmouseover="' in html
    assert html.endswith("&lt;b<br>c")


def test_highlight_html_drops_overlapping_and_out_of_range_spans():
    html = highlight_html("abcdef", [Span(0, 3, "abc"), Span(1, 2, "b"), Span(4, 10, "x")])
    assert html == '<mark title="abc">abc</mark>def'


# ------------------------------------------------------------------ html pieces
def test_cards_chips_and_badges_escape_their_values():
    card = hit_card_html(1, "<script>alert(1)</script>", "<b>", 1.5, "safe passage", missing=["못", "<i>"])
    assert "<script>" not in card and "&lt;script&gt;" in card and "&lt;b&gt;" in card and "safe passage" in card
    assert "not in this passage: 못 &lt;i&gt;" in card and "<i>" not in card
    assert "not in this passage" not in hit_card_html(1, "t", "legal", 1.0, "p")
    assert "<img" not in chip_html("<img src=x onerror=alert(1)>", EXPANSION, 0.5)
    assert "<i>" not in domain_badge_html("<i>")


# ------------------------------------------------------------------ query analysis
def test_literal_tokens_are_the_model_words_of_the_query():
    tokens = classify_query_tokens({"보증금": 1.0, "임대인": 2.0, "돌려주": 1.5, "##금": 0.2},
                                   ["집주인", "보증금", "돌려주"])
    assert [(t.token, t.kind) for t in tokens] == [("임대인", EXPANSION), ("돌려주", LITERAL), ("보증금", LITERAL),
                                                   ("##금", LITERAL)]


def test_an_expansion_names_the_query_word_kiwi_puts_it_near_and_the_rest_are_the_models_own():
    from search_ui.query_analysis import origins_caption, with_origins

    class Table:
        def of(self, word):
            return {"혈당": (("당뇨", 0.8), ("식후", 0.7)), "오르": (("당뇨", 0.6),)}.get(word, ())

    tokens = with_origins(classify_query_tokens({"혈당": 2.0, "오르": 1.0, "당뇨": 0.9, "식후": 0.5, "레몬": 0.4},
                                                ["밥", "혈당", "오르"]), Table())
    assert [(t.token, t.near) for t in tokens] == [("혈당", ""), ("오르", ""), ("당뇨", "혈당"), ("식후", "혈당"),
                                                   ("레몬", "")]
    assert origins_caption(tokens) == ("Expansions near a query word in Kiwi's embeddings: 당뇨 ← 혈당, 식후 ← 혈당. "
                                       "Added by the model alone, near no query word (mostly unrelated on everyday queries, see the model card): 레몬.")
    assert origins_caption(tokens[:2]) == "No expansions: every token is a word of the query."


def test_chips_are_matched_tokens_the_model_added_not_the_query_words_a_passage_lacks():
    from retrieval.searcher import ExplainedHit
    from search_ui.views.common import matched_expansions

    item = ExplainedHit(Hit(id="D#0", doc_id="D", score=1.0, text="임대차 방식"),
                        matched_tokens={"전세": 2.0, "임대인": 0.6, "임대차": 0.9, "확정일자": 0.3},
                        expansion_tokens={"임대인": 0.9, "확정일자": 0.8, "월세": 0.4},
                        unmatched_query_tokens={"못": 1.2})
    assert matched_expansions(item) == {"임대인": 0.6, "확정일자": 0.3}  # not 전세 (query word), 임대차 (in the text), 못


def test_legend_says_what_the_cards_show():
    from search_ui.html_render import legend_html

    legend = legend_html()
    assert "literal: in the query" in legend and "expansion: added by the model" in legend
    assert "neither the query nor the passage text" in legend and "not in this passage" in legend


def test_durations_stay_short_enough_for_a_metric():
    from search_ui.views.search import format_ms

    assert [format_ms(x) for x in (5.4, 105.2, 9999.4, 12_345.0, 123_456.0)] == \
        ["5 ms", "105 ms", "9999 ms", "12.3 s", "123.5 s"]


def test_model_words_come_from_the_encoders_segmentation():
    from search_ui.query_analysis import model_words

    fake = SimpleNamespace(model_text=lambda texts: ["집주인 돌려주" for _ in texts])
    assert model_words(fake, "집주인이 돌려줘요") == ["집주인", "돌려주"]


# ------------------------------------------------------------------ comparison
def _hits(*doc_ids: str) -> list[Hit]:
    return [Hit(id=f"{d}#0", doc_id=d, score=10.0 - i) for i, d in enumerate(doc_ids)]


def test_compare_rankings_marks_documents_found_by_both_or_one():
    out = compare_rankings({"sparse": _hits("a", "b", "c"), "bm25": _hits("c", "d")}, {"a": 2, "d": 1})
    assert [(h.hit.doc_id, h.found_by, h.label) for h in out["sparse"]] == [
        ("a", ("sparse",), 2), ("b", ("sparse",), 0), ("c", ("sparse", "bm25"), 0)]
    assert [(h.rank, h.found_by) for h in out["bm25"]] == [(1, ("sparse", "bm25")), (2, ("bm25",))]
    assert compare_rankings({"x": _hits("a")})["x"][0].label is None


def test_ndcg_at_10_uses_the_projects_ranx_scoring():
    assert ndcg_at_10(_hits("a", "b"), {"a": 2, "b": 1}) == pytest.approx(1.0)
    assert ndcg_at_10(_hits("b", "a"), {"a": 1}) == pytest.approx(1 / 1.5849625, rel=1e-4)  # relevant at rank 2
    assert ndcg_at_10([], {"a": 1}) == 0.0
    assert ndcg_at_10(_hits("a"), {"a": 0}) is None


# ------------------------------------------------------------------ sample queries
def test_suggested_queries_never_come_from_the_test_split():
    from search_ui.sample_data import QUERIES_PATH, SPLITS_PATH

    test_ids = set(json.loads(SPLITS_PATH.read_text(encoding="utf-8"))["test"])
    test_texts = {json.loads(line)["text"] for line in QUERIES_PATH.read_text(encoding="utf-8").splitlines()
                  if line.strip() and json.loads(line)["id"] in test_ids}
    suggested = suggested_queries(8)
    assert len(suggested) == 8 and not set(suggested) & test_texts


def test_suggested_queries_include_everyday_out_of_domain_ones():
    from search_ui.sample_data import PROBE_PATH, QUERIES_PATH

    probe = {json.loads(line)["text"] for line in PROBE_PATH.read_text(encoding="utf-8").splitlines() if line.strip()}
    sample = {json.loads(line)["text"] for line in QUERIES_PATH.read_text(encoding="utf-8").splitlines() if line.strip()}
    suggested = suggested_queries(6)
    assert len(suggested) == 6 and len(set(suggested) & probe) == 2 and len(set(suggested) & sample) == 4


def test_judged_sample_finds_labels_by_query_text():
    judged = judged_sample(" 집주인이 계약 끝났는데 돈을 안 돌려줘요 ")
    assert judged is not None and judged.query.id == "L1-q001" and judged.labels["L1-0034"] == 2
    assert judged_sample("전혀 없는 질의") is None


# ------------------------------------------------------------------ uploads
def test_upload_format_and_size_limits():
    assert [upload_format(n) for n in ("a.CSV", "b.jsonl", "c.parquet", "d.txt")] == ["csv", "jsonl", "parquet", "txt"]
    with pytest.raises(UploadError, match="unsupported"):
        upload_format("evil.py")
    with pytest.raises(UploadError, match="limit is 20 MB"):
        check_size(MAX_UPLOAD_BYTES + 1)
    with pytest.raises(UploadError, match="empty"):
        check_size(0)


def test_write_upload_uses_a_name_the_app_chooses(tmp_path):
    path = write_upload(b"id,text\n1,x\n", "../../etc/passwd.csv", tmp_path)
    assert path == tmp_path / "upload.csv" and path.read_bytes() == b"id,text\n1,x\n"
    txt = write_upload("본문".encode(), "../보증금 안내;rm -rf.txt", tmp_path)
    assert txt.parent == tmp_path and txt.name == "보증금_안내_rm_-rf.txt"
    assert safe_stem("///?*.txt") == "upload"


def test_ingest_upload_reports_written_and_failed_rows(tmp_path, tiny_model_dir):
    from encoder import SparseEncoder
    from retrieval.backends import BackendConfig, open_or_create_index
    from retrieval.index_meta import IndexMeta
    from search_ui.upload import ingest_upload

    encoder = SparseEncoder.load(tiny_model_dir)
    data = "id,title,domain,text\nA,t,legal,보증금 반환 청구\nB,t,legal,\nC,t,medical,혈당 관리\n".encode()
    calls: list[tuple[int, int]] = []
    with open_or_create_index("up", IndexMeta.for_encoder("up", encoder), config=BackendConfig(home=tmp_path)) as store:
        outcome = ingest_upload(data, "mine.csv", store, encoder, on_progress=lambda w, t: calls.append((w, t)))
        again = ingest_upload(data, "mine.csv", store, encoder)
        assert store.stats().documents == 2
    assert (outcome.report.written, outcome.report.failed) == (2, 1)
    assert outcome.problems[0].startswith("mine.csv:3:") and "tmp" not in outcome.problems[0]
    assert calls[0] == (0, 2) and calls[-1] == (2, 2)
    assert (again.report.written, again.report.skipped_unchanged) == (0, 2)
    with pytest.raises(UploadError, match="broken.parquet"):
        with open_or_create_index("up", IndexMeta.for_encoder("up", encoder), config=BackendConfig(home=tmp_path)) as store:
            ingest_upload(b"not parquet", "broken.parquet", store, encoder)


# ------------------------------------------------------------------ choices and the demo index check
def test_rank_feature_only_where_it_differs_and_opensearch_only_when_configured(monkeypatch, tmp_path):
    assert "rank_feature" not in modes_for("embedded") and modes_for("embedded")[0] == "sparse"
    monkeypatch.delenv("KSEARCH_OPENSEARCH_URL", raising=False)
    monkeypatch.setenv("KSEARCH_CACHE_DIR", str(tmp_path))  # no node of `ksearch opensearch start` either
    assert available_backends(SimpleNamespace(model_fields_set=set())) == ["embedded"]


def test_demo_index_check_wants_every_document(tmp_path, tiny_model_dir):
    from encoder import SparseEncoder
    from ingest import ingest_path
    from ksearch.demo_index import index_is_complete
    from retrieval.backends import BackendConfig, open_or_create_index
    from retrieval.index_meta import IndexMeta

    corpus = tmp_path / "c.jsonl"
    rows = [{"id": f"D{i}", "text": f"보증금 {i}", "domain": "legal"} for i in range(3)]
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:2]), encoding="utf-8")
    assert not index_is_complete(corpus, tmp_path / "home" / "demo")
    encoder = SparseEncoder.load(tiny_model_dir)
    with open_or_create_index("demo", IndexMeta.for_encoder("demo", encoder), config=BackendConfig(home=tmp_path / "home")) as store:
        ingest_path(corpus, store, encoder, progress=False)
    assert index_is_complete(corpus, tmp_path / "home" / "demo")
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert not index_is_complete(corpus, tmp_path / "home" / "demo")


def test_demo_index_state_reuses_rebuilds_or_refuses(tmp_path, tiny_model_dir):
    from encoder import SparseEncoder
    from ingest import ingest_path
    from ksearch.demo_index import FOREIGN, INGEST, READY, demo_index_state
    from retrieval.backends import BackendConfig, open_or_create_index
    from retrieval.index_meta import IndexMeta

    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "D1", "text": "보증금 반환", "domain": "legal"}, ensure_ascii=False) + "\n", encoding="utf-8")
    index_dir = tmp_path / "home" / "demo"
    encoder = SparseEncoder.load(tiny_model_dir)
    assert demo_index_state(corpus, index_dir, encoder.model_id, encoder.vocab_hash)[0] == INGEST
    with open_or_create_index("demo", IndexMeta.for_encoder("demo", encoder), config=BackendConfig(home=tmp_path / "home")) as store:
        ingest_path(corpus, store, encoder, progress=False)
    assert demo_index_state(corpus, index_dir, encoder.model_id, encoder.vocab_hash)[0] == READY
    code, message = demo_index_state(corpus, index_dir, "other/model", "0" * 16)
    assert code == FOREIGN and "KSEARCH_MODEL" in message and index_dir.exists()
    code, message = demo_index_state(corpus, index_dir, encoder.model_id, "0" * 16)  # the same model, retrained
    assert code == INGEST and "rebuilding" in message and not index_dir.exists()


def test_light_one_syllable_verbs_and_endings_are_not_marked():
    from search_ui.highlight import find_spans, kiwi_morphemes

    text = "정당한 이유가 필요하고 30일 전에 예고해야 합니다."
    spans = find_spans(text, ["하", "한", "이유", "예고"], analyzer=kiwi_morphemes)
    assert [text[s.start:s.end] for s in spans] == ["이유", "예고"]
