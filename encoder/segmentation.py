"""Optional pre-segmentation of Korean text into morphemes before the HF tokenizer.

A model folder asks for it in `ksearch.json` (`"pre_segmentation": {"type": "kiwi", ...}`), so
the model's vocabulary can be made of Korean morphemes (임대인, 보증금, 돌려주) rather than
jamo or arbitrary fragments, and its expansion tokens read as words. Models without that key
see the raw text, as before.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from encoder.kiwi_analysis import analyse
from encoder.kiwi_tags import CONTENT_TAGS, base_tag
from encoder.model_resolution import read_model_settings, resolve_model

# Content morphemes kept (Kiwi/Sejong tags; irregular variants such as VV-R share the prefix).
DEFAULT_KEEP_TAGS = CONTENT_TAGS


class KiwiSegmenter:
    """Text -> space-separated content morphemes, with suffixes and units glued back on
    (임차+권 -> 임차권, 2+형 -> 2형, 30+일 -> 30일, 7+% -> 7%)."""

    def __init__(self, keep_tags: Sequence[str] = DEFAULT_KEEP_TAGS) -> None:
        self.keep_tags = tuple(keep_tags)

    @classmethod
    def from_config(cls, config: dict | None) -> "KiwiSegmenter | None":
        """Build from a model folder's `pre_segmentation` setting (None when absent)."""
        if not config:
            return None
        if config.get("type") != "kiwi":
            raise ValueError(f"unknown pre_segmentation type {config.get('type')!r} (known: 'kiwi')")
        return cls(config.get("keep_tags", DEFAULT_KEEP_TAGS))

    def config(self) -> dict:
        """The `pre_segmentation` value to save in a model folder's ksearch.json."""
        return {"type": "kiwi", "keep_tags": list(self.keep_tags)}

    @classmethod
    def for_model(cls, name_or_path: str | os.PathLike | None = None) -> "KiwiSegmenter | None":
        """The segmenter a model folder's ksearch.json asks for (None: the model reads raw text), without loading
        the model: what a client that lets OpenSearch encode needs before it sends text to the cluster."""
        _, source = resolve_model(name_or_path)
        return cls.from_config(read_model_settings(source).get("pre_segmentation"))

    def segment(self, texts: Sequence[str]) -> list[str]:
        """Segment each text; empty texts stay empty."""
        texts = list(texts)
        todo = [t for t in texts if t.strip()]
        words = dict(zip(todo, (" ".join(self._words(tokens)) for tokens in analyse(todo))))
        return [words.get(t, "") for t in texts]

    def _words(self, tokens) -> list[str]:
        words: list[str] = []
        prev_tag, prev_end = "", -1
        for token in tokens:
            tag, form = base_tag(token.tag), token.form
            adjacent = bool(words) and prev_tag != "" and token.start == prev_end
            glue = adjacent and (
                tag == "XSN"  # 임차+권, 2+형
                or (prev_tag in ("SN", "SL") and (tag in ("SN", "SL", "NR", "NNB") or form == "%"))  # HbA1c, 30만, 2년, 7%
            )
            if glue:
                words[-1] += form
                prev_tag = "SN" if tag in ("NR", "NNB") or form == "%" else tag
            elif tag.startswith(self.keep_tags):
                words.append(form)
                prev_tag = tag
            else:
                prev_tag = ""
            prev_end = token.start + token.len
        return words
