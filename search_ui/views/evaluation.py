"""Evaluation page: every mode on a split of the sample queries, as a metric table and a chart (ranx via retrieval.evaluation)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from retrieval.evaluation import METRICS, evaluate_modes, read_qrels, read_queries, read_split
from search_ui.backend_choice import mode_label
from search_ui.charts import metrics_chart
from search_ui.resources import AppError, searcher_or_error
from search_ui.sample_data import QRELS_PATH, QUERIES_PATH, SPLITS_PATH, split_names


def render() -> None:
    """Draw the evaluation page."""
    st.header("Evaluation")
    splits = split_names()
    if not splits:
        st.error(f"No sample splits at {SPLITS_PATH}.")
        return
    split = st.selectbox("Split of the sample queries", splits, key="eval_split")
    if not st.button("Run evaluation", type="primary", key="eval_run"):
        shown = st.session_state.get("eval_result")
        if shown is None:
            st.info("Ranks every query of the split with every mode (100 deep) and scores the runs with ranx.")
            return
    else:
        try:
            searcher = searcher_or_error()
        except AppError as exc:
            st.error(str(exc))
            return
        wanted = read_split(SPLITS_PATH, split)
        queries = [q for q in read_queries(QUERIES_PATH) if q.id in wanted]
        with st.spinner(f"Evaluating {len(queries)} queries…"):
            try:
                result = evaluate_modes(searcher, queries, read_qrels(QRELS_PATH))
            except ValueError as exc:
                st.error(str(exc))
                return
        shown = st.session_state["eval_result"] = (split, result)
    split_shown, result = shown
    st.caption(f"{result.meta['queries']} queries of split {split_shown!r} · {result.meta['documents']} documents · "
               f"model {result.meta['model']}")
    table = pd.DataFrame([{"mode": mode_label(m), **{k: round(v, 4) for k, v in values.items()}}
                          for m, values in result.metrics.items()], columns=["mode", *METRICS])
    st.dataframe(table, hide_index=True)
    st.altair_chart(metrics_chart({mode_label(m): v for m, v in result.metrics.items()}))
