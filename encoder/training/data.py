"""Training examples: (query, positive, hard negative) triples from pair files and the sample train split."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PASSAGE_CHARS = 220  # a training passage: the title and the opening of the text (fits 64 tokens once segmented)


@dataclass
class Triple:
    query: str
    positive: str
    negative: str | None
    source: str


@dataclass
class SampleCollection:
    docs: dict[str, dict]
    queries: dict[str, dict]
    qrels: dict[str, dict[str, int]]
    splits: dict[str, list[str]]

    @classmethod
    def load(cls, folder: Path) -> "SampleCollection":
        docs = {d["id"]: d for d in _jsonl(folder / "corpus.jsonl")}
        queries = {q["id"]: q for q in _jsonl(folder / "queries.jsonl")}
        qrels: dict[str, dict[str, int]] = defaultdict(dict)
        for line in (folder / "qrels.tsv").open(encoding="utf-8"):
            qid, _, docid, rel = line.split()
            qrels[qid][docid] = int(rel)
        splits = json.loads((folder / "splits.json").read_text(encoding="utf-8"))
        return cls(docs, queries, dict(qrels), splits)


def passage_text(doc: dict) -> str:
    """What a training example shows of a document."""
    text = doc["text"].replace("\n", " ")
    return f"{doc['title']}. {text[:PASSAGE_CHARS]}"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def pair_file_triples(paths: list[Path]) -> list[Triple]:
    """Pairs written for training (training_data/*.jsonl)."""
    out = []
    for path in paths:
        for n, row in enumerate(_jsonl(path), 1):
            if not row.get("query") or not row.get("positive"):
                raise ValueError(f"{path}:{n}: a training pair needs 'query' and 'positive'")
            out.append(Triple(row["query"], row["positive"], row.get("hard_negative"), path.stem))
    return out


def sample_triples(collection: SampleCollection, splits: list[str], mined: dict[str, list[str]], rng: random.Random) -> list[Triple]:
    """Each judged (query, grade-2 document) of the given splits, with a mined non-relevant negative."""
    out = []
    for split in splits:
        if split == "test":
            raise ValueError("the test split is never used for training")
        for qid in collection.splits[split]:
            relevant = collection.qrels.get(qid, {})
            negatives = [d for d in mined.get(qid, []) if d not in relevant]
            for docid, grade in relevant.items():
                if grade == 2:
                    negative = passage_text(collection.docs[rng.choice(negatives)]) if negatives else None
                    out.append(Triple(collection.queries[qid]["text"], passage_text(collection.docs[docid]), negative, f"sample-{split}"))
    return out


def doc_query_triples(collection: SampleCollection, paths: list[Path]) -> list[Triple]:
    """Synthetic queries written for corpus documents (doc2query-style, without seeing any sample query)."""
    out = []
    for path in paths:
        for n, row in enumerate(_jsonl(path), 1):
            doc = collection.docs.get(row.get("doc_id"))
            if doc is None or not row.get("query"):
                raise ValueError(f"{path}:{n}: needs a 'query' and a 'doc_id' of the corpus")
            out.append(Triple(row["query"], passage_text(doc), None, path.stem))
    return out


def title_triples(collection: SampleCollection) -> list[Triple]:
    """(title -> text) of every corpus document: teaches document vocabulary, uses no query."""
    return [Triple(d["title"], d["text"].replace("\n", " ")[:PASSAGE_CHARS], None, "titles") for d in collection.docs.values()]


def mine_negatives(collection: SampleCollection, qids: list[str], segment, depth: int = 20) -> dict[str, list[str]]:
    """Top BM25 documents (same domain) per query: hard negatives once the judged ones are removed."""
    import bm25s

    doc_ids = list(collection.docs)
    doc_tokens = [t.split() for t in segment([passage_text(collection.docs[d]) for d in doc_ids])]
    retriever = bm25s.BM25()
    retriever.index(doc_tokens, show_progress=False)
    query_tokens = [t.split() or ["_"] for t in segment([collection.queries[q]["text"] for q in qids])]
    results, _ = retriever.retrieve(query_tokens, k=depth, show_progress=False)
    out = {}
    for qid, ranked in zip(qids, results.tolist()):
        domain = collection.queries[qid]["domain"]
        out[qid] = [doc_ids[i] for i in ranked if collection.docs[doc_ids[i]]["domain"] == domain]
    return out


def long_document_triples(paths: list[Path], rng: random.Random) -> list[Triple]:
    """Section-level questions on long documents: the answering section vs another section of the same document."""
    out = []
    for path in paths:
        for n, row in enumerate(_jsonl(path), 1):
            sections, title = row.get("sections") or [], row.get("title", "")
            for q in row.get("queries") or []:
                i = q.get("section")
                if not q.get("query") or not isinstance(i, int) or not 0 <= i < len(sections):
                    raise ValueError(f"{path}:{n}: every query needs 'query' and a 'section' index into 'sections'")
                others = [s for j, s in enumerate(sections) if j != i]
                negative = f"{title}. {rng.choice(others)}" if others else None
                out.append(Triple(q["query"], f"{title}. {sections[i]}", negative, path.stem))
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def passage_windows(text: str, limit: int = PASSAGE_CHARS) -> list[str]:
    """A long text cut at sentence ends into consecutive windows of at most `limit` characters (or one sentence)."""
    windows: list[str] = []
    for sentence in (s.strip() for s in _SENTENCE_END.split(text)):
        if not sentence:
            continue
        if windows and len(windows[-1]) + 1 + len(sentence) <= limit:
            windows[-1] += " " + sentence
        else:
            windows.append(sentence)
    return windows


def answer_passage_triples(collection: SampleCollection, spans_file: Path, splits: list[str], rng: random.Random) -> list[Triple]:
    """(query, the window of a long document holding the judged answer, another window of it) for the given splits."""
    wanted = {q for split in splits if split != "test" for q in collection.splits[split]}
    out = []
    for row in _jsonl(spans_file):
        if row["query_id"] not in wanted:
            continue
        doc = collection.docs[row["doc_id"]]
        windows = passage_windows(doc["text"])
        holding = [w for w in windows if row["answer"][:40] in w]
        others = [w for w in windows if w not in holding]
        if holding and others:
            title = doc["title"]
            out.append(Triple(collection.queries[row["query_id"]]["text"], f"{title}. {holding[0]}",
                              f"{title}. {rng.choice(others)}", "answer-passages"))
    return out
