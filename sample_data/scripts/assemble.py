"""Build the published sample data from the authored parts and the pooled judgments.

Inputs (sample_data/authoring/): `<PART>.docs.jsonl`, `<PART>.queries.jsonl` (with each
author's judgments against their own part) and `judged_<PART>.tsv` (`QID DOCID GRADE`, the
second pass over the documents that two lexical retrievers pooled from the whole corpus) and
`adjudicated.tsv` (author grades that the second-pass judges disputed, with the grade that wins).
Outputs (sample_data/): corpus.jsonl, queries.jsonl, qrels.tsv, splits.json, and small
examples of every ingest format: sample.csv, sample.parquet, txt/*.txt.

    python sample_data/scripts/assemble.py
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
AUTHORING = ROOT / "authoring"
SEED = 20261125
SPLIT_SHARES = (("train", 0.60), ("dev", 0.15), ("test", 0.25))
DOC_KEYS = ("id", "domain", "category", "title", "text", "source_type")


def read_jsonl(paths) -> list[dict]:
    return [json.loads(line) for path in paths for line in path.open(encoding="utf-8") if line.strip()]


def judgments(queries: list[dict]) -> dict[str, dict[str, int]]:
    """Authors' grades, then the pooled second pass (which adds documents, never removes)."""
    qrels = {q["id"]: {d: int(g) for d, g in q["relevant"].items()} for q in queries}
    for path in sorted(AUTHORING.glob("judged_*.tsv")):
        for n, line in enumerate(path.open(encoding="utf-8"), 1):
            if not line.strip() or line.startswith("#"):
                continue
            qid, docid, grade = line.split()
            if qid not in qrels:
                raise ValueError(f"{path.name}:{n}: unknown query {qid}")
            if int(grade) > 0:
                qrels[qid].setdefault(docid, int(grade))
    adjudicated = AUTHORING / "adjudicated.tsv"
    for line in adjudicated.open(encoding="utf-8") if adjudicated.exists() else ():
        if line.strip() and not line.startswith("#"):
            qid, docid, grade = line.split("\t")[:3]
            if int(grade) == 0:
                qrels[qid].pop(docid, None)
            else:
                qrels[qid][docid] = int(grade)
    return qrels


def split_queries(queries: list[dict]) -> dict[str, list[str]]:
    """Seeded 60/15/25 split, stratified by domain and style."""
    rng = random.Random(SEED)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for q in queries:
        groups[(q["domain"], q["style"])].append(q["id"])
    splits: dict[str, list[str]] = {name: [] for name, _ in SPLIT_SHARES}
    for key in sorted(groups):
        ids = sorted(groups[key])
        rng.shuffle(ids)
        n_train = round(len(ids) * SPLIT_SHARES[0][1])
        n_dev = round(len(ids) * SPLIT_SHARES[1][1])
        splits["train"] += ids[:n_train]
        splits["dev"] += ids[n_train : n_train + n_dev]
        splits["test"] += ids[n_train + n_dev :]
    return {name: sorted(ids) for name, ids in splits.items()}


def write_format_examples(docs: list[dict]) -> None:
    """30 documents each as CSV, Parquet and a folder of .txt files (title on the first line)."""
    rng = random.Random(SEED)
    by_domain = {d: [x for x in docs if x["domain"] == d] for d in ("legal", "medical")}
    picked = [doc for d in ("legal", "medical") for doc in rng.sample(by_domain[d], 15)]
    frame = pd.DataFrame([{k: doc[k] for k in ("id", "title", "text", "domain", "category")} for doc in picked])
    frame.to_csv(ROOT / "sample.csv", index=False, quoting=csv.QUOTE_MINIMAL)
    frame.to_parquet(ROOT / "sample.parquet", index=False)
    txt_dir = ROOT / "txt"
    txt_dir.mkdir(exist_ok=True)
    for old in txt_dir.glob("*.txt"):
        old.unlink()
    rest = [doc for d in ("legal", "medical") for doc in rng.sample([x for x in by_domain[d] if x not in picked], 15)]
    for doc in rest:
        (txt_dir / f"{doc['id']}.txt").write_text(f"{doc['title']}\n{doc['text']}\n", encoding="utf-8")


def main() -> None:
    docs = sorted(read_jsonl(sorted(AUTHORING.glob("*.docs.jsonl"))), key=lambda d: d["id"])
    queries = sorted(read_jsonl(sorted(AUTHORING.glob("*.queries.jsonl"))), key=lambda q: q["id"])
    qrels = judgments(queries)
    with (ROOT / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps({k: doc[k] for k in DOC_KEYS}, ensure_ascii=False) + "\n")
    with (ROOT / "queries.jsonl").open("w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps({k: q[k] for k in ("id", "domain", "text", "style")}, ensure_ascii=False) + "\n")
    with (ROOT / "qrels.tsv").open("w", encoding="utf-8") as f:
        for qid in sorted(qrels):
            for docid, grade in sorted(qrels[qid].items()):
                f.write(f"{qid}\t0\t{docid}\t{grade}\n")
    (ROOT / "splits.json").write_text(json.dumps(split_queries(queries), indent=1) + "\n", encoding="utf-8")
    write_format_examples(docs)
    pairs = sum(len(v) for v in qrels.values())
    print(f"{len(docs)} documents, {len(queries)} queries, {pairs} judged relevant pairs")


if __name__ == "__main__":
    main()
