"""A tiny random-weight BERT with a Korean WordPiece vocabulary, built locally in seconds: an encoder cheap enough to push
gigabytes through the ingest path (reader, splitter, writer) when what is measured is not the model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

FAST_ENCODER_NAME = "ksearch-bench-tiny-bert"  # what results name it: 2 layers, hidden size 32, random weights
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_fast_encoder(out_dir: Path, sentences: Sequence[str], *, max_length: int = 128, vocab_size: int = 2000) -> Path:
    """Save a random-weight 2-layer BERT masked-LM and a WordPiece tokenizer trained on `sentences` to `out_dir`."""
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
    config = BertConfig(vocab_size=raw.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=max_length, pad_token_id=tokenizer.pad_token_id)
    model = BertForMaskedLM(config)
    with torch.no_grad():  # random init gives logits near 0; widen them so vectors have clear non-zero weights
        model.get_output_embeddings().weight.normal_(0, 0.5)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
