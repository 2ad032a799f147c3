"""A first CPU trial of the e5-backbone route (encoder/MODEL_CARD.md, ablation, "multilingual-e5-small as a word-level
expander, and as a backbone"); dev only, not part of ksearch.

e5-small's first --layers layers (a folder from e5_to_hf.py) under a head over v3's 24,000-word vocabulary. Each head
row starts as the mean of e5's input embeddings of the word's pieces, so the untrained model matches a text's own
words; the bias starts at -5 (measured before training: -4 leaves ~660 non-zeros per passage, -6 ~36). `train` runs one epoch over the written triples
(training_data/*pairs_*.jsonl: in-batch and written negatives, FLOPS 0.01 / 0.005 ramped over half the run).
`eval` runs `ksearch eval --split dev` on the three collections and `ksearch eval-expansions --probe`, with
`SparseEncoder._encode` patched in this process to use the model (raw text, up to 128 e5 tokens; the feature names
are v3's, so indexing and pruning run unchanged):

    PYTHONPATH=/tmp/e5 .venv/bin/python docs/experiments/e5_to_hf.py --out e5-small-hf
    .venv/bin/python docs/experiments/e5_backbone.py train --e5 e5-small-hf --checkpoint e5s4.pt   # 43 min, 2 cores
    .venv/bin/python docs/experiments/e5_backbone.py eval --e5 e5-small-hf --checkpoint e5s4.pt --probe PROBE.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "encoder" / "models" / "ksearch-ko-sparse"
COLLECTIONS = ("sample_data", "eval_data/ood-legal", "eval_data/ood-medical")


class E5Sparse(torch.nn.Module):
    """max over tokens of log(1 + ReLU(hidden · head + bias)), the head over v3's vocabulary."""

    def __init__(self, bert, layers: int, head: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.bert = bert
        self.bert.encoder.layer = self.bert.encoder.layer[:layers]
        self.head, self.bias = torch.nn.Parameter(head), torch.nn.Parameter(bias)
        self.register_buffer("keep", torch.ones(head.shape[0]))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        weights = torch.log1p(torch.relu(hidden @ self.head.T + self.bias)) * mask.unsqueeze(-1)
        return weights.amax(dim=1) * self.keep


def v3_words() -> list[str]:
    vocab = json.loads((SHIPPED / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    return sorted(vocab, key=vocab.get)


def build(e5: Path, layers: int, checkpoint: Path | None = None):
    """(model, e5 tokenizer, v3 words): fresh from e5, or restored from a checkpoint."""
    from transformers import AutoTokenizer, BertModel

    tok, bert, words = AutoTokenizer.from_pretrained(e5), BertModel.from_pretrained(e5), v3_words()
    embeddings = bert.embeddings.word_embeddings.weight.detach()
    head = torch.zeros(len(words), embeddings.shape[1])
    special = [i for i, w in enumerate(words) if w.startswith("[") and w.endswith("]")]
    metaspace = tok.convert_tokens_to_ids("▁")
    for i, word in enumerate(words):
        if i not in special:
            ids = tok(word.removeprefix("##"), add_special_tokens=False)["input_ids"]
            head[i] = embeddings[[j for j in ids if j != metaspace] or ids].mean(0)
    model = E5Sparse(bert, layers, head, torch.full((len(words),), -5.0))
    model.keep[special] = 0
    if checkpoint is not None:
        model.load_state_dict(torch.load(checkpoint))
    return model, tok, words


def train(args) -> None:
    model, tok, _ = build(args.e5, args.layers)
    rows = [json.loads(line) for f in sorted((ROOT / "training_data").glob("*pairs_*.jsonl"))
            for line in f.open(encoding="utf-8")]
    random.Random(0).shuffle(rows)
    optimizer = torch.optim.AdamW([{"params": model.bert.parameters(), "lr": 3e-5},
                                   {"params": [model.head, model.bias], "lr": 3e-4}], weight_decay=0.01)

    def encode(texts: list[str], length: int) -> torch.Tensor:
        batch = tok(texts, padding=True, truncation=True, max_length=length, return_tensors="pt")
        return model(batch["input_ids"], batch["attention_mask"])

    steps, size = len(rows) // args.batch, args.batch
    model.train()
    for step in tqdm(range(steps), desc="e5 backbone, one epoch"):
        batch = rows[step * size:(step + 1) * size]
        queries = encode([r["query"] for r in batch], 32)
        passages = encode([r["positive"] for r in batch] + [r["hard_negative"] for r in batch], 96)
        ramp = min(1.0, (step + 1) / (0.5 * steps))
        loss = (F.cross_entropy(queries @ passages.T, torch.arange(size))
                + ramp * (0.01 * (queries.mean(0) ** 2).sum() + 0.005 * (passages.mean(0) ** 2).sum()))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    torch.save(model.state_dict(), args.checkpoint)


def evaluate(args) -> None:
    from encoder.feature_names import token_to_feature
    from encoder.sparse_encoder import SparseEncoder
    from ksearch.cli import app

    model, tok, words = build(args.e5, args.layers, args.checkpoint)
    model.eval()
    names = [token_to_feature(w) for w in words]

    def encode(self, texts, batch_size=None):
        out = [{} for _ in texts]
        todo = [i for i, t in enumerate(texts) if t.strip()]
        for start in range(0, len(todo), 32):
            part = todo[start:start + 32]
            batch = tok([texts[i] for i in part], padding=True, truncation=True, max_length=128, return_tensors="pt")
            with torch.inference_mode():
                vectors = model(batch["input_ids"], batch["attention_mask"])
            for i, row in zip(part, vectors):
                nonzero = torch.nonzero(row).flatten().tolist()
                out[i] = dict(sorted(((names[j], float(row[j])) for j in nonzero), key=lambda kv: -kv[1]))
        return out

    SparseEncoder._encode = encode

    def run(*argv: str) -> dict:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            app(list(argv), standalone_mode=False)
        return json.loads(printed.getvalue())

    with tempfile.TemporaryDirectory() as home:
        os.environ["KSEARCH_HOME"] = home
        for collection in COLLECTIONS:
            result = run("eval", "--split", "dev", "--collection", str(ROOT / collection), "--json")
            print(f"{collection}: sparse {result['sparse']['ndcg@10']:.3f}, hybrid {result['hybrid']['ndcg@10']:.3f}, "
                  f"BM25 {result['bm25']['ndcg@10']:.3f} (dev nDCG@10)")
        if args.probe:
            summary = run("eval-expansions", "--probe", str(args.probe), "--json")
            summary = summary.get("summary", summary)
            print(f"expansions related: {summary['related_share']:.3f} of {summary['expansion_tokens']} tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("train", "eval"))
    parser.add_argument("--e5", type=Path, required=True, help="the folder e5_to_hf.py wrote")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--probe", type=Path, help="expansion probe JSONL (the card uses the dev third)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    (train if args.what == "train" else evaluate)(args)


if __name__ == "__main__":
    main()
