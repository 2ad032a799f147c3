"""The process-wide Kiwi: its memo keeps what callers read of each token, packed; `sentence_spans_many` (the splitter's
batched call) gives each text exactly what `sentence_spans` gives it."""

from __future__ import annotations

from array import array

import encoder.kiwi_analysis as kiwi_analysis
from encoder.kiwi_analysis import analyse, clear_memo, kiwi
from retrieval.morphemes import sentence_spans, sentence_spans_many
from tiny_models import KOREAN_SENTENCES


def test_analyse_gives_kiwis_form_tag_start_len_and_memoises_them_without_kiwis_tokens():
    clear_memo()
    texts = KOREAN_SENTENCES[:2]
    expected = [[(t.form, t.tag, t.start, t.len) for t in kiwi().tokenize(text)] for text in texts]
    assert [[tuple(m) for m in tokens] for tokens in analyse(texts)] == expected
    assert [[(m.form, m.tag, m.start, m.len) for m in tokens] for tokens in analyse(texts[::-1])] == expected[::-1]
    forms, tags, spans = kiwi_analysis._memo[texts[0]]
    assert isinstance(spans, array) and {type(x) for x in forms + tags} == {str}  # not kiwipiepy.Token objects
    shared = set(forms) & set(kiwi_analysis._memo[texts[1]][0])  # 보증금 in both: one str object
    assert shared and all(next(f for f in kiwi_analysis._memo[texts[1]][0] if f == s) is next(f for f in forms if f == s)
                          for s in shared)


def test_batched_sentence_spans_equal_one_text_at_a_time():
    long = " ".join(KOREAN_SENTENCES * 3)
    texts = [long, "", KOREAN_SENTENCES[0], " ".join(KOREAN_SENTENCES[:4])]
    for block_chars in (80, 4000):  # 80: every long text in several blocks, whose offsets must be shifted back
        batched = sentence_spans_many(texts, block_chars)
        assert batched == [sentence_spans(t, block_chars) for t in texts]
        assert batched[1] == [] and len(batched[0]) >= 3 * len(KOREAN_SENTENCES) // 2
        for text, spans in zip(texts, batched):
            assert all(0 <= a < b <= len(text) for a, b in spans)
            assert spans == sorted(spans)
