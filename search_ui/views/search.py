"""Search page: query, backend, mode, domain, k -> query analysis and explained, highlighted results."""

from __future__ import annotations

import streamlit as st

from retrieval.errors import RetrievalError
from retrieval.settings import get_settings
from search_ui.backend_choice import (EMBEDDED, EMBEDDED_RANK_FEATURE_NOTE, SERVER, SERVER_ENCODING_NOTE, available_backends,
                                     encoding_label, encodings_for, mode_label, modes_for)
from search_ui.charts import query_tokens_chart
from search_ui.html_render import legend_html
from search_ui.query_analysis import kinds_by_token, origins_caption
from search_ui.resources import AppError, backend_or_error, searcher_or_error
from search_ui.sample_data import suggested_queries
from search_ui.views.common import analyse_query, render_hit, traces_origins

QUERY_KEY = "search_query"


def format_ms(ms: float) -> str:
    """A duration as a metric shows it: "105 ms", or seconds from 10 s on ("12.3 s"), so it stays short."""
    return f"{ms:.0f} ms" if ms < 9999.5 else f"{ms / 1000:.1f} s"


def _use_sample(text: str) -> None:
    st.session_state[QUERY_KEY] = text


def render() -> None:
    """Draw the search page."""
    st.header("Search")
    samples = suggested_queries()
    if samples:
        st.caption("Try a sample query:")
        columns = st.columns(min(3, len(samples)))
        for i, text in enumerate(samples):
            columns[i % len(columns)].button(text, key=f"sample-{i}", on_click=_use_sample, args=(text,), width="stretch")
    query = st.text_input("Query", key=QUERY_KEY, placeholder="예: 전세 보증금을 못 받으면 어떻게 하나요?")
    backends = available_backends(get_settings())
    c1, c2, c3, c4 = st.columns([1, 2, 1, 1])
    backend = c1.selectbox("Backend", backends, key="search_backend")
    try:
        encodings = encodings_for(backend, backend_or_error(backend).meta)
    except AppError as exc:
        st.error(str(exc))
        return
    encoding = encodings[0]
    if len(encodings) > 1:
        encoding = c1.radio("Query encoded", encodings, format_func=encoding_label, key="search_encoding")
    modes = modes_for(backend, encoding)
    mode = c2.radio("Mode", modes, format_func=mode_label, horizontal=True, key="search_mode")
    try:
        searcher = searcher_or_error(backend, encoding)
    except AppError as exc:
        st.error(str(exc))
        return
    try:  # a remote backend may go down while the app is open: say so, and recover on a later run
        domains = list(searcher.backend.stats().documents_by_domain)
    except RetrievalError as exc:
        st.error(str(exc))
        return
    domain = c3.selectbox("Domain", ["all", *[d for d in domains if d]], key="search_domain")
    k = c4.number_input("k", min_value=1, max_value=50, value=10, step=1, key="search_k")
    if backend == EMBEDDED:
        st.caption(EMBEDDED_RANK_FEATURE_NOTE)
    if encoding == SERVER:
        st.caption(SERVER_ENCODING_NOTE)
    if not query:
        st.info("Type a query (Korean) and press Enter, or click a sample query.")
        return
    if not query.strip():
        st.error("The query is empty: type some words to search for.")
        return
    try:
        result = searcher.search(query, mode, int(k), domain=None if domain == "all" else domain)
    except RetrievalError as exc:
        st.error(str(exc))
        return
    if result.notice and result.encoding != SERVER:  # the server's notice is SERVER_ENCODING_NOTE, shown above
        st.caption(f"⚠️ {result.notice}")
    tokens = analyse_query(searcher.encoder, query, result.query_tokens)
    kinds = kinds_by_token(tokens)
    # The figures span the page: in a third of the analysis column a three-digit "105 ms" was cut to "105…".
    m1, m2, m3 = st.columns(3)
    m1.metric("Encoding", "in the search" if result.encoding == SERVER else format_ms(result.encode_ms))
    m2.metric("Search", format_ms(result.search_ms))
    m3.metric("Hits", len(result.hits))
    results_column, analysis_column = st.columns([3, 2], gap="large")
    with analysis_column:
        st.subheader("Query analysis")
        st.markdown(legend_html(), unsafe_allow_html=True)
        if tokens:
            st.altair_chart(query_tokens_chart(tokens), width="stretch")
            if traces_origins(searcher.encoder):
                st.caption(origins_caption(tokens))
        else:
            st.caption("The encoder gave this query no tokens.")
    with results_column:
        if not result.hits:
            st.warning("No document matches this query" + ("" if domain == "all" else f" in domain {domain!r}") + ".")
            return
        st.subheader(f"Results ({mode_label(mode)})")
        for rank, item in enumerate(result.hits, start=1):
            render_hit(searcher.encoder, rank, item, kinds)
