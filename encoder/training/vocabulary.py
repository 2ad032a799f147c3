"""A Korean morpheme vocabulary and its WordPiece tokenizer (text is Kiwi-segmented first).

Words come first from the training texts (segmented as the model will see them), then from
Kiwi's own lexicon in its frequency order, so the model knows general Korean beyond the
sample data; Hangul syllables and ASCII characters (also as '##' continuations) guarantee
that any word still splits into known pieces instead of [UNK].
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from encoder.kiwi_tags import LEXICON_TAGS, base_tag
from encoder.segmentation import DEFAULT_KEEP_TAGS, KiwiSegmenter

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def common_hangul_syllables() -> list[str]:
    """The 2,350 syllables of KS X 1001, which cover almost all real Korean text."""
    out = []
    for lead in range(0xB0, 0xC9):
        for trail in range(0xA1, 0xFF):
            try:
                out.append(bytes([lead, trail]).decode("euc-kr"))
            except UnicodeDecodeError:
                continue
    return out


def kiwi_lexicon(limit: int) -> list[tuple[str, str, int]]:
    """(form, tag, kiwi id) of Kiwi's content morphemes with id < limit, in id (frequency) order."""
    from encoder.kiwi_analysis import kiwi as process_kiwi

    kiwi = process_kiwi()
    out = []
    for morpheme_id in range(limit):
        try:
            token = kiwi.morpheme(morpheme_id)
        except (IndexError, ValueError, RuntimeError):
            break
        if token.form and base_tag(token.tag) in LEXICON_TAGS and len(token.form) <= 12:
            out.append((token.form, token.tag, morpheme_id))
    return out


def build_vocabulary(texts: Iterable[str], size: int, *, min_count: int = 2, lexicon_scan: int = 120_000) -> list[str]:
    """Special tokens, fallback characters, training-text words (count >= min_count), then Kiwi's lexicon."""
    segmenter = KiwiSegmenter(DEFAULT_KEEP_TAGS)
    counts: Counter[str] = Counter()
    texts = list(texts)
    for start in range(0, len(texts), 2000):
        for segmented in segmenter.segment(texts[start : start + 2000]):
            counts.update(segmented.split())
    syllables = common_hangul_syllables()
    ascii_chars = [chr(c) for c in range(33, 127)]
    fallback = syllables + ["##" + s for s in syllables] + ascii_chars + ["##" + a for a in ascii_chars]
    vocab = list(SPECIAL_TOKENS)
    seen = set(vocab)

    def add(word: str) -> None:
        if word not in seen and len(vocab) < size:
            vocab.append(word)
            seen.add(word)

    for word in fallback:
        add(word)
    for word, count in counts.most_common():
        if count >= min_count:
            add(word)
    for form, _, _ in kiwi_lexicon(lexicon_scan):
        add(form)
    return vocab


def build_tokenizer(vocab: list[str], max_length: int):
    """A fast WordPiece tokenizer over whitespace-separated (pre-segmented) words."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = {token: i for i, token in enumerate(vocab)}
    raw = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=50))
    raw.normalizer = normalizers.NFC()
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    raw.decoder = decoders.WordPiece()
    raw.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]",
        mask_token="[MASK]", model_max_length=max_length, model_input_names=["input_ids", "attention_mask"],
    )
