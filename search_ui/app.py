"""ksearch's Streamlit app: `streamlit run search_ui/app.py` (pages call library code in search_ui/ and retrieval/)."""

from __future__ import annotations

import streamlit as st

from search_ui.html_render import STYLE
from search_ui.views import compare, corpus, evaluation, search

PAGES = {"Search": search.render, "Compare": compare.render, "Corpus": corpus.render, "Evaluation": evaluation.render}

st.set_page_config(page_title="ksearch", page_icon="🔎", layout="wide")
st.markdown(STYLE, unsafe_allow_html=True)
st.sidebar.title("ksearch")
st.sidebar.caption("Korean legal and medical search with a learned sparse encoder")
page = st.sidebar.radio("Page", list(PAGES), key="page")
PAGES[page]()
