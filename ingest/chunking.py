"""Split documents into passages that fit the encoder's max length.

Windows are cut on the encoder's own token boundaries, `budget = max_length - special tokens`
long at most, preferring to end at a sentence end (Kiwi's `split_into_sents`) in the second half
of the window, else at a word boundary; consecutive windows overlap by `overlap` tokens (moved
forward to a word start). Every passage is re-tokenised and shortened until it fits, so the
encoder never truncates. For a model that pre-segments text (Kiwi morphemes), token offsets
are those of the raw text's words: each word stands for as many positions as it has tokens.
"""

from __future__ import annotations

import bisect
import re

from retrieval.morphemes import sentence_spans_many

DEFAULT_OVERLAP_TOKENS = 16
MAX_CHARS_PER_TOKEN = 8  # texts longer than budget x this are split without first trying them whole


class PassageSplitter:
    """Cuts texts into passages of at most `max_length` tokens (special tokens included)."""

    def __init__(self, encoder, overlap: int = DEFAULT_OVERLAP_TOKENS) -> None:
        self.encoder = encoder
        self.tokenizer = tokenizer = encoder.tokenizer
        self.specials = tokenizer.num_special_tokens_to_add(pair=False)
        max_length = encoder.max_length
        self.budget = max_length - self.specials
        if self.budget < 8:
            raise ValueError(f"max_length {max_length} leaves only {self.budget} tokens per passage")
        self.overlap = max(0, min(overlap, self.budget // 4))

    def token_count(self, text: str) -> int:
        """Model tokens of `text` without special tokens (after pre-segmentation, if any)."""
        return self.encoder.count_tokens([text])[0] - self.specials

    def _offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of every model token of `text`."""
        if getattr(self.encoder, "segmenter", None) is None:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
            return [tuple(o) for o in enc["offset_mapping"]]
        words = [m.span() for m in re.finditer(r"\S+", text)]
        counts = self.encoder.count_tokens([text[a:b] for a, b in words])
        return [span for span, count in zip(words, counts) for _ in range(max(0, count - self.specials))]

    def split_many(self, texts: list[str]) -> list[list[str]]:
        """`split` for many texts; the ones that fit whole are found with one batched token count, the sentences of
        the others with one batched Kiwi call."""
        stripped = [t.strip() for t in texts]
        short = [t for t in stripped if t and self._may_fit(t)]
        fits = dict(zip(short, (n - self.specials <= self.budget for n in self.encoder.count_tokens(short))))
        long = list(dict.fromkeys(t for t in stripped if t and not fits.get(t)))
        sentences = dict(zip(long, sentence_spans_many(long)))
        return [[] if not t else [t] if fits.get(t) else self._split_long(t, sentences[t]) for t in stripped]

    def _may_fit(self, text: str) -> bool:
        """False when `text` is too long in characters to fit, so it is never analysed whole (a 1 MB text
        takes Kiwi seconds); a Korean token is rarely longer than MAX_CHARS_PER_TOKEN characters."""
        return len(text) <= self.budget * MAX_CHARS_PER_TOKEN

    def split(self, text: str) -> list[str]:
        """The passages of `text` (one when it fits; none when it is blank)."""
        return self.split_many([text])[0]

    def _split_long(self, text: str, sentences: list[tuple[int, int]]) -> list[str]:
        """Windows of at most `budget` tokens over a stripped text that does not fit whole (`sentences`: its
        sentences' character spans)."""
        offsets = self._offsets(text)
        n = len(offsets)
        if n == 0:
            return [text]
        ends = [o[1] for o in offsets]
        # token index after which a sentence ends (cut = that index + 1)
        sentence_cuts = sorted({bisect.bisect_right(ends, end) for _, end in sentences})
        word_starts = [i for i in range(1, n) if offsets[i][0] > offsets[i - 1][1]]
        passages, start = [], 0
        while start < n:
            hard = min(start + self.budget, n)
            end = hard if hard == n else self._cut(start, hard, sentence_cuts, word_starts)
            piece = text[offsets[start][0] : offsets[end - 1][1]]
            while end - start > 1 and self.token_count(piece) > self.budget:
                end -= 1
                piece = text[offsets[start][0] : offsets[end - 1][1]]
            if piece.strip():
                passages.append(piece.strip())
            if end >= n:
                break
            nxt = max(end - self.overlap, start + 1)
            later_word = bisect.bisect_left(word_starts, nxt)
            if later_word < len(word_starts) and word_starts[later_word] < end:
                nxt = word_starts[later_word]
            start = nxt
        return passages

    def _cut(self, start: int, hard: int, sentence_cuts: list[int], word_starts: list[int]) -> int:
        """Best end (exclusive) in (start + budget/2, hard]: a sentence end, else a word start, else hard."""
        low = start + self.budget // 2
        for candidates in (sentence_cuts, word_starts):
            i = bisect.bisect_right(candidates, hard) - 1
            if i >= 0 and candidates[i] > low:
                return candidates[i]
        return hard
