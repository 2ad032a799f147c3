"""Reversible mapping between vocabulary tokens and OpenSearch-safe feature names.

A `rank_features` key becomes part of a field path in a `rank_feature` query
(`sparse.<name>`), which OpenSearch splits at the last '.', so a token containing
'.' would silently match nothing. Tokens may also be empty or contain spaces and
control characters. We percent-encode exactly the characters that are unsafe
('%', '.', whitespace/separators and control/format/unassigned code points) as
UTF-8 bytes (`%2E`), and the empty token as a lone `%` (which no encoded name can
otherwise be, because every escape is `%` + two hex digits). Everything else,
Hangul and '##' included, passes through unchanged, so most names read as tokens.
"""

from __future__ import annotations

import re
import unicodedata

EMPTY_TOKEN_NAME = "%"
_ESCAPE = re.compile(r"%([0-9A-F]{2})")


def _is_unsafe(char: str) -> bool:
    if char in "%.":
        return True
    category = unicodedata.category(char)
    return category[0] in ("C", "Z")  # control, format, unassigned, private use, separators


def escape_character(char: str) -> str:
    """The escape of one unsafe character in a feature name: its UTF-8 bytes as `%XX`."""
    return "".join(f"%{b:02X}" for b in char.encode("utf-8"))


def unsafe_characters(tokens) -> list[str]:
    """The distinct characters of `tokens` that feature names escape, '%' first (then by code point)."""
    found = {c for token in tokens for c in token if _is_unsafe(c)}
    return sorted(found, key=lambda c: (c != "%", c))


def token_to_feature(token: str) -> str:
    """Encode a vocabulary token as a feature name OpenSearch accepts in any query type."""
    if token == "":
        return EMPTY_TOKEN_NAME
    if not any(_is_unsafe(c) for c in token):
        return token
    return "".join(escape_character(c) if _is_unsafe(c) else c for c in token)


def feature_to_token(name: str) -> str:
    """Decode a feature name back to the exact vocabulary token."""
    if name == EMPTY_TOKEN_NAME:
        return ""
    if "%" not in name:
        return name
    raw = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(name):
        raw += name[pos : match.start()].encode("utf-8")
        raw.append(int(match.group(1), 16))
        pos = match.end()
    raw += name[pos:].encode("utf-8")
    return raw.decode("utf-8")


def is_safe_feature_name(name: str) -> bool:
    """True when `name` is non-empty and contains no character OpenSearch paths or queries mishandle."""
    if not name:
        return False
    stripped = _ESCAPE.sub("", name)
    return name == EMPTY_TOKEN_NAME or not any(_is_unsafe(c) for c in stripped)


def fold_text(text: str) -> str:
    """How text is compared with tokens: NFC, lower case."""
    return unicodedata.normalize("NFC", text).lower()


def normalize_token(token: str) -> str:
    """A (display) token as it is compared with text: without subword markers (`##`, `▁`, `Ġ`), folded."""
    return fold_text(token.removeprefix("##").strip("▁Ġ "))
