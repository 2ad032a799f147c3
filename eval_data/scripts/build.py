"""Build the out-of-domain test collections from their authoring files: pool, then assemble.

    python eval_data/scripts/build.py pool ood-legal       # judging sheet of pooled, not yet judged pairs
    python eval_data/scripts/build.py assemble ood-legal   # corpus.jsonl, queries.jsonl, qrels.tsv, splits.json

Pooling takes the top POOL_DEPTH documents of every query from three different retrievers over the
collection's whole corpus: BM25 over Kiwi content morphemes, BM25 over character bigrams, and the
shipped sparse model as it was before this collection existed (`--model`). The author judged every
query against every document; the pool catches what the author may have missed, for a second judge.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POOL_DEPTH = 10
DEV_SHARE = 1 / 3  # dev: for choosing models and settings; test: reported once, never tuned on
SEED = 7


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _bm25_top(doc_tokens: list[list[str]], query_tokens: list[list[str]], k: int) -> list[list[int]]:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(doc_tokens, show_progress=False)
    ranked, _ = retriever.retrieve([q or ["_"] for q in query_tokens], k=min(k, len(doc_tokens)), show_progress=False)
    return ranked.tolist()


def _morphemes(texts: list[str]) -> list[list[str]]:
    from kiwipiepy import Kiwi

    tags = ("NNG", "NNP", "NNB", "VV", "VA", "XR", "SL", "SN", "SH", "MAG")
    return [[f"{t.form}/{t.tag[:2]}" for t in toks if t.tag.startswith(tags)] for toks in Kiwi().tokenize(texts)]


def _bigrams(texts: list[str]) -> list[list[str]]:
    return [[w[i : i + 2] for w in t.split() for i in range(max(1, len(w) - 1))] for t in texts]


def _sparse_top(model: str, docs: list[str], queries: list[str], k: int) -> list[list[int]]:
    from encoder import SparseEncoder

    enc = SparseEncoder.load(model)
    # long documents: the best of their windows, as the search engine ranks documents by their best passage
    from encoder.training.data import passage_windows

    windows, owner = [], []
    for i, text in enumerate(docs):
        for w in passage_windows(text, 160) or [text]:
            windows.append(w)
            owner.append(i)
    dvecs = enc.encode_documents(windows)
    out = []
    for qvec in enc.encode_queries(queries):
        best: dict[int, float] = {}
        for i, dvec in zip(owner, dvecs):
            score = sum(w * dvec.get(t, 0.0) for t, w in qvec.items())
            best[i] = max(best.get(i, 0.0), score)
        out.append(sorted(best, key=lambda i: -best[i])[:k])
    return out


def pool(name: str, model: str) -> Path:
    folder = ROOT / name
    docs = _jsonl(folder / "authoring" / "docs.jsonl")
    queries = _jsonl(folder / "authoring" / "queries.jsonl")
    texts = [f"{d['title']} {d['text']}" for d in docs]
    qtexts = [q["text"] for q in queries]
    runs = [_bm25_top(_morphemes(texts), _morphemes(qtexts), POOL_DEPTH),
            _bm25_top(_bigrams(texts), _bigrams(qtexts), POOL_DEPTH),
            _sparse_top(model, texts, qtexts, POOL_DEPTH)]
    rows = []
    for qi, q in enumerate(queries):
        pooled = {docs[i]["id"] for run in runs for i in run[qi]}
        for doc_id in sorted(pooled - set(q["relevant"])):
            doc = next(d for d in docs if d["id"] == doc_id)
            rows.append({"query_id": q["id"], "query": q["text"], "doc_id": doc_id, "title": doc["title"],
                         "text": doc["text"], "grade": None})
    out = folder / "authoring" / "pool.jsonl"
    _write_jsonl(out, rows)
    print(f"{name}: {len(rows)} pooled pairs to judge -> {out}")
    return out


def assemble(name: str) -> None:
    folder = ROOT / name
    docs = _jsonl(folder / "authoring" / "docs.jsonl")
    queries = _jsonl(folder / "authoring" / "queries.jsonl")
    judged = _jsonl(folder / "authoring" / "pool_judged.jsonl") if (folder / "authoring" / "pool_judged.jsonl").is_file() else []
    qrels: dict[str, dict[str, int]] = {q["id"]: dict(q["relevant"]) for q in queries}
    for row in judged:
        if row["grade"] not in (0, 1, 2):
            raise ValueError(f"{name}: pooled pair {row['query_id']} {row['doc_id']} has no grade 0/1/2")
        if row["grade"] > 0:
            qrels[row["query_id"]].setdefault(row["doc_id"], row["grade"])
    doc_ids = {d["id"] for d in docs}
    for qid, rel in qrels.items():
        if unknown := set(rel) - doc_ids:
            raise ValueError(f"{name}: {qid} judges unknown documents {sorted(unknown)}")
        if 2 not in rel.values():
            raise ValueError(f"{name}: {qid} has no grade-2 document")
    _write_jsonl(folder / "corpus.jsonl", [{k: d[k] for k in ("id", "domain", "category", "title", "text", "source_type")} for d in docs])
    _write_jsonl(folder / "queries.jsonl", [{"id": q["id"], "domain": q["domain"], "text": q["text"], "style": q["style"],
                                             "no_overlap": bool(q.get("no_overlap"))} for q in queries])
    lines = [f"{qid}\t0\t{doc}\t{grade}" for qid, rel in qrels.items() for doc, grade in sorted(rel.items())]
    (folder / "qrels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rng = random.Random(SEED)
    dev: list[str] = []
    by_style: dict[str, list[str]] = {}
    for q in queries:
        by_style.setdefault(q["style"], []).append(q["id"])
    for ids in by_style.values():  # stratified by style
        rng.shuffle(ids)
        dev += ids[: round(len(ids) * DEV_SHARE)]
    test = [q["id"] for q in queries if q["id"] not in set(dev)]
    (folder / "splits.json").write_text(json.dumps({"dev": sorted(dev), "test": sorted(test)}, indent=1) + "\n", encoding="utf-8")
    styles = Counter(q["style"] for q in queries)
    print(f"{name}: {len(docs)} documents, {len(queries)} queries {dict(styles)}, {len(lines)} judgments "
          f"({len(judged)} pooled pairs judged), dev {len(dev)} / test {len(test)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["pool", "assemble"])
    parser.add_argument("collection", help="ood-legal or ood-medical")
    parser.add_argument("--model", default="ksearch/ksearch-ko-sparse", help="the sparse model of the pool")
    args = parser.parse_args()
    if args.step == "pool":
        pool(args.collection, args.model)
    else:
        assemble(args.collection)


if __name__ == "__main__":
    main()
