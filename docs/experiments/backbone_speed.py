"""How fast a sparse model the size of multilingual-e5-small would encode on this CPU (encoder/MODEL_CARD.md,
Limitations, "Small and from scratch"); not part of ksearch.

A BertForMaskedLM of e5-small's shape (12 layers, hidden 384, 12 heads, FFN 1536) with random weights, so that no
download is needed: speed does not depend on the weights. It encodes batches of 64 passages of 64 tokens and
max-pools log(1 + ReLU(logits)) as SparseEncoder does, in fp32 and under bf16 autocast, on 2 threads.
With --train-step it also times one fp32 training step (forward, backward, AdamW) of 32 triples, i.e. 96 sequences of
64 tokens, with 12 and with 6 layers, which is what CPU training of such a model would cost:

    .venv/bin/python docs/experiments/backbone_speed.py [--vocab 24000 40000] [--train-step]
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


def training_step_seconds(model: BertForMaskedLM, vocab: int, triples: int = 32, tokens: int = 64) -> float:
    """Seconds per fp32 training step on `triples` (query, positive, negative) rows, the mean of two after a warm-up."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    ids = torch.randint(5, vocab, (3 * triples, tokens))
    mask = torch.ones_like(ids)

    def step() -> None:
        vectors = torch.log1p(torch.relu(model(input_ids=ids, attention_mask=mask).logits)).amax(dim=1)
        queries, passages = vectors[:triples], vectors[triples:]
        loss = torch.nn.functional.cross_entropy(queries @ passages.T, torch.arange(triples)) + 1e-3 * vectors.sum(1).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    model.train()
    step()
    start = time.perf_counter()
    step()
    step()
    return (time.perf_counter() - start) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, nargs="+", default=[24000, 40000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-step", action="store_true", help="also time a training step with 12 and 6 layers")
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
        if args.train_step:
            for layers in (12, 6):
                model.bert.encoder.layer = model.bert.encoder.layer[:layers]
                print(f"vocabulary {vocab}, {layers} layers: {training_step_seconds(model, vocab):.1f} s per training "
                      "step of 32 triples (fp32)")


if __name__ == "__main__":
    main()
