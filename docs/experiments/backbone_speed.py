"""How fast a sparse model the size of multilingual-e5-small would encode on this CPU (encoder/MODEL_CARD.md,
Limitations, "Small and from scratch"); not part of ksearch.

A BertForMaskedLM of e5-small's shape (12 layers, hidden 384, 12 heads, FFN 1536) with random weights, so that no
download is needed: speed does not depend on the weights. It encodes batches of 64 passages of 64 tokens and
max-pools log(1 + ReLU(logits)) as SparseEncoder does, in fp32 and under bf16 autocast, on 2 threads:

    .venv/bin/python docs/experiments/backbone_speed.py [--vocab 24000 40000]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import BertConfig, BertForMaskedLM


def passages_per_second(model: BertForMaskedLM, vocab: int, bf16: bool, batch: int = 64, tokens: int = 64) -> float:
    """Passages/s of one batch, the mean of two timed runs after a warm-up."""
    ids = torch.randint(5, vocab, (batch, tokens))
    mask = torch.ones_like(ids)

    def encode() -> None:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            torch.log1p(torch.relu(model(input_ids=ids, attention_mask=mask).logits)).amax(dim=1)

    encode()
    start = time.perf_counter()
    encode()
    encode()
    return batch / ((time.perf_counter() - start) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, nargs="+", default=[24000, 40000])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for vocab in args.vocab:
        config = BertConfig(vocab_size=vocab, hidden_size=384, num_hidden_layers=12, num_attention_heads=12,
                            intermediate_size=1536)
        model = BertForMaskedLM(config).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        for bf16 in (False, True):
            print(f"vocabulary {vocab}, {params:.1f} M parameters, {'bf16' if bf16 else 'fp32'}: "
                  f"{passages_per_second(model, vocab, bf16):.0f} passages/s of 64 tokens")


if __name__ == "__main__":
    main()
