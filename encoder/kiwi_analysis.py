"""One Kiwi analyser per process (it takes ~0.7 s and ~100 MB to build), and a memo of recent analyses.

Ingest analyses every passage twice, for the encoder's pre-segmentation and then for the BM25
morphemes of the backend; the memo makes the second look a dictionary hit. Kiwi's `tokenize`
is not documented as thread-safe, so calls hold one lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache

MEMO_SIZE = 4096  # texts; ingest writes 256 passages per batch
KIWI_LOCK = threading.RLock()
_memo: OrderedDict[str, list] = OrderedDict()


@lru_cache(maxsize=1)
def kiwi():
    """The process-wide `kiwipiepy.Kiwi`, without its typo and multi-word dictionaries (they cost start-up time).

    Measured on the project's 23,632 texts (`ksearch bench startup` for the time): the typo dictionary changes no
    analysis; the multi-word one (아토피 피부염 as one NNP) changes 1.2% of segmentations, the shipped model's dev
    nDCG@10 by +0.003 / 0.000 / +0.001 (sample / ood-legal / ood-medical), and costs ~2.5 s of every cold start."""
    from kiwipiepy import Kiwi

    return Kiwi(load_typo_dict=False, load_multi_dict=False)


def analyse(texts: Sequence[str]) -> list[list]:
    """Kiwi's tokens (form, tag, start, len) for each text, from the memo when it was analysed recently."""
    with KIWI_LOCK:
        missing = [t for t in dict.fromkeys(texts) if t not in _memo]
        fresh = dict(zip(missing, kiwi().tokenize(missing))) if missing else {}
        out = []
        for text in texts:
            tokens = fresh.get(text)
            if tokens is None:
                tokens = _memo[text]
                _memo.move_to_end(text)
            out.append(tokens)
        for text, tokens in fresh.items():
            _memo[text] = tokens
        while len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
    return out


def clear_memo() -> None:
    """Forget recent analyses (benchmarks start each measurement cold)."""
    with KIWI_LOCK:
        _memo.clear()
