"""Compare page: neural sparse and BM25 side by side for one query, overlap marked, labels and nDCG@10 when judged."""

from __future__ import annotations

import html

import streamlit as st

from retrieval.errors import RetrievalError
from search_ui.compare import compare_rankings, ndcg_at_10
from search_ui.html_render import found_by_html
from search_ui.query_analysis import kinds_by_token
from search_ui.resources import AppError, searcher_or_error
from search_ui.sample_data import judged_sample, suggested_queries
from search_ui.views.common import analyse_query, render_hit

COLUMNS = {"sparse": "neural sparse", "bm25": "BM25"}


def render() -> None:
    """Draw the compare page."""
    st.header("Compare: neural sparse vs BM25")
    samples = suggested_queries()
    query = st.text_input("Query", key="compare_query", value=samples[0] if samples else "",
                          help="A judged sample query also shows relevance labels and nDCG@10.")
    k = st.number_input("k", min_value=1, max_value=50, value=10, step=1, key="compare_k")
    if not query.strip():
        st.error("The query is empty: type some words to search for.")
        return
    try:
        searcher = searcher_or_error()
    except AppError as exc:
        st.error(str(exc))
        return
    try:
        results = {mode: searcher.search(query, mode, int(k)) for mode in COLUMNS}
    except RetrievalError as exc:
        st.error(str(exc))
        return
    judged = judged_sample(query)
    labels = judged.labels if judged else None
    compared = compare_rankings({COLUMNS[m]: [i.hit for i in r.hits] for m, r in results.items()}, labels)
    if judged:
        st.caption(f"Judged sample query {judged.query.id}: labels 2 = relevant, 1 = partly relevant, 0 = not relevant or unjudged.")
    else:
        st.caption("Not a judged sample query: no relevance labels.")
    kinds = kinds_by_token(analyse_query(searcher.encoder, query, results["sparse"].query_tokens))
    for column, (mode, result) in zip(st.columns(len(COLUMNS)), results.items()):
        with column:
            name = COLUMNS[mode]
            st.subheader(name)
            if labels is not None:
                score = ndcg_at_10([i.hit for i in result.hits], labels, judged.query.id)
                st.metric("nDCG@10", "—" if score is None else f"{score:.3f}")
            st.caption(f"{len(result.hits)} hits in {result.took_ms:.0f} ms")
            for entry, item in zip(compared[name], result.hits):
                label = found_by_html(entry.found_by, len(COLUMNS))
                if entry.label is not None:
                    label += f' <span class="ks-found">label {html.escape(str(entry.label))}</span>'
                render_hit(searcher.encoder, entry.rank, item, kinds, label)
