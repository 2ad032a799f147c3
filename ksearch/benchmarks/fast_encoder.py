"""A tiny random-weight BERT with a Korean WordPiece vocabulary, built locally in seconds: an encoder cheap enough to push
hundreds of MB through the ingest path (reader, splitter, spool, writer) when what is measured is not the model.

It is a real Hugging Face masked-LM run by `SparseEncoder`, shaped where the shipped model's shape reaches the rest of
the pipeline: passages of at most 64 tokens (its `max_length`) and ~70 non-zero weights per passage (the shipped
model's 69 on the sample index, docs/benchmarks.md). Random weights would make almost every vocabulary entry non-zero
(1,586 of 1,591 before this was fixed), so the output bias is lowered until a sample of passages has that many."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

FAST_ENCODER_NAME = "ksearch-bench-tiny-bert"
HIDDEN, LAYERS, HEADS, INTERMEDIATE = 16, 1, 2, 32
MAX_LENGTH = 64  # the shipped model's
TARGET_NONZERO = 70  # weights per passage, about the shipped model's
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def fast_encoder_description() -> str:
    """How results name the encoder."""
    return (f"{FAST_ENCODER_NAME} ({LAYERS} layer, hidden {HIDDEN}, random weights, {MAX_LENGTH}-token passages, "
            f"~{TARGET_NONZERO} non-zero weights each; built locally)")


def build_fast_encoder(out_dir: Path, sentences: Sequence[str], *, max_length: int = MAX_LENGTH, vocab_size: int = 2000,
                       target_nonzero: int = TARGET_NONZERO) -> Path:
    """Save a random-weight BERT masked-LM and a WordPiece tokenizer trained on `sentences` to `out_dir`; the output
    bias is set so that passages cut from `sentences` have about `target_nonzero` non-zero weights."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    raw = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    raw.normalizer = normalizers.NFC()
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    raw.decoder = decoders.WordPiece()
    raw.train_from_iterator(list(sentences), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS))
    cls, sep = raw.token_to_id("[CLS]"), raw.token_to_id("[SEP]")
    raw.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                        unk_token="[UNK]", mask_token="[MASK]", model_max_length=max_length,
                                        model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    config = BertConfig(vocab_size=raw.get_vocab_size(), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                        num_attention_heads=HEADS, intermediate_size=INTERMEDIATE, max_position_embeddings=max_length,
                        pad_token_id=tokenizer.pad_token_id)
    model = BertForMaskedLM(config).eval()
    with torch.no_grad():  # random init gives logits near 0; widen them so vectors have clear non-zero weights
        model.get_output_embeddings().weight.normal_(0, 0.5)
        _lower_bias_to_target(model, tokenizer, sentences, max_length, target_nonzero)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _lower_bias_to_target(model, tokenizer, sentences: Sequence[str], max_length: int, target_nonzero: int) -> None:
    """Shift the output bias so that the pooled logits of ~64-token samples of `sentences` have `target_nonzero`
    positive entries on average (what `SparseEncoder` keeps after log(1 + ReLU))."""
    import torch

    texts = [" ".join(sentences[i : i + 4]) for i in range(0, min(len(sentences), 1024), 4)]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    special = torch.tensor(tokenizer.all_special_ids)
    logits = model(**enc).logits.masked_fill(~enc["attention_mask"].bool().unsqueeze(-1), float("-inf"))
    pooled = logits.amax(dim=1)
    pooled[:, special] = float("-inf")
    # the target-th largest pooled logit of each passage, averaged: above it, about target_nonzero stay positive
    threshold = pooled.topk(target_nonzero, dim=1).values[:, -1].mean()
    model.get_output_embeddings().bias -= threshold
