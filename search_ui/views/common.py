"""Pieces several pages share: query-token analysis and one highlighted result card."""

from __future__ import annotations

import streamlit as st

from retrieval.searcher import ExplainedHit
from search_ui.highlight import find_spans, highlight_html, kiwi_morphemes
from search_ui.html_render import chips_html, css_class, hit_card_html
from search_ui.query_analysis import EXPANSION, QueryToken, TokenKind, classify_query_tokens, model_words, with_origins
from search_ui.resources import cached_kiwi_neighbours

EXPLAINED_TOKENS = 10
EXPANSION_CHIPS = 8


def traces_origins(encoder) -> bool:
    """Whether `analyse_query` names the query word behind each expansion: only for a model that reads Kiwi
    morphemes (for any other, loading Kiwi is a cold start not worth it)."""
    return getattr(encoder, "segmenter", None) is not None


def analyse_query(encoder, text: str, query_tokens: dict[str, float]) -> list[QueryToken]:
    """The query's display tokens classified as literal or expansion (by the model's own segmentation of the query);
    for a model that reads Kiwi morphemes, each expansion also names the query word it is a Kiwi neighbour of."""
    tokens = classify_query_tokens(query_tokens, model_words(encoder, text), text)
    if not traces_origins(encoder):
        return tokens
    return with_origins(tokens, cached_kiwi_neighbours(encoder.model_id, encoder))


def passage_html(encoder, text: str, kinds: dict[str, TokenKind]) -> str:
    """The passage html-escaped with query tokens in `<mark>`, coloured by their kind."""
    analyzer = kiwi_morphemes if getattr(encoder, "segmenter", None) is not None else None
    spans = find_spans(text, kinds, analyzer)
    return highlight_html(text, spans, {t: css_class(k) for t, k in kinds.items()})


def matched_expansions(item: ExplainedHit) -> dict[str, float]:
    """The hit's heaviest matched tokens that the model added: in neither the query nor this passage's text
    (`item.expansion_tokens`), with their contribution (query weight x passage weight) as value."""
    matched = [(t, w) for t, w in item.matched_tokens.items() if t in item.expansion_tokens]
    return dict(sorted(matched, key=lambda kv: -kv[1])[:EXPANSION_CHIPS])


def render_hit(encoder, rank: int, item: ExplainedHit, kinds: dict[str, TokenKind], extra_label: str = "") -> None:
    """One result: card with highlighted passage, matched-expansion chips and the query words it lacks, and an
    expandable score explanation."""
    h = item.hit
    chips = chips_html(matched_expansions(item), EXPANSION)
    st.markdown(hit_card_html(rank, h.title or h.doc_id, h.domain, h.score, passage_html(encoder, h.text, kinds),
                              chips, extra_label, missing=item.unmatched_query_tokens), unsafe_allow_html=True)
    with st.expander(f"Why #{rank}? top contributing tokens"):
        rows = [{"token": t, "kind": kinds.get(t, "document only"), "query weight": round(c.query_weight, 3),
                 "document weight": round(c.document_weight, 3), "query × document": round(c.contribution, 3)}
                for t, c in sorted(item.contributions.items(), key=lambda kv: -kv[1].contribution)[:EXPLAINED_TOKENS]]
        if rows:
            st.dataframe(rows, hide_index=True, width="stretch")
        else:
            st.caption("No query token occurs in this passage's vector (a BM25-only match).")
        st.caption(f"passage {h.id}")
