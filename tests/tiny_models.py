"""Tiny random-weight masked-LMs with Korean tokenizers trained in the test session (no network)."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

KOREAN_SENTENCES = [
    "집주인이 전세 보증금을 돌려주지 않으면 임차권등기명령을 신청할 수 있습니다.",
    "임대인은 계약이 끝나면 임차인에게 보증금을 반환해야 합니다.",
    "주택임대차보호법상 대항력은 주택 인도와 전입신고를 마친 다음 날부터 생깁니다.",
    "근로자를 해고하려면 정당한 이유가 있어야 하고 30일 전에 예고해야 합니다.",
    "퇴직금은 1년 이상 일한 근로자에게 평균임금 30일분 이상을 지급합니다.",
    "당뇨병은 혈당이 높은 상태가 지속되는 만성질환이며 HbA1c 6.5% 이상이면 진단합니다.",
    "2형 당뇨는 생활습관 교정과 메트포르민 같은 약물로 치료합니다.",
    "편두통은 한쪽 머리가 욱신거리고 빛과 소리에 예민해지는 두통입니다.",
    "고혈압 환자는 싱겁게 먹고 규칙적으로 운동해야 합니다. 혈압은 mmHg 단위로 잽니다.",
    "교통사고 합의금은 과실비율과 치료비, 위자료를 고려해 정합니다.",
    "제623조에 따라 임대인은 목적물을 사용, 수익에 필요한 상태로 유지할 의무가 있다.",
    "MRI 검사는 건강보험 적용 여부에 따라 본인부담금이 달라집니다.",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(vocab_size: int = 400) -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, min_frequency=1)
    tok.train_from_iterator(KOREAN_SENTENCES * 3, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tok


def train_byte_bpe(vocab_size: int = 600) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(KOREAN_SENTENCES * 3, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    return tok


def build_tiny_model(arch: str, out_dir: Path, *, max_length: int = 64, seed: int = 0) -> Path:
    """Save a random-weight `arch` ('bert', 'modernbert', 'roberta') masked-LM + tokenizer to out_dir."""
    from transformers import (
        AutoModelForMaskedLM,
        BertConfig,
        ModernBertConfig,
        PreTrainedTokenizerFast,
        RobertaConfig,
    )

    torch.manual_seed(seed)
    if arch == "roberta":
        raw = train_byte_bpe()
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=raw, bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
            pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", model_max_length=max_length,
            model_input_names=["input_ids", "attention_mask"],
        )
        config = RobertaConfig(
            vocab_size=raw.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=max_length + 4, pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    else:
        raw = train_wordpiece()
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=raw, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]",
            mask_token="[MASK]", model_max_length=max_length,
            model_input_names=["input_ids", "token_type_ids", "attention_mask"] if arch == "bert" else ["input_ids", "attention_mask"],
        )
        common = dict(vocab_size=raw.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
        if arch == "bert":
            config = BertConfig(**common)
        elif arch == "modernbert":
            config = ModernBertConfig(**common, cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                                      bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
                                      global_attn_every_n_layers=2, local_attention=16)
        else:
            raise ValueError(arch)
    model = AutoModelForMaskedLM.from_config(config)
    # Random init gives logits near 0; widen them so vectors have clear positive and negative weights.
    with torch.no_grad():
        model.get_output_embeddings().weight.normal_(0, 0.5)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
