"""Encoder throughput: the model card's one-at-a-time loop vs SparseEncoder variants, in one run."""

from __future__ import annotations

import copy
import json
import platform
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from encoder import SparseEncoder
from ksearch.benchmarks.measure import measure

SEED_SIZED = dict(hidden_size=768, num_hidden_layers=22, num_attention_heads=12, intermediate_size=1152, vocab_size=49_999)
_FALLBACK_TEXT = (
    "임대인은 임대차 계약이 끝나면 임차인에게 보증금을 돌려주어야 하며, 돌려주지 않으면 임차권등기명령을 신청할 수 있다. "
    "2형 당뇨병 환자는 HbA1c 7% 미만을 목표로 식사 조절과 운동, 약물 치료를 함께 한다. "
)


@dataclass
class VariantResult:
    name: str
    passages_per_s: float
    seconds: float
    peak_rss_mb: float
    peak_extra_mb: float
    speedup_vs_card: float
    top20_overlap_vs_fp32: float | None
    note: str = ""


def seed_sized_modernbert() -> tuple[torch.nn.Module, object]:
    """A random-weight ModernBERT with the production model's shape and a 49,999-token Korean syllable vocabulary."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import AutoModelForMaskedLM, ModernBertConfig, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    syllables = [chr(c) for c in range(0xAC00, 0xD7A4)]
    ascii_chars = [chr(c) for c in range(33, 127)]
    vocab = specials + syllables + ["##" + s for s in syllables] + ascii_chars + ["##" + a for a in ascii_chars]
    vocab += [f"[unused{i}]" for i in range(SEED_SIZED["vocab_size"] - len(vocab))]
    raw = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    raw.normalizer = normalizers.NFC()
    raw.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    raw.decoder = decoders.WordPiece()
    raw.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]",
        mask_token="[MASK]", model_max_length=64, model_input_names=["input_ids", "attention_mask"],
    )
    config = ModernBertConfig(**SEED_SIZED, pad_token_id=0, cls_token_id=2, sep_token_id=3, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(0)
    return AutoModelForMaskedLM.from_config(config).eval(), tokenizer


def benchmark_texts(tokenizer, count: int, target_tokens: int, corpus: Path | None) -> list[str]:
    """`count` passages of about `target_tokens` tokens, cut from the sample corpus when present."""
    source = []
    if corpus and corpus.is_file():
        source = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8") if line.strip()]
    words = " ".join(source or [_FALLBACK_TEXT] * 50).split()
    texts, start = [], 0
    while len(texts) < count:
        end = start + 1
        while end < start + 200 and len(tokenizer(" ".join(words[start:end]))["input_ids"]) < target_tokens:
            end += 1
        texts.append(" ".join(words[start:end]))
        start = end if end < len(words) - 200 else 0
    return texts


def card_loop(model, tokenizer, texts: list[str], max_length: int) -> list[dict[str, float]]:
    """The model card's encode(), called once per text, turned into {token: weight} as the product needs."""
    out = []
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    special = set(tokenizer.all_special_ids)
    for text in texts:
        inputs = tokenizer(text, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
        inputs = {k: v for k, v in inputs.items() if k in tokenizer.model_input_names}
        with torch.no_grad():
            logits = model(**inputs).logits
            scores = torch.log1p(torch.relu(logits))
            mask = inputs["attention_mask"].unsqueeze(-1).float()
            sparse = (scores * mask).max(dim=1).values[0]
        ids = torch.nonzero(sparse > 0).squeeze(1).tolist()
        out.append({vocab[i]: float(sparse[i]) for i in ids if i not in special})
    return out


def top20_overlap(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    """Mean |top20(a) & top20(b)| / 20 over texts."""
    scores = []
    for x, y in zip(a, b):
        tx, ty = set(list(x)[:20]), set(list(y)[:20])
        scores.append(len(tx & ty) / max(1, min(20, len(tx), len(ty))))
    return statistics.fmean(scores) if scores else 0.0


def run_encode_bench(
    model_path: str | None, seed_sized: bool, passages: int, batch_size: int, target_tokens: int,
    corpus: Path | None, repeats: int = 1,
) -> dict:
    """Measure every variant on the same passages; return the result document."""
    if seed_sized:
        model, tokenizer = seed_sized_modernbert()
        label, max_length = "seed-sized ModernBERT (random weights, 149M params, vocab 49,999)", 64
        make = lambda m: SparseEncoder(m, tokenizer, model_id="seed-sized", max_length=64, batch_size=batch_size)  # noqa: E731
    else:
        base = SparseEncoder.load(model_path, device="cpu", batch_size=batch_size)
        from transformers import AutoModelForMaskedLM

        from encoder.model_resolution import resolve_model

        model = AutoModelForMaskedLM.from_pretrained(resolve_model(model_path)[1], local_files_only=True,
                                                     dtype=torch.float32).eval()
        tokenizer, label, max_length = base.tokenizer, base.model_id, base.max_length
        make = lambda m: SparseEncoder(m, tokenizer, model_id=label, max_length=max_length, batch_size=batch_size,  # noqa: E731
                                       segmenter=base.segmenter)
    texts = benchmark_texts(tokenizer, passages, target_tokens, corpus)
    n_params = sum(p.numel() for p in model.parameters())
    variants: list[tuple[str, Callable[[], object], str]] = []

    model_texts = base.model_text(texts) if not seed_sized else texts  # the card's loop sees what the tokenizer sees
    variants.append(("card loop", lambda: card_loop(model, tokenizer, model_texts, max_length), ""))
    fp32 = make(copy.deepcopy(model))
    variants.append((f"batched fp32 (b={batch_size})", lambda: fp32.encode_documents(texts), ""))
    try:
        import warnings

        warnings.filterwarnings("ignore", message=".*quantize.*deprecated", category=UserWarning)
        int8_model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
        int8 = make(int8_model)
        variants.append((f"batched int8 dynamic (b={batch_size})", lambda: int8.encode_documents(texts),
                         "torch dynamic quantisation of every Linear layer"))
    except Exception as exc:  # quantisation backends differ between torch builds
        variants.append(("batched int8 dynamic", None, f"unavailable: {exc}"))

    results: list[VariantResult] = []
    reference = None
    card_rate = None
    for name, fn, note in variants:
        if fn is None:
            results.append(VariantResult(name, 0.0, 0.0, 0.0, 0.0, 0.0, None, note))
            continue
        fn_out, m = measure(fn)  # warm-up and first measurement
        times = [m.seconds]
        for _ in range(repeats - 1):
            fn_out, m2 = measure(fn)
            times.append(m2.seconds)
            m.peak_rss_mb, m.peak_extra_mb = max(m.peak_rss_mb, m2.peak_rss_mb), max(m.peak_extra_mb, m2.peak_extra_mb)
        seconds = statistics.median(times)
        rate = len(texts) / seconds
        card_rate = card_rate or rate
        overlap = None
        if name != "card loop":
            reference = reference or fn_out
            overlap = top20_overlap(reference, fn_out)
        results.append(VariantResult(name, rate, seconds, m.peak_rss_mb, m.peak_extra_mb, rate / card_rate, overlap, note))

    return {
        "benchmark": "encode",
        "model": label,
        "parameters": n_params,
        "passages": len(texts),
        "mean_tokens": statistics.fmean(len(tokenizer(t)["input_ids"]) for t in texts),
        "max_length": max_length,
        "torch_threads": torch.get_num_threads(),
        "hardware": hardware_string(),
        "variants": [asdict(r) for r in results],
    }


def hardware_string() -> str:
    """CPU model and core count, for the results document."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"
