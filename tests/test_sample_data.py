"""The sample collection is complete, consistent and as large as its data card says."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

DATA = Path(__file__).resolve().parent.parent / "sample_data"
DOC_KEYS = {"id", "domain", "category", "title", "text", "source_type"}
QUERY_KEYS = {"id", "domain", "text", "style"}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return read_jsonl(DATA / "corpus.jsonl")


@pytest.fixture(scope="module")
def queries() -> list[dict]:
    return read_jsonl(DATA / "queries.jsonl")


@pytest.fixture(scope="module")
def qrels() -> list[tuple[str, str, str, int]]:
    rows = []
    for n, line in enumerate((DATA / "qrels.tsv").open(encoding="utf-8"), 1):
        parts = line.split()
        assert len(parts) == 4, f"qrels.tsv:{n}: expected 'QID 0 DOCID REL'"
        rows.append((parts[0], parts[1], parts[2], int(parts[3])))
    return rows


def test_corpus_schema_and_unique_ids(corpus):
    for doc in corpus:
        assert set(doc) == DOC_KEYS, doc["id"]
        assert doc["domain"] in ("legal", "medical")
        assert all(isinstance(doc[k], str) and doc[k].strip() for k in DOC_KEYS), doc["id"]
    ids = [d["id"] for d in corpus]
    assert len(ids) == len(set(ids))


def test_corpus_size_and_mix(corpus):
    domains = Counter(d["domain"] for d in corpus)
    assert domains["legal"] >= 500 and domains["medical"] >= 500
    long_docs = [d for d in corpus if 400 <= len(d["text"]) <= 2000]
    assert len(long_docs) >= 150
    short = [d for d in corpus if len(d["text"]) < 400]
    assert len(short) > len(corpus) / 2, "mostly short passages"
    assert len({d["category"] for d in corpus}) >= 15


def test_corpus_has_confusable_neighbours_and_real_world_tokens(corpus):
    text = " ".join(d["title"] + " " + d["text"] for d in corpus)
    for term in ["전세", "월세", "해고", "권고사직", "1형 당뇨", "2형 당뇨", "편두통", "긴장형 두통", "MRI", "HbA1c", "2년", "%"]:
        assert term in text, term


def test_queries_schema_counts_and_styles(queries):
    for q in queries:
        assert set(q) == QUERY_KEYS, q
        assert q["style"] in ("colloquial", "keyword", "question")
        assert q["domain"] in ("legal", "medical") and q["text"].strip()
    assert len({q["id"] for q in queries}) == len(queries) >= 400
    styles = Counter(q["style"] for q in queries)
    assert styles["colloquial"] >= 0.4 * len(queries)
    assert styles["keyword"] > 0 and styles["question"] > 0


def test_qrels_refer_to_existing_ids_and_every_query_has_an_answer(qrels, corpus, queries):
    doc_ids = {d["id"] for d in corpus}
    query_ids = {q["id"] for q in queries}
    for qid, zero, docid, rel in qrels:
        assert qid in query_ids and docid in doc_ids and zero == "0" and rel in (1, 2), (qid, docid)
    assert len({(q, d) for q, _, d, _ in qrels}) == len(qrels), "a pair is judged once"
    answered = {q for q, _, _, rel in qrels if rel == 2}
    assert answered == query_ids


def test_splits_are_disjoint_complete_and_sized(queries):
    splits = json.loads((DATA / "splits.json").read_text(encoding="utf-8"))
    assert set(splits) == {"train", "dev", "test"}
    sets = {k: set(v) for k, v in splits.items()}
    assert not (sets["train"] & sets["dev"] or sets["train"] & sets["test"] or sets["dev"] & sets["test"])
    assert set().union(*sets.values()) == {q["id"] for q in queries}
    n = len(queries)
    for name, share in (("train", 0.60), ("dev", 0.15), ("test", 0.25)):
        assert abs(len(sets[name]) / n - share) < 0.03, name


def test_format_examples_are_real_documents(corpus):
    by_id = {d["id"]: d for d in corpus}
    for frame in (pd.read_csv(DATA / "sample.csv"), pd.read_parquet(DATA / "sample.parquet")):
        assert len(frame) >= 30 and {"id", "title", "text", "domain"} <= set(frame.columns)
        for row in frame.itertuples():
            assert by_id[row.id]["text"] == row.text
    txt_files = sorted((DATA / "txt").glob("*.txt"))
    assert len(txt_files) >= 30
    for path in txt_files:
        title, body = path.read_text(encoding="utf-8").split("\n", 1)
        assert by_id[path.stem]["title"] == title and by_id[path.stem]["text"] == body.strip()


def test_data_card_counts_match_the_files(corpus, queries):
    card = (DATA / "README.md").read_text(encoding="utf-8")
    assert f"{len(corpus):,}" in card or str(len(corpus)) in card
    assert str(len(queries)) in card
    assert "not legal or medical advice" in card
    assert "test" in card and "never used for training" in card
