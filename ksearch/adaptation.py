"""`ksearch adapt`: fit a sparse model to a user's own corpus with no labels, phase by phase.

read (the ingest readers and passage splitter, so the model trains on the passages an index will hold) ->
pseudo-queries (`encoder.training.pseudo_queries`) -> hard negatives from BM25 and from the starting model
(`encoder.training.negative_mining`) -> the teacher's scores of them, for the default distillation objective
(`encoder.training.teacher_scores`) -> Kiwi neighbours for the expansion anchor (when the parent was trained with
one) -> the model's pre-segmentation -> fine-tuning within the time budget (`encoder.training.adapt`) -> the model
folder, its ONNX export and an atomic rename into `$KSEARCH_HOME/models/NAME` (`encoder.training.model_install`).

Everything before training is saved in the work folder with a key (corpus fingerprint, parent weights, recipe);
a re-run with the same key reuses it and resumes training from the last checkpoint, any other key starts cleanly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from encoder.model_resolution import is_model_name, resolve_model
from encoder.onnx_runtime import weights_fingerprint
from encoder.training.adapt import AdaptRecipe, FitResult, fit_within_budget, recipe_for, write_model_folder
from encoder.training.data import Triple
from encoder.training.model_install import check_writable, install, work_dir, work_lock
from encoder.training.pseudo_queries import CorpusPassage, analyse_passages, pseudo_queries, query_terms
from encoder.training.teacher_scores import ScoredRow
from ingest.chunking import PassageSplitter
from ingest.problems import RowProblem
from ingest.readers import ColumnMapping
from ingest.worker import SPLIT_BATCH, IngestReport, collect_documents

PREPARED_FILE = "prepared.json"
TRIPLES_FILE = "triples.jsonl"
NEIGHBOURS_FILE = "neighbours.json"  # the name encoder.training.recipe.expansion_teacher reads
NEIGHBOURS_CACHE = ".adapt-cache"  # under the models folder: Kiwi neighbour graphs by vocabulary, shared by every run
MIN_PAIRS = 2  # in-batch negatives need at least two pairs
RUN_MINUTES = 30.0  # without --minutes, training gets what keeps the whole run (preparation included) within this ...
MIN_TRAIN_MINUTES = 5.0  # ... but never less than this
SAVE_RESERVE_MINUTES = 1.0  # what writing the model folder and its ONNX export take, kept out of the training budget


class AdaptError(RuntimeError):
    """Adaptation cannot run (the message names the file or the model and says why)."""


@dataclass
class AdaptReport:
    """What `adapt_corpus` did."""

    name: str
    target: Path
    parent_id: str
    documents: int = 0
    passages: int = 0
    passages_used: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    pairs: dict[str, int] = field(default_factory=dict)
    negatives: dict[str, int] = field(default_factory=dict)
    reused_prepared: bool = False
    fit: FitResult | None = None
    onnx_error: str | None = None
    minutes: float | None = None  # the training budget (given, or the default's share of the run)
    phases: dict[str, float] = field(default_factory=dict)


def default_training_minutes(elapsed_seconds: float) -> float:
    """The training budget when none is given: the rest of a `RUN_MINUTES` run, at least `MIN_TRAIN_MINUTES`."""
    return max(MIN_TRAIN_MINUTES, RUN_MINUTES - SAVE_RESERVE_MINUTES - elapsed_seconds / 60)


def adapt_corpus(path: Path, name: str, encoder, *, models_dir: Path, minutes: float | None, force: bool = False,
                 fmt: str | None = None, columns: ColumnMapping = ColumnMapping(), progress: bool = True,
                 recipe_overrides: dict | None = None, on_phase: Callable[[str, float], None] | None = None) -> AdaptReport:
    """Adapt `encoder`'s model (the parent) to the corpus at `path`; write `models_dir/name` (see the module docstring).

    `minutes` bounds training; None: `default_training_minutes` of the time the preparation took.

    Raises `AdaptError` (bad name, no usable text), `ModelFolderError` (the name is taken) and `InputFileError`.
    """
    if not is_model_name(name):
        raise AdaptError(f"--out {name!r}: a model name is letters, digits, '.', '_' and '-' (it becomes the folder "
                         f"{models_dir}/NAME and what --model NAME finds)")
    target = models_dir / name
    check_writable(target, force)  # before any work
    parent_dir = Path(resolve_model(encoder.model_id, models_dir)[1])
    recipe = recipe_for(parent_dir, **(recipe_overrides or {}))
    report = AdaptReport(name, target, encoder.model_id)
    work = work_dir(models_dir, name)
    phase = _PhaseClock(report, on_phase)
    started = time.perf_counter()
    with work_lock(work):
        passages = _read_passages(path, fmt, columns, encoder, report, progress)
        phase("read")
        fingerprint = corpus_fingerprint(passages)
        rng = random.Random(recipe.seed)
        if len(passages) > recipe.max_passages:
            passages = [passages[i] for i in sorted(rng.sample(range(len(passages)), recipe.max_passages))]
        report.passages_used = len(passages)
        record = {"name": name,
                  "parent": {"model_id": encoder.model_id, "path": str(parent_dir),
                             "weights_sha256": weights_fingerprint(parent_dir), "vocab_hash": encoder.vocab_hash},
                  "corpus": {"path": str(Path(path).resolve()), "fingerprint": fingerprint, "documents": report.documents,
                             "passages": report.passages, "passages_used": report.passages_used,
                             "bad_rows": len(report.problems)},
                  "recipe": recipe.resume_key(), "max_length": encoder.max_length}
        key = hashlib.sha256(json.dumps([record["parent"]["weights_sha256"], fingerprint, record["recipe"],
                                         encoder.max_length], sort_keys=True).encode()).hexdigest()
        rows = _load_prepared(work, key, report)
        if rows is None:
            _clear(work)
            rows = _prepare(passages, encoder, recipe, parent_dir, models_dir, work, key, report, rng, phase, progress)
        teacher = _anchor_teacher(work, parent_dir) if recipe.contrastive.anchored else None
        if minutes is None:
            minutes = default_training_minutes(time.perf_counter() - started)
        report.minutes = minutes
        report.fit = fit_within_budget(parent_dir, rows, recipe, work, seconds=minutes * 60,
                                       max_length=encoder.max_length, anchor_teacher=teacher, progress=progress)
        phase("train")
        staging = work / "model"
        write_model_folder(report.fit, parent_dir, staging, {**record, "pairs": report.pairs,
                           "negatives": report.negatives, "minutes": minutes, "phases_seconds": report.phases},
                           max_length=encoder.max_length)
        report.onnx_error = _export_onnx(staging)
        install(staging, target, force=force)
        phase("save")
    shutil.rmtree(work, ignore_errors=True)  # done: nothing to resume
    with contextlib.suppress(OSError):
        work.parent.rmdir()  # the work folders' parent, when no other adaptation left state there
    return report


def corpus_fingerprint(passages: list[CorpusPassage]) -> str:
    """sha256 over the passages (document id, title, text), independent of their order in the file."""
    digests = sorted(hashlib.sha256(json.dumps([p.doc_id, p.title, p.text], ensure_ascii=False).encode()).hexdigest()
                     for p in passages)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


class _PhaseClock:
    """Records the seconds since the previous phase ended under a phase name, and tells `on_phase`."""

    def __init__(self, report: AdaptReport, on_phase) -> None:
        self.report, self.on_phase, self.last = report, on_phase, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.report.phases[name] = round(now - self.last, 2)
        self.last = now
        if self.on_phase is not None:
            self.on_phase(name, self.report.phases[name])


def _read_passages(path: Path, fmt: str | None, columns: ColumnMapping, encoder, report: AdaptReport,
                   progress: bool) -> list[CorpusPassage]:
    """The corpus's passages as `ksearch ingest` would index them with this encoder."""
    ingest_report = IngestReport()
    documents = collect_documents(Path(path), fmt, columns, ingest_report)
    report.problems, report.documents = ingest_report.problems, len(documents)
    splitter = PassageSplitter(encoder)
    passages: list[CorpusPassage] = []
    with tqdm(total=len(documents), desc="splitting", unit="doc", disable=not progress) as bar:
        for begin in range(0, len(documents), SPLIT_BATCH):
            chunk = documents[begin: begin + SPLIT_BATCH]
            for doc, pieces in zip(chunk, splitter.split_many([d.text for d in chunk])):
                passages += [CorpusPassage(doc.doc_id, doc.title, text, n == 0) for n, text in enumerate(pieces)]
            bar.update(len(chunk))
    report.passages = len(passages)
    if not passages:
        why = f"all {len(report.problems)} rows were skipped (first: {report.problems[0]})" if report.problems else \
            "it has no rows"
        raise AdaptError(f"{path}: no usable text to adapt to: {why}")
    return passages


def _prepare(passages: list[CorpusPassage], encoder, recipe: AdaptRecipe, parent_dir: Path, models_dir: Path,
             work: Path, key: str, report: AdaptReport, rng: random.Random, phase,
             progress: bool) -> list[Triple] | list[ScoredRow]:
    """Pseudo-queries, mined negatives (and teacher scores), Kiwi neighbours and segmentation, saved in `work` under
    `key`: triples for the contrastive objective, scored rows for distillation."""
    from encoder.training.negative_mining import bm25_rankings, encode_matrices, pick_negatives, rank_by_dot
    from encoder.training.teacher_scores import round_trip, scored_rows

    texts = [p.text for p in passages]
    terms = analyse_passages(texts, progress=progress)
    queries = pseudo_queries(passages, terms, rng, recipe.max_pairs)
    if len(queries) < MIN_PAIRS:
        raise AdaptError(f"no usable text to adapt to: {len(passages)} passages gave {len(queries)} training "
                         f"queries (Kiwi finds no titles, nouns or sentences to make them from)")
    phase("pseudo-queries")
    bm25_query_terms = query_terms([q.query for q in queries])
    rankings = {"bm25": bm25_rankings([t.content for t in terms], bm25_query_terms, recipe.negative_depth)}
    phase("bm25 negatives")
    query_matrix, passage_matrix = encode_matrices(encoder, texts, [q.query for q in queries], progress=progress)
    rankings["model"] = rank_by_dot(query_matrix, passage_matrix, recipe.negative_depth)
    phase("model negatives")
    if recipe.round_trip_depth:
        kept = round_trip(queries, rankings, recipe.round_trip_depth)
        if len(kept) < MIN_PAIRS:
            raise AdaptError(f"no usable text to adapt to: of {len(queries)} training queries, {len(kept)} find their "
                             f"own passage in the top {recipe.round_trip_depth} (round trip)")
        queries, bm25_query_terms = [queries[i] for i in kept], [bm25_query_terms[i] for i in kept]
        query_matrix = query_matrix[kept]
        rankings = {miner: ranking[kept] for miner, ranking in rankings.items()}
    picked = pick_negatives(queries, passages, terms, rankings, rng, window=recipe.negative_window,
                            near_duplicate=recipe.near_duplicate,
                            count=recipe.negatives if recipe.objective == "distill" else 1)
    if recipe.objective == "distill":
        rows = scored_rows(queries, picked, passages, terms, bm25_query_terms, encoder, query_matrix, passage_matrix,
                           recipe.bm25_share)
        phase("teacher scores")
    else:
        rows = [Triple(q.query, q.positive, passages[n[0][0]].text if n else None,
                       f"{q.kind}+{n[0][1] if n else 'none'}") for q, n in zip(queries, picked)]
    if recipe.contrastive.anchored:
        _write_neighbours(work, parent_dir, models_dir / NEIGHBOURS_CACHE, progress)
        phase("anchor neighbours")
    rows = _segment(rows, parent_dir, progress)
    phase("segment")
    with (work / TRIPLES_FILE).open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.__dict__, ensure_ascii=False) + "\n")
    report.pairs = dict(Counter(q.kind for q in queries))
    report.negatives = dict(Counter(miner for negatives in picked for _, miner in negatives))
    if not all(picked):
        report.negatives["none"] = sum(not negatives for negatives in picked)
    (work / PREPARED_FILE).write_text(json.dumps({"key": key, "pairs": report.pairs, "negatives": report.negatives}),
                                      encoding="utf-8")
    return rows


def _load_prepared(work: Path, key: str, report: AdaptReport) -> list[Triple] | list[ScoredRow] | None:
    """The rows an earlier run prepared with the same key (None: prepare afresh)."""
    try:
        prepared = json.loads((work / PREPARED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if prepared.get("key") != key:
        return None
    report.pairs, report.negatives, report.reused_prepared = prepared["pairs"], prepared["negatives"], True
    rows = [json.loads(line) for line in (work / TRIPLES_FILE).open(encoding="utf-8")]
    return [ScoredRow(**row) if "passages" in row else Triple(**row) for row in rows]


def _clear(work: Path) -> None:
    """Empty a work folder of another run's state (the lock file stays: we hold it)."""
    for entry in work.iterdir():
        if entry.name != "lock":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _write_neighbours(work: Path, parent_dir: Path, cache: Path, progress: bool) -> None:
    """Kiwi neighbours of the parent's vocabulary, for the expansion anchor (as `ksearch train` prepares them).

    They depend on the vocabulary and Kiwi only, not on the corpus, and take minutes: computed once per vocabulary
    into `cache`, then copied for every adaptation."""
    from kiwipiepy import __version__ as kiwi_version
    from transformers import AutoTokenizer

    from encoder.training.config import DistillConfig
    from encoder.training.kiwi_teacher import neighbour_graph

    tokenizer = AutoTokenizer.from_pretrained(parent_dir, local_files_only=True)
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    distill = DistillConfig()
    key = hashlib.sha256(json.dumps([vocab, distill.neighbours, distill.min_score, kiwi_version]).encode()).hexdigest()
    cached = cache / f"neighbours-{key[:16]}.json"
    if not cached.is_file():
        graph = neighbour_graph(vocab, top_n=distill.neighbours, min_score=distill.min_score, progress=progress)
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f".{cached.name}.{os.getpid()}"
        partial.write_text(json.dumps(graph), encoding="utf-8")
        partial.replace(cached)  # atomic: a concurrent run reads a whole graph or computes its own
    shutil.copyfile(cached, work / NEIGHBOURS_FILE)


def _anchor_teacher(work: Path, parent_dir: Path):
    from transformers import AutoTokenizer

    from encoder.training.recipe import expansion_teacher

    return expansion_teacher(work, AutoTokenizer.from_pretrained(parent_dir, local_files_only=True))


def _segment(rows: list[Triple] | list[ScoredRow], parent_dir: Path, progress: bool,
             batch: int = 512) -> list[Triple] | list[ScoredRow]:
    """The rows as the parent's tokenizer sees them (its Kiwi pre-segmentation, if it has one)."""
    from encoder.training.recipe import segment_triples, segmenter_of

    segmenter = segmenter_of(parent_dir)
    if segmenter is None:
        return rows
    out: list = []
    with tqdm(total=len(rows), desc="segmenting", unit="pair", disable=not progress) as bar:
        for begin in range(0, len(rows), batch):
            chunk = rows[begin: begin + batch]
            if chunk and isinstance(chunk[0], ScoredRow):
                out += _segment_scored(chunk, segmenter.segment)
            else:
                out += segment_triples(chunk, segmenter.segment)
            bar.update(len(chunk))
    return out


def _segment_scored(rows: list[ScoredRow], segment) -> list[ScoredRow]:
    queries = segment([r.query for r in rows])
    flat = iter(segment([p for r in rows for p in r.passages]))
    return [ScoredRow(q, [next(flat) for _ in r.passages], r.scores, r.source) for q, r in zip(queries, rows)]


def _export_onnx(staging: Path) -> str | None:
    """Write staging/model.onnx for the light runtime; the error text when it cannot (the model works with torch)."""
    try:
        from encoder.onnx_export import export_onnx

        export_onnx(staging)
    except (ImportError, OSError, RuntimeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
