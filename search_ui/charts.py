"""Altair charts of the app: query token weights (literal vs expansion) and evaluation metrics per mode."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import pandas as pd

from search_ui.html_render import COLORS, FONT_STACK
from search_ui.query_analysis import EXPANSION, LITERAL, QueryToken

_FONT = FONT_STACK.split(",")[0].strip("'")


def query_tokens_chart(tokens: Sequence[QueryToken], top: int = 30) -> alt.Chart:
    """Horizontal bars of the heaviest query tokens, literal and expansion tokens in their colours, with a legend."""
    rows = [{"token": t.token, "weight": round(t.weight, 4), "kind": t.kind, "near query word": t.near}
            for t in tokens[:top]]
    frame = pd.DataFrame(rows, columns=["token", "weight", "kind", "near query word"])
    color = alt.Color("kind:N", title="token", scale=alt.Scale(domain=[LITERAL, EXPANSION],
                                                                range=[COLORS[LITERAL], COLORS[EXPANSION]]),
                      legend=alt.Legend(orient="top", labelFont=_FONT))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(y=alt.Y("token:N", sort="-x", title=None, axis=alt.Axis(labelFont=_FONT, labelLimit=160, labelOverlap=False)),
                x=alt.X("weight:Q", title="query weight"), color=color, tooltip=["token", "kind", "near query word", "weight"])
        .properties(height=alt.Step(20))
    )


def metrics_chart(metrics: Mapping[str, Mapping[str, float]]) -> alt.Chart:
    """Grouped bars: every metric for every mode."""
    rows = [{"mode": mode, "metric": metric, "value": float(value)}
            for mode, values in metrics.items() for metric, value in values.items()]
    frame = pd.DataFrame(rows, columns=["mode", "metric", "value"])
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(x=alt.X("mode:N", title=None), y=alt.Y("value:Q", scale=alt.Scale(domain=[0, 1])),
                color="mode:N", column=alt.Column("metric:N", title=None), tooltip=["mode", "metric", "value"])
        .properties(width=110, height=220)
    )
