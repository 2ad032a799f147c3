"""Where query tokens occur in a passage, and the passage as safe HTML with those spans in `<mark>`.

Tokens of a morpheme vocabulary (돌려주, 보증금, 임차권) are found through the raw text's Kiwi
morphemes, whose `start`/`len` offsets point back into the text (돌려주 covers 돌려줘 in 돌려줘요);
for a model without segmentation, tokens are found as case-insensitive substrings. Every piece of
text is html-escaped: only the `<mark>` elements written here are markup.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from retrieval.own_words import normalize_token

MAX_GLUED_MORPHEMES = 4  # the segmenter glues suffixes and units: 임차+권, HbA+1+c, 30+일
# One-syllable light verbs, suffixes, endings and particles (하, 되, 있, 한, 합): marking them in every
# sentence says nothing about why a passage matched.
_LIGHT_TAGS = ("VV", "VA", "VX", "XSV", "XSA", "VCP", "VCN", "E", "J")


@dataclass(frozen=True)
class Morpheme:
    """One morpheme of a text: its form and where its surface lies in the text."""

    form: str
    start: int
    length: int
    tag: str = ""

    @property
    def end(self) -> int:
        """Offset just past the surface."""
        return self.start + self.length


@dataclass(frozen=True)
class Span:
    """A stretch `text[start:end]` that matches query token `token`."""

    start: int
    end: int
    token: str


MorphemeAnalyzer = Callable[[str], Sequence[Morpheme]]


def kiwi_morphemes(text: str) -> list[Morpheme]:
    """The Kiwi morphemes of `text` with character offsets (the encoder's process-wide Kiwi)."""
    from encoder.kiwi_analysis import analyse

    tokens = analyse([text])[0] if text.strip() else []
    return [Morpheme(t.form, t.start, t.len, t.tag) for t in tokens]


def morpheme_spans(morphemes: Sequence[Morpheme], tokens: Iterable[str]) -> list[Span]:
    """Spans of runs of adjacent morphemes (up to `MAX_GLUED_MORPHEMES`) whose joined forms equal a token."""
    wanted = {normalize_token(t): t for t in tokens if normalize_token(t)}
    found: list[Span] = []
    for i, first in enumerate(morphemes):
        if len(first.form) == 1 and first.tag.startswith(_LIGHT_TAGS):
            continue
        best: Span | None = None
        form, end = "", first.start
        for m in morphemes[i : i + MAX_GLUED_MORPHEMES]:
            if form and m.start != end:  # only morphemes that touch glue together
                break
            form, end = form + m.form, m.end
            token = wanted.get(normalize_token(form))
            if token is not None:
                best = Span(first.start, m.end, token)
        if best is not None:
            found.append(best)
    return non_overlapping(found)


def substring_spans(text: str, tokens: Iterable[str]) -> list[Span]:
    """Case-insensitive literal occurrences of the tokens in `text` (longer tokens win overlaps)."""
    folded = unicodedata.normalize("NFC", text).lower()
    if len(folded) != len(text):  # lower() changed lengths (rare scripts): offsets would drift
        folded = text
    found: list[Span] = []
    for token in sorted({t for t in tokens if normalize_token(t)}, key=lambda t: -len(normalize_token(t))):
        needle = normalize_token(token)
        start = folded.find(needle)
        while start != -1:
            found.append(Span(start, start + len(needle), token))
            start = folded.find(needle, start + len(needle))
    return non_overlapping(found)


def non_overlapping(spans: Iterable[Span]) -> list[Span]:
    """Spans sorted by start, keeping the longest where two overlap."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if kept and span.start < kept[-1].end:
            continue
        kept.append(span)
    return kept


def find_spans(text: str, tokens: Iterable[str], analyzer: MorphemeAnalyzer | None = None) -> list[Span]:
    """Where the tokens occur in `text`: by morphemes when an analyzer is given, else as substrings."""
    tokens = list(tokens)
    if not text or not tokens:
        return []
    if analyzer is None:
        return substring_spans(text, tokens)
    return morpheme_spans(analyzer(text), tokens)


def highlight_html(text: str, spans: Sequence[Span], css_class_of: Mapping[str, str] | None = None) -> str:
    """`text` html-escaped, each span wrapped in `<mark class=... title=token>`; newlines become `<br>`."""
    css_class_of = css_class_of or {}
    out: list[str] = []
    position = 0
    for span in non_overlapping(spans):
        if span.start < position or span.end > len(text):
            continue
        out.append(_escape_text(text[position : span.start]))
        css = css_class_of.get(span.token, "")
        attrs = (f' class="{html.escape(css, quote=True)}"' if css else "") + f' title="{html.escape(span.token, quote=True)}"'
        out.append(f"<mark{attrs}>{_escape_text(text[span.start : span.end])}</mark>")
        position = span.end
    out.append(_escape_text(text[position:]))
    return "".join(out)


def _escape_text(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "<br>")
