"""The Streamlit pages through `streamlit.testing.v1.AppTest` (same process; a small index built with the shipped model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui_fixtures import JUDGED_QUERY, XSS_TITLE

APP = str(Path(__file__).resolve().parents[1] / "search_ui" / "app.py")
TIMEOUT = 120


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _page(at: AppTest, name: str) -> AppTest:
    at.sidebar.radio(key="page").set_value(name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _html(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def _page_shares(node, kind: str, share: float = 1.0) -> dict[str, float]:
    """label -> the share of the page's width the columns around each `kind` element give it."""
    if getattr(node, "type", None) == "column":
        share *= node.weight
    if getattr(node, "type", None) == kind:
        return {node.proto.label: share}
    found: dict[str, float] = {}
    for child in getattr(node, "children", {}).values():
        found.update(_page_shares(child, kind, share))
    return found


def test_search_page_shows_highlighted_results_for_a_korean_query(ui_env):
    at = _app()
    at.text_input(key="search_query").set_value(JUDGED_QUERY).run()
    assert not at.exception and not at.error
    html = _html(at)
    assert html.count('class="ks-hit"') == 10
    assert '<mark class="ks-literal"' in html  # 계약/끝나 of the query occur in the passages
    assert html.count('ks-chip ks-expansion') >= 2  # the legend's, and matched tokens the model added (임대인, ...)
    assert "literal: in the query" in html and "expansion: added by the model" in html  # the legend
    labels = {m.label: m.value for m in at.metric}
    assert labels["Encoding"].endswith(" ms") and labels["Search"].endswith(" ms")
    # each figure has a third of the page (not a third of the analysis column, where "105 ms" was cut to "105…")
    assert {label: round(share, 2) for label, share in _page_shares(at.main, "metric").items()} == \
        {"Encoding": 0.33, "Search": 0.33, "Hits": 0.33}
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")  # the query token chart
    assert any("rank identically" in c.value for c in at.caption)
    assert at.expander  # per-hit explanations
    origins = [c.value for c in at.caption if c.value.startswith("Expansions near a query word")]
    assert len(origins) == 1 and "←" in origins[0]  # the shipped model reads Kiwi morphemes: origins are looked up


def test_sample_query_button_fills_the_query(ui_env):
    at = _app()
    at.button(key="sample-0").click().run()
    assert at.text_input(key="search_query").value
    assert 'class="ks-hit"' in _html(at)


def test_empty_query_is_a_readable_error(ui_env):
    at = _app()
    at.text_input(key="search_query").set_value("   ").run()
    assert [e.value for e in at.error] == ["The query is empty: type some words to search for."]


def test_domain_filter_keeps_one_domain(ui_env):
    at = _app()
    at.selectbox(key="search_domain").set_value("medical")
    at.text_input(key="search_query").set_value("당뇨 혈당").run()
    html = _html(at)
    assert 'class="ks-hit"' in html and ">legal</span>" not in html


def test_hostile_document_is_rendered_as_text(ui_env):
    at = _app()
    at.text_input(key="search_query").set_value("임대인 보증금 반환 거부 내용증명").run()
    html = _html(at)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html


def test_missing_index_says_how_to_build_it(ui_env, monkeypatch):
    from retrieval.settings import get_settings

    monkeypatch.setenv("KSEARCH_INDEX", "does-not-exist")
    get_settings.cache_clear()
    at = _app()
    message = " ".join(e.value for e in at.error)
    assert "does not exist" in message and "make demo" in message and "ksearch ingest" in message


def test_compare_view_marks_overlap_and_scores_a_judged_query(ui_env):
    at = _page(_app(), "Compare")
    at.text_input(key="compare_query").set_value(JUDGED_QUERY).run()
    assert not at.exception and not at.error
    html = _html(at)
    assert "found by both" in html and html.count('class="ks-hit"') == 20
    assert "label 2" in html
    ndcg = [m for m in at.metric if m.label == "nDCG@10"]
    assert len(ndcg) == 2 and all(0.0 <= float(m.value) <= 1.0 for m in ndcg)
    assert [s.value for s in at.subheader] == ["neural sparse", "BM25"]


def test_compare_view_without_judgments_has_no_labels(ui_env):
    at = _page(_app(), "Compare")
    at.text_input(key="compare_query").set_value("보증금 반환").run()
    assert not [m for m in at.metric if m.label == "nDCG@10"] and "label " not in _html(at)


def test_corpus_page_shows_index_statistics(ui_env):
    at = _page(_app(), "Corpus")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents"] == "86" and int(metrics["Passages"]) >= 86
    table = at.dataframe[0].value
    assert set(table["domain"]) == {"legal", "medical"} and table["documents"].sum() == 86


@pytest.mark.slow
def test_evaluation_page_scores_every_mode(ui_env):
    at = _page(_app(), "Evaluation")
    assert at.selectbox(key="eval_split").value == "dev"
    at.button(key="eval_run").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert list(table["mode"]) == ["neural sparse", "BM25", "hybrid"]
    assert {"ndcg@10", "mrr@10", "recall@10", "recall@100"} <= set(table.columns)
    assert XSS_TITLE not in _html(at)


def test_compare_and_corpus_pages_report_a_failing_index_instead_of_crashing(ui_env, monkeypatch):
    from retrieval.backends.embedded import EmbeddedIndex
    from retrieval.errors import RetrievalError

    def broken(*args, **kwargs):
        raise RetrievalError("index 'sample' cannot be read: segment seg-000001 is missing")

    monkeypatch.setattr(EmbeddedIndex, "search_bm25", broken)
    monkeypatch.setattr(EmbeddedIndex, "stats", broken)
    at = _page(_app(), "Compare")
    at.text_input(key="compare_query").set_value("보증금 반환").run()
    assert not at.exception and "segment seg-000001 is missing" in " ".join(e.value for e in at.error)
    at = _page(at, "Corpus")
    assert not at.exception and "segment seg-000001 is missing" in " ".join(w.value for w in at.warning)
