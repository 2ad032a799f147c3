"""Small HTML pieces of the app (chips, badges, legend, result cards); every value is html-escaped here."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from search_ui.query_analysis import EXPANSION, LITERAL, TokenKind

COLORS: dict[str, str] = {LITERAL: "#1f6fd1", EXPANSION: "#e8590c"}  # blue: in the query; orange: added by the model
MARK_BACKGROUNDS: dict[str, str] = {LITERAL: "#cfe2ff", EXPANSION: "#ffd8a8"}
DOMAIN_COLORS: dict[str, str] = {"legal": "#5f3dc4", "medical": "#2b8a3e"}
FONT_STACK = "'Noto Sans CJK KR', 'Noto Sans KR', 'Apple SD Gothic Neo', 'Malgun Gothic', sans-serif"

STYLE = f"""
<style>
.block-container {{ padding-top: 2.5rem; }}
.ks-hit {{ font-family: {FONT_STACK}; border: 1px solid #dee2e6; border-radius: 8px; padding: 0.6rem 0.9rem;
          margin: 0.3rem 0 0.2rem 0; line-height: 1.6; word-break: keep-all; overflow-wrap: anywhere; }}
.ks-hit-head {{ display: flex; gap: 0.5rem; align-items: baseline; flex-wrap: wrap; }}
.ks-rank {{ color: #868e96; font-weight: 600; }}
.ks-title {{ font-weight: 700; font-size: 1.05rem; }}
.ks-score {{ color: #495057; font-family: monospace; margin-left: auto; }}
.ks-badge {{ color: white; border-radius: 4px; padding: 0 0.4rem; font-size: 0.8rem; }}
.ks-passage {{ margin: 0.3rem 0; }}
.ks-passage mark {{ padding: 0 0.1rem; border-radius: 3px; }}
.ks-passage mark.ks-literal {{ background: {MARK_BACKGROUNDS[LITERAL]}; border-bottom: 2px solid {COLORS[LITERAL]}; }}
.ks-passage mark.ks-expansion {{ background: {MARK_BACKGROUNDS[EXPANSION]}; border-bottom: 2px solid {COLORS[EXPANSION]}; }}
.ks-chip {{ display: inline-block; border-radius: 999px; padding: 0 0.55rem; margin: 0.1rem 0.15rem; font-size: 0.85rem;
           font-family: {FONT_STACK}; }}
.ks-chip.ks-literal {{ border: 1px solid {COLORS[LITERAL]}; color: {COLORS[LITERAL]}; }}
.ks-chip.ks-expansion {{ border: 1px solid {COLORS[EXPANSION]}; color: white; background: {COLORS[EXPANSION]}; }}
.ks-found {{ font-size: 0.8rem; border-radius: 4px; padding: 0 0.4rem; }}
.ks-found.ks-both {{ background: #d3f9d8; color: #2b8a3e; }}
.ks-found.ks-only {{ background: #fff3bf; color: #e67700; }}
.ks-legend {{ font-size: 0.9rem; }}
.ks-legend-note {{ color: #6c757d; font-size: 0.8rem; margin-top: 0.3rem; line-height: 1.4; }}
.ks-missing {{ color: #868e96; font-size: 0.85rem; font-family: {FONT_STACK}; }}
</style>
"""


def css_class(kind: TokenKind) -> str:
    """The CSS class of a literal or expansion token."""
    return f"ks-{kind}"


def chip_html(token: str, kind: TokenKind, weight: float | None = None) -> str:
    """A token chip in the colour of its kind, with its weight when given."""
    label = html.escape(token) + (f" <small>{weight:.2f}</small>" if weight is not None else "")
    return f'<span class="ks-chip {css_class(kind)}" title="{kind}">{label}</span>'


def chips_html(tokens: Mapping[str, float], kind: TokenKind) -> str:
    """Chips of several tokens of one kind."""
    return "".join(chip_html(t, kind, w) for t, w in tokens.items())


def domain_badge_html(domain: str) -> str:
    """A coloured badge naming a document's domain."""
    color = DOMAIN_COLORS.get(domain, "#868e96")
    return f'<span class="ks-badge" style="background:{color}">{html.escape(domain or "—")}</span>'


LEGEND_NOTE = ("Bars: the query's token weights. In a result, the query's tokens are marked where the passage has "
               "them (in these colours); chips under it are matched expansions: tokens the model added that the "
               "passage matches although neither the query nor the passage text contains them (with query × passage "
               "weight); \u201cnot in this passage\u201d lists query words the passage lacks, which add nothing to its score.")


def legend_html() -> str:
    """The colour legend of literal and expansion tokens, and what a result card shows."""
    return ('<div class="ks-legend">'
            + chip_html("literal: in the query", LITERAL) + chip_html("expansion: added by the model", EXPANSION)
            + f'<div class="ks-legend-note">{html.escape(LEGEND_NOTE)}</div></div>')


def found_by_html(found_by: Iterable[str], all_columns: int = 2) -> str:
    """A label saying whether both rankings found a document or only this one."""
    found_by = list(found_by)
    if len(found_by) >= all_columns:
        return '<span class="ks-found ks-both">found by both</span>'
    return f'<span class="ks-found ks-only">{html.escape(found_by[0])} only</span>' if found_by else ""


def hit_card_html(rank: int, title: str, domain: str, score: float, passage_html: str, chips: str = "",
                  extra_label: str = "", missing: Iterable[str] = ()) -> str:
    """A result card; `passage_html`, `chips` and `extra_label` must already be safe HTML (see highlight_html);
    `missing` (query words the passage lacks) is escaped here."""
    chips_row = f'<div>matched expansions: {chips}</div>' if chips else ""
    missing = list(missing)
    missing_row = (f'<div class="ks-missing">not in this passage: {html.escape(" ".join(missing))}</div>'
                   if missing else "")
    return (f'<div class="ks-hit"><div class="ks-hit-head"><span class="ks-rank">{rank}.</span>'
            f'<span class="ks-title">{html.escape(title)}</span>{domain_badge_html(domain)}{extra_label}'
            f'<span class="ks-score">{score:.4f}</span></div>'
            f'<div class="ks-passage">{passage_html}</div>{chips_row}{missing_row}</div>')
