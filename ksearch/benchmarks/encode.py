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
from encoder.card_reference import card_encode
from encoder.kiwi_analysis import clear_memo
from encoder.sparse_encoder import native_bf16
from ksearch.benchmarks.measure import measure
from ksearch.benchmarks.parity import ParityData

SPEEDUP_TARGET, PARITY_TARGET = 3.0, 0.99
ONNX_NDCG_TOLERANCE = 0.005  # |nDCG@10(onnx) - nDCG@10(torch fp32)| allowed
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
    precision: str | None = None  # None: the card's loop (fp32)
    ndcg_at_10: float | None = None  # sparse nDCG@10 of an index built and queried with this variant
    ndcg_parity_vs_fp32: float | None = None
    backend: str = "torch"  # or "onnx": the light runtime (model.onnx with ONNX Runtime)
    ndcg_delta_vs_fp32: float | None = None  # nDCG@10 minus torch fp32's


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


def benchmark_texts(tokenizer, count: int, target_tokens: int, corpus: Path | None, segmenter=None) -> list[str]:
    """`count` passages of about `target_tokens` model tokens, cut from the sample corpus when present.

    With a pre-segmenting model the tokens are counted after segmentation, as the model sees them.
    """
    source = []
    if corpus and corpus.is_file():
        source = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8") if line.strip()]
    words = " ".join(source or [_FALLBACK_TEXT] * 50).split()
    cost: dict[str, int] = {}  # model tokens per source word, counted once

    def tokens_of(word: str) -> int:
        if word not in cost:
            text = segmenter.segment([word])[0] if segmenter else word
            cost[word] = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        return cost[word]

    texts, start = [], 0
    while len(texts) < count:
        end, used = start, 2  # [CLS] and [SEP]
        while end < start + 200 and end < len(words) and (end == start or used + tokens_of(words[end]) <= target_tokens):
            used += tokens_of(words[end])
            end += 1
        texts.append(" ".join(words[start:end]))
        start = end if end < len(words) - 200 else 0
    return texts


def top20_overlap(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    """Mean |top20(a) & top20(b)| / 20 over texts."""
    scores = []
    for x, y in zip(a, b):
        tx, ty = set(list(x)[:20]), set(list(y)[:20])
        scores.append(len(tx & ty) / max(1, min(20, len(tx), len(ty))))
    return statistics.fmean(scores) if scores else 0.0


def run_encode_bench(
    model_path: str | None, seed_sized: bool, passages: int, batch_size: int, target_tokens: int,
    corpus: Path | None, repeats: int = 1, parity: ParityData | None = None,
) -> dict:
    """Measure every variant on the same passages (and, given `parity`, its nDCG@10 vs fp32); return the result document."""
    if seed_sized:
        model, tokenizer = seed_sized_modernbert()
        label, max_length, segmenter, pruning = "seed-sized ModernBERT (random weights, 149M params, vocab 49,999)", 64, None, {}
        default, default_backend, onnx_build = "fp32", "torch", None
    else:
        base = SparseEncoder.load(model_path, device="cpu", batch_size=batch_size)
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        from encoder.model_resolution import resolve_model

        source = resolve_model(model_path)[1]
        model = AutoModelForMaskedLM.from_pretrained(source, local_files_only=True, dtype=torch.float32).eval()
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)  # the torch variants' and the card's
        label, max_length, segmenter = base.model_id, base.max_length, base.segmenter
        pruning = {"document_pruning": base.document_pruning, "query_pruning": base.query_pruning}
        default, default_backend = base.precision, base.backend
        onnx_build = None  # the light runtime's variant, when the folder has a usable model.onnx
        if base.backend == "onnx":
            onnx_build = lambda: SparseEncoder.load(model_path, device="cpu", batch_size=batch_size,  # noqa: E731
                                                    backend="onnx")

    def make(precision: str, size: int = batch_size) -> SparseEncoder:
        return SparseEncoder(copy.deepcopy(model), tokenizer, model_id=label, max_length=max_length, batch_size=size,
                             segmenter=segmenter, precision=precision, **pruning)

    texts = benchmark_texts(tokenizer, passages, target_tokens, corpus, segmenter)
    n_params = sum(p.numel() for p in model.parameters())
    model_texts = segmenter.segment(texts) if segmenter else texts  # the card's loop sees what the tokenizer sees
    bf16_note = "torch.autocast bfloat16" + ("" if native_bf16("cpu") else " (emulated: this CPU has no native bf16)")
    threads = torch.get_num_threads()
    variants: list[tuple[str, str | None, Callable[[], SparseEncoder] | None, str, int]] = [
        ("card loop", None, None, "the model card's encode(), one text at a time, fp32", threads),
        (f"batched fp32 (b={batch_size})", "fp32", lambda: make("fp32"), "length-sorted batches, projection skips padding",
         threads),
        (f"batched int8 dynamic (b={batch_size})", "int8", lambda: make("int8"), "torch dynamic quantisation of every Linear",
         threads),
        (f"batched bf16 (b={batch_size})", "bf16", lambda: make("bf16"), bf16_note, threads),
        ("batched bf16 (b=128)", "bf16", lambda: make("bf16", 128), bf16_note, threads),
    ]
    if onnx_build is not None:
        variants.insert(2, (f"onnx fp32 (b={batch_size})", "fp32", onnx_build,
                            "ONNX Runtime on model.onnx: the light runtime, no torch", threads))
    if threads > 1:
        variants.append((f"batched bf16 (b={batch_size}, 1 thread)", "bf16", lambda: make("bf16"),
                         f"torch.set_num_threads(1) instead of {threads}", 1))

    results: list[VariantResult] = []
    reference = None
    card_rate = None
    ndcg_of: dict[tuple[str, str], float] = {}  # parity depends on backend and precision: measured once per pair
    for name, precision, build, note, n_threads in variants:
        if build is None:
            fn = lambda: card_encode(model, tokenizer, model_texts, max_length)  # noqa: E731
            encoder = None
        else:
            try:
                encoder = build()
            except (RuntimeError, ValueError) as exc:  # quantisation backends differ between torch builds
                results.append(VariantResult(name, 0.0, 0.0, 0.0, 0.0, 0.0, None, f"unavailable: {exc}", precision))
                continue

            def fn(encoder: SparseEncoder = encoder) -> list[dict[str, float]]:
                clear_memo()  # every run pays for its Kiwi analysis (the card's loop gets pre-segmented texts)
                return encoder.encode_documents(texts)
        torch.set_num_threads(n_threads)
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
        if encoder is not None:
            reference = reference or fn_out
            overlap = top20_overlap(reference, fn_out)
        torch.set_num_threads(threads)
        backend = encoder.backend if encoder is not None else "torch"
        results.append(VariantResult(name, rate, seconds, m.peak_rss_mb, m.peak_extra_mb, rate / card_rate, overlap, note,
                                     precision, backend=backend))
        if encoder is not None and parity is not None and not seed_sized:
            if (backend, precision) not in ndcg_of:
                ndcg_of[backend, precision] = parity.ndcg_at_10(encoder)
            results[-1].ndcg_at_10 = ndcg_of[backend, precision]
    fp32_ndcg = next((r.ndcg_at_10 for r in results if r.precision == "fp32" and r.backend == "torch"
                      and r.ndcg_at_10 is not None), None)
    for r in results:
        if fp32_ndcg and r.ndcg_at_10 is not None:
            r.ndcg_parity_vs_fp32 = r.ndcg_at_10 / fp32_ndcg
            r.ndcg_delta_vs_fp32 = r.ndcg_at_10 - fp32_ndcg

    return {
        "benchmark": "encode",
        "model": label,
        "parameters": n_params,
        "passages": len(texts),
        "mean_tokens": statistics.fmean(len(tokenizer(t)["input_ids"]) for t in model_texts),
        "max_length": max_length,
        "torch_threads": torch.get_num_threads(),
        "default_precision": default,
        "default_backend": default_backend,
        "onnx_ndcg_tolerance": ONNX_NDCG_TOLERANCE,
        "parity": parity.describe() if parity is not None and not seed_sized else None,
        "target": {"speedup_vs_card": SPEEDUP_TARGET, "ndcg_parity": PARITY_TARGET},
        "hardware": hardware_string(),
        "variants": [asdict(r) for r in results],
    }


def meets_target(variant: dict) -> bool:
    """>= 3x the card loop at >= 0.99 of fp32's nDCG@10 (the issue's encoder target)."""
    parity = variant.get("ndcg_parity_vs_fp32")
    return variant["speedup_vs_card"] >= SPEEDUP_TARGET and parity is not None and parity >= PARITY_TARGET


def onnx_parity_holds(result: dict) -> bool | None:
    """Whether the ONNX variant's nDCG@10 is within ONNX_NDCG_TOLERANCE of torch fp32's (None: not measured)."""
    deltas = [v["ndcg_delta_vs_fp32"] for v in result["variants"]
              if v.get("backend") == "onnx" and v.get("ndcg_delta_vs_fp32") is not None]
    return all(abs(d) <= ONNX_NDCG_TOLERANCE for d in deltas) if deltas else None


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
