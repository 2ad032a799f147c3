"""Offline evaluation of sparse, BM25 and hybrid on judged queries, with `ranx` metrics.

Rankings are of documents (a document scores by its best passage), 100 deep per query.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from retrieval.searcher import Searcher, SearchMode

log = logging.getLogger(__name__)

T = TypeVar("T")
METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100")
RUN_DEPTH = 100


@dataclass(frozen=True)
class JudgedQuery:
    """A query with an id, its text and optional style (e.g. keyword, natural, colloquial)."""

    id: str
    text: str
    style: str | None = None


@dataclass(frozen=True)
class AnswerSpan:
    """Where a judged document answers a query: an exact substring of the document's text."""

    query_id: str
    doc_id: str
    answer: str


@dataclass(frozen=True)
class Collection:
    """A judged test collection folder: corpus.jsonl, queries.jsonl, qrels.tsv, splits.json (+ answer_spans.jsonl)."""

    folder: Path

    @property
    def corpus(self) -> Path:
        return self.folder / "corpus.jsonl"

    @property
    def queries(self) -> Path:
        return self.folder / "queries.jsonl"

    @property
    def qrels(self) -> Path:
        return self.folder / "qrels.tsv"

    @property
    def splits(self) -> Path:
        return self.folder / "splits.json"

    @property
    def answer_spans(self) -> Path:
        return self.folder / "answer_spans.jsonl"

    def check(self) -> None:
        """Raise ValueError naming the first required file the folder lacks."""
        for path in (self.corpus, self.queries, self.qrels):
            if not path.is_file():
                raise ValueError(f"{self.folder} is not a test collection: {path.name} is missing")


@dataclass
class EvaluationResult:
    """Metrics per mode (and per style), plus what the runs looked like."""

    metrics: dict[str, dict[str, float]]
    by_style: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # mode -> style -> metrics
    runs: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # mode -> qid -> doc -> score
    meta: dict[str, Any] = field(default_factory=dict)
    answer_passage: dict[str, dict[str, float]] = field(default_factory=dict)  # mode -> pairs, retrieved, holds, rate

    def to_json(self) -> dict[str, Any]:
        """`{"sparse": {...}, "bm25": {...}, "hybrid": {...}, "_meta": {...}}` (per-style under `by_style`)."""
        out: dict[str, Any] = {}
        for mode, values in self.metrics.items():
            out[mode] = {k: round(v, 6) for k, v in values.items()}
            if mode in self.by_style:
                out[mode]["by_style"] = {s: {k: round(v, 6) for k, v in m.items()} for s, m in self.by_style[mode].items()}
            if mode in self.answer_passage:
                out[mode]["answer_passage"] = {k: round(v, 6) for k, v in self.answer_passage[mode].items()}
        out["_meta"] = self.meta
        return out


def read_jsonl(path: Path, build: Callable[[dict], T], fields: Sequence[str]) -> list[T]:
    """`build(row)` for every JSON line of `path`; a bad line is a ValueError naming it and the fields it needs."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(build(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                needed = ", ".join(f"'{f}'" for f in fields)
                raise ValueError(f"{path}:{number}: expected a JSON object with {needed} ({exc})") from None
    return out


def read_queries(path: Path) -> list[JudgedQuery]:
    """Queries from JSONL lines with `id` and `text` (and optionally `style`)."""
    return read_jsonl(path, lambda row: JudgedQuery(str(row["id"]), str(row["text"]), row.get("style")), ("id", "text"))


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """TREC qrels `QID 0 DOCID REL` -> {qid: {doc_id: rel}}."""
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise ValueError(f"{path}:{number}: expected 'QID 0 DOCID REL', got {line.strip()!r}")
            qrels[parts[0]][parts[2]] = int(parts[3])
    return dict(qrels)


def read_answer_spans(path: Path) -> list[AnswerSpan]:
    """Answer spans from JSONL lines with `query_id`, `doc_id` and `answer`."""
    return read_jsonl(path, lambda row: AnswerSpan(str(row["query_id"]), str(row["doc_id"]), str(row["answer"])),
                      ("query_id", "doc_id", "answer"))


def holds_answer(passage: str, answer: str) -> bool:
    """Whether a passage shows the answer: at least half of the answer span's characters, contiguous.

    Passages are cut at sentence ends with a small overlap, so a span of several sentences can
    straddle two passages; the passage holding most of it is the one that answers.
    """
    from difflib import SequenceMatcher

    norm = lambda t: " ".join(unicodedata.normalize("NFC", t).split())  # noqa: E731
    passage, answer = norm(passage), norm(answer)
    if not answer:
        return False
    if answer in passage:
        return True
    match = SequenceMatcher(None, passage, answer, autojunk=False).find_longest_match(0, len(passage), 0, len(answer))
    return match.size >= 0.5 * len(answer)


def read_split(path: Path, split: str) -> set[str]:
    """The query ids of one split of a `{"train": [...], "dev": [...], "test": [...]}` file."""
    splits = json.loads(Path(path).read_text(encoding="utf-8"))
    if split not in splits:
        raise ValueError(f"{path}: no split {split!r} (has {', '.join(splits)})")
    return {str(q) for q in splits[split]}


def score_runs(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> dict[str, float]:
    """ranx metrics of one run over the queries in `qrels` (a query with no results scores 0)."""
    from ranx import Qrels, Run, evaluate

    judged = {q: docs for q, docs in qrels.items() if any(r > 0 for r in docs.values())}
    if not judged:
        raise ValueError("no query has a relevant document in the qrels")
    # ranx needs every judged query in the run: an empty ranking gets a sentinel that is never relevant
    filled = {q: (run.get(q) or {"__no_result__": 0.0}) for q in judged}
    values = evaluate(Qrels(judged), Run(filled), list(METRICS), make_comparable=True)
    return {m: float(values[m]) for m in METRICS}


def evaluate_modes(searcher: Searcher, queries: Sequence[JudgedQuery], qrels: dict[str, dict[str, int]], *,
                   modes: Sequence[str] = ("sparse", "bm25", "hybrid"), by_style: bool = False,
                   answer_spans: Sequence[AnswerSpan] = ()) -> EvaluationResult:
    """Rank every query with every mode (documents, 100 deep) and score the runs with ranx.

    With `answer_spans`, also count how often the passage shown for a judged document (its best
    passage in that mode's ranking) holds the answer span, over the pairs whose document is retrieved.
    """
    queries = [q for q in queries if q.id in qrels]
    if not queries:
        raise ValueError("none of the queries has relevance judgments")
    runs: dict[str, dict[str, dict[str, float]]] = {m: {} for m in modes}
    shown: dict[str, dict[str, dict[str, str]]] = {m: {} for m in modes}  # mode -> qid -> doc -> best passage text
    query_nnz = []
    for q in queries:
        tokens = searcher.query_tokens(q.text)
        query_nnz.append(len(tokens))
        for mode in modes:
            hits = searcher.rank(q.text, SearchMode(mode), RUN_DEPTH, query_tokens=tokens)
            runs[mode][q.id] = {h.doc_id: h.score for h in hits}
            shown[mode][q.id] = {h.doc_id: h.text for h in hits}
    qrels_used = {q.id: qrels[q.id] for q in queries}
    metrics = {mode: score_runs(qrels_used, runs[mode]) for mode in modes}
    styles: dict[str, dict[str, dict[str, float]]] = {}
    if by_style:
        groups: dict[str, list[str]] = defaultdict(list)
        for q in queries:
            groups[q.style or "unknown"].append(q.id)
        for mode in modes:
            styles[mode] = {}
            for style, ids in sorted(groups.items()):
                sub = {i: qrels_used[i] for i in ids if any(r > 0 for r in qrels_used[i].values())}
                if sub:
                    styles[mode][style] = score_runs(sub, runs[mode]) | {"queries": float(len(sub))}
    answer_passage = {mode: _answer_passage_rate(shown[mode], answer_spans, qrels_used) for mode in modes} if answer_spans else {}
    stats = searcher.backend.stats()
    meta = {"queries": len(queries), "avg_query_nonzero_weights": sum(query_nnz) / len(query_nnz),
            "avg_passage_nonzero_weights": stats.avg_nonzero_weights, "passages": stats.passages,
            "documents": stats.documents, "model": searcher.encoder.model_id, "run_depth": RUN_DEPTH}
    return EvaluationResult(metrics=metrics, by_style=styles, runs=runs, meta=meta, answer_passage=answer_passage)


def _answer_passage_rate(shown: dict[str, dict[str, str]], spans: Sequence[AnswerSpan],
                         qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    pairs = [s for s in spans if s.query_id in qrels]
    retrieved = [s for s in pairs if s.doc_id in shown.get(s.query_id, {})]
    holds = sum(holds_answer(shown[s.query_id][s.doc_id], s.answer) for s in retrieved)
    return {"pairs": float(len(pairs)), "retrieved": float(len(retrieved)), "holds": float(holds),
            "rate": holds / len(retrieved) if retrieved else 0.0}


def write_trec_runs(runs: dict[str, dict[str, dict[str, float]]], directory: Path) -> list[Path]:
    """Write `DIRECTORY/<mode>.run` in TREC format (`QID Q0 DOCID RANK SCORE TAG`), best first."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for mode, run in runs.items():
        path = directory / f"{mode}.run"
        lines = []
        for qid in sorted(run):
            ranked = sorted(run[qid].items(), key=lambda kv: (-kv[1], kv[0]))[:RUN_DEPTH]
            lines += [f"{qid} Q0 {doc} {rank} {score:.6f} ksearch-{mode}" for rank, (doc, score) in enumerate(ranked, start=1)]
        path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
        written.append(path)
    return written
