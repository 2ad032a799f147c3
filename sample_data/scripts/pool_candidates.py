"""Pool judgment candidates: top results of two different lexical retrievers over the whole corpus.

Authors judged each query against the documents of their own part. To make judgments complete
against the *whole* corpus, this script retrieves the top POOL_DEPTH documents per query with
(1) BM25 over Kiwi content morphemes and (2) BM25 over character bigrams, and writes every
pooled (query, document) pair that is not judged yet to `authoring/pool_<PART>.jsonl` for a
second judging pass. Self-contained on purpose: it builds the data the product is measured on.

    python sample_data/scripts/pool_candidates.py [--depth 20]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import bm25s
from kiwipiepy import Kiwi

AUTHORING = Path(__file__).resolve().parent.parent / "authoring"
CONTENT_TAGS = ("NNG", "NNP", "NNB", "VV", "VA", "XR", "SL", "SN", "SH", "MAG")


def clip(text: str, limit: int = 250) -> str:
    """Long documents are shown to judges by their opening; the title says what the rest covers."""
    return text if len(text) <= limit else text[:limit] + " …(이하 생략)"


def load_parts() -> tuple[list[dict], list[dict]]:
    docs, queries = [], []
    for path in sorted(AUTHORING.glob("*.docs.jsonl")):
        docs += [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    for path in sorted(AUTHORING.glob("*.queries.jsonl")):
        queries += [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    return docs, queries


def morphemes(kiwi: Kiwi, texts: list[str]) -> list[list[str]]:
    return [[f"{t.form}/{t.tag[:2]}" for t in tokens if t.tag.startswith(CONTENT_TAGS)] for tokens in kiwi.tokenize(texts)]


def char_bigrams(texts: list[str]) -> list[list[str]]:
    out = []
    for text in texts:
        grams = []
        for word in text.split():
            grams += [word[i : i + 2] for i in range(max(1, len(word) - 1))]
        out.append(grams)
    return out


def top_k(tokenized_docs: list[list[str]], tokenized_queries: list[list[str]], k: int) -> list[list[int]]:
    retriever = bm25s.BM25()
    retriever.index(tokenized_docs, show_progress=False)
    results, _ = retriever.retrieve(tokenized_queries, k=k, show_progress=False)
    return results.tolist()


def write_sheets(rows: list[dict], n: int, out_dir: Path) -> None:
    """Readable judging sheets: each query, what its author already judged, and its pooled candidates."""
    out_dir.mkdir(parents=True, exist_ok=True)
    per_sheet = -(-len(rows) // n)
    for k in range(n):
        with (out_dir / f"sheet_{k + 1}.md").open("w", encoding="utf-8") as f:
            for row in rows[k * per_sheet : (k + 1) * per_sheet]:
                f.write(f"## {row['qid']} [{row['domain']}] {row['query']}\n")
                f.write("already judged relevant: " + ", ".join(f"{d}({g})" for d, g in row["already_relevant"].items()) + "\n")
                for c in row["candidates"]:
                    f.write(f"- {c['id']} | {c['title']} | {c['text']}\n")
                f.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--sheets", type=int, default=5, help="split the pool into this many judging sheets")
    parser.add_argument("--sheet-dir", type=Path, default=AUTHORING / "sheets")
    args = parser.parse_args()
    docs, queries = load_parts()
    kiwi = Kiwi()
    doc_texts = [f"{d['title']} {d['text']}" for d in docs]
    query_texts = [q["text"] for q in queries]
    pooled = [set() for _ in queries]
    for tok_docs, tok_queries in (
        (morphemes(kiwi, doc_texts), morphemes(kiwi, query_texts)),
        (char_bigrams(doc_texts), char_bigrams(query_texts)),
    ):
        for i, ranked in enumerate(top_k(tok_docs, tok_queries, args.depth)):
            pooled[i].update(ranked)
    by_part: dict[str, list[dict]] = {}
    total = 0
    for query, candidates in zip(queries, pooled):
        judged = set(query["relevant"])
        new = [docs[i] for i in sorted(candidates) if docs[i]["id"] not in judged]
        total += len(new)
        part = query["id"].split("-")[0]
        by_part.setdefault(part, []).append({
            "qid": query["id"], "query": query["text"], "domain": query["domain"],
            "already_relevant": query["relevant"],
            "candidates": [{"id": d["id"], "title": d["title"], "text": clip(d["text"])} for d in new],
        })
    rows = [row for part in sorted(by_part) for row in by_part[part]]
    with (AUTHORING / "pool.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    write_sheets(rows, args.sheets, args.sheet_dir)
    print(f"{len(queries)} queries, {len(docs)} docs, {total} unjudged pooled pairs (depth {args.depth})")


if __name__ == "__main__":
    main()
