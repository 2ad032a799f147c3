"""One Kiwi analyser per process (it takes ~0.7 s and ~100 MB to build), and a memo of recent analyses.

Ingest analyses every passage twice, for the encoder's pre-segmentation and then for the BM25
morphemes of the backend; the memo makes the second look a dictionary hit. Kiwi's `tokenize`
is not documented as thread-safe, so calls hold one lock. The memo keeps only what callers read of a token
(`Morph`: form, tag, start, len), packed per text with forms and tags shared: ~30 bytes a token where Kiwi's own
token objects took ~264, which for 4096 passages of 64 tokens was ~120 MB of every ingest's memory.
"""

from __future__ import annotations

import sys
import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

MEMO_SIZE = 4096  # texts; ingest writes 256 passages per batch
KIWI_LOCK = threading.RLock()


class Morph(NamedTuple):
    """One morpheme of a Kiwi analysis: what ksearch reads of a `kiwipiepy.Token`."""

    form: str
    tag: str
    start: int
    len: int


_Packed = tuple[tuple[str, ...], tuple[str, ...], array]  # forms, tags, (start, len) pairs
_memo: OrderedDict[str, _Packed] = OrderedDict()


@lru_cache(maxsize=1)
def kiwi():
    """The process-wide `kiwipiepy.Kiwi`, without its typo and multi-word dictionaries (they cost start-up time).

    Measured on the project's 23,632 texts (`ksearch bench startup` for the time): the typo dictionary changes no
    analysis; the multi-word one (아토피 피부염 as one NNP) changes 1.2% of segmentations, the shipped model's dev
    nDCG@10 by +0.003 / 0.000 / +0.001 (sample / ood-legal / ood-medical), and costs ~2.5 s of every cold start."""
    from kiwipiepy import Kiwi

    return Kiwi(load_typo_dict=False, load_multi_dict=False)


def analyse(texts: Sequence[str]) -> list[list[Morph]]:
    """Kiwi's tokens (form, tag, start, len) for each text, from the memo when it was analysed recently."""
    with KIWI_LOCK:
        missing = [t for t in dict.fromkeys(texts) if t not in _memo]
        fresh = dict(zip(missing, map(_pack, kiwi().tokenize(missing)))) if missing else {}
        packed = []
        for text in texts:
            tokens = fresh.get(text)
            if tokens is None:
                tokens = _memo[text]
                _memo.move_to_end(text)
            packed.append(tokens)
        for text, tokens in fresh.items():
            _memo[text] = tokens
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
    return [_unpack(p) for p in packed]


def _pack(tokens) -> _Packed:
    intern = sys.intern
    return (tuple(intern(t.form) for t in tokens), tuple(intern(t.tag) for t in tokens),
            array("l", [n for t in tokens for n in (t.start, t.len)]))


def _unpack(packed: _Packed) -> list[Morph]:
    forms, tags, spans = packed
    return [Morph(form, tag, spans[2 * i], spans[2 * i + 1]) for i, (form, tag) in enumerate(zip(forms, tags))]


def clear_memo() -> None:
    """Forget recent analyses (benchmarks start each measurement cold)."""
    with KIWI_LOCK:
        _memo.clear()
