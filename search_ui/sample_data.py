"""The project's sample queries and judgments: which queries the app suggests, and the labels of a judged query."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from retrieval.evaluation import JudgedQuery, read_qrels, read_queries, read_split

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
QUERIES_PATH = SAMPLE_DIR / "queries.jsonl"
QRELS_PATH = SAMPLE_DIR / "qrels.tsv"
SPLITS_PATH = SAMPLE_DIR / "splits.json"
SUGGESTED_SPLITS = ("dev", "train")  # never the test split
# Everyday queries written apart from the sample collection (the expansion probe set): how the model does off its home
PROBE_PATH = SAMPLE_DIR.parent / "eval_data" / "expansion_probe.jsonl"
OUT_OF_DOMAIN_SUGGESTED = ("P002", "P066", "P003", "P067")


@dataclass(frozen=True)
class JudgedSample:
    """A sample query the user typed, with its relevance judgments (doc id -> label)."""

    query: JudgedQuery
    labels: dict[str, int]


def suggested_queries(n: int = 6, queries_path: Path = QUERIES_PATH, splits_path: Path = SPLITS_PATH,
                      probe_path: Path = PROBE_PATH) -> list[str]:
    """Up to `n` query texts: a third everyday out-of-domain queries (the probe set), the rest from the sample dev
    then train splits, alternating query styles (never test queries)."""
    everyday = _probe_texts(probe_path, OUT_OF_DOMAIN_SUGGESTED[: n // 3])
    return _sample_queries(n - len(everyday), queries_path, splits_path) + everyday


def _probe_texts(path: Path, ids: tuple[str, ...]) -> list[str]:
    if not path.is_file() or not ids:
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = {row["id"]: row["text"] for row in rows}
    return [texts[i] for i in ids if i in texts]


def _sample_queries(n: int, queries_path: Path, splits_path: Path) -> list[str]:
    if not (queries_path.is_file() and splits_path.is_file()):
        return []
    allowed: list[str] = []
    for split in SUGGESTED_SPLITS:
        allowed += sorted(read_split(splits_path, split))
    by_id = {q.id: q for q in read_queries(queries_path)}
    by_style: dict[str, list[JudgedQuery]] = {}
    for qid in allowed:
        if qid in by_id:
            by_style.setdefault(by_id[qid].style or "", []).append(by_id[qid])
    picked: list[str] = []
    # round-robin over styles, and within a style alternate the id prefix (L = legal, M = medical)
    queues = [sorted(qs, key=lambda q: (q.id[1:], q.id)) for _, qs in sorted(by_style.items())]
    while len(picked) < n and any(queues):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop(0).text)
    return picked


def judged_sample(text: str, queries_path: Path = QUERIES_PATH, qrels_path: Path = QRELS_PATH) -> JudgedSample | None:
    """The judged sample query whose text is `text` (any split), with its labels; None when it is not one."""
    if not (queries_path.is_file() and qrels_path.is_file()):
        return None
    wanted = text.strip()
    qrels = read_qrels(qrels_path)
    for query in read_queries(queries_path):
        if query.text.strip() == wanted and query.id in qrels:
            return JudgedSample(query, qrels[query.id])
    return None


def split_names(splits_path: Path = SPLITS_PATH) -> list[str]:
    """The splits of the sample queries, dev first."""
    names = list(json.loads(splits_path.read_text(encoding="utf-8"))) if splits_path.is_file() else []
    return sorted(names, key=lambda s: (s != "dev", s))
