"""`ksearch adapt`'s distillation objective: the teacher's scores are computed as documented (per-query min-max mix
of the parent's and BM25's scores, in the parent's range), on the texts actually trained on."""

from __future__ import annotations

import random

import numpy as np
import pytest

from encoder.training.teacher_scores import Bm25Scorer, ScoredRow, ensemble_scores, minmax, round_trip


def test_the_teacher_mixes_min_max_scores_and_maps_them_into_the_parent_range():
    parent, bm25 = [10.0, 8.0, 2.0], [0.0, 5.0, 5.0]
    # minmax: parent [1, .75, 0], bm25 [0, 1, 1]; mix [.5, .875, .5]; parent range 2..10
    assert ensemble_scores(parent, bm25, 0.5) == pytest.approx([6.0, 9.0, 6.0])
    assert ensemble_scores(parent, bm25, 0.0) == pytest.approx(parent)  # no BM25: the parent itself, no loss
    assert ensemble_scores(parent, bm25, 1.0) == pytest.approx([2.0, 10.0, 10.0])
    assert ensemble_scores([3.0, 3.0], [1.0, 0.0], 0.5) == pytest.approx([3.0, 3.0])  # no parent range: no margin
    assert minmax([4.0, 4.0]).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="bm25_share"):
        ensemble_scores(parent, bm25, 1.5)


def test_bm25_scores_any_text_as_the_index_scores_its_passages():
    import bm25s

    corpus = [["보증금", "반환"], ["반환", "소송", "소송"], ["월세"], ["보증금", "보증금", "월세", "인상"]]
    index = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    index.index(corpus, show_progress=False)
    query = ["소송", "반환", "없는말", "보증금"]
    scorer = Bm25Scorer(corpus)
    assert [scorer.score(query, terms) for terms in corpus] == pytest.approx(index.get_scores(query).tolist(), rel=1e-5)
    assert scorer.score(query, ["반환"]) > 0 and scorer.score(["월세"], ["반환"]) == 0


def test_round_trip_keeps_the_queries_some_miner_ranks_their_passage_for():
    from encoder.training.pseudo_queries import PseudoQuery

    queries = [PseudoQuery("a", "x", 0, "title"), PseudoQuery("b", "y", 1, "title"), PseudoQuery("c", "z", 2, "title")]
    rankings = {"bm25": np.array([[0, 1], [2, 0], [1, 0]]), "model": np.array([[1, 2], [0, 1], [0, 1]])}
    assert round_trip(queries, rankings, 2) == [0, 1]
    assert round_trip(queries, rankings, 1) == [0]


@pytest.fixture(scope="module")
def shipped():
    from encoder import SparseEncoder
    from encoder.model_resolution import SHIPPED_MODEL_ID

    return SparseEncoder.load(SHIPPED_MODEL_ID)


def test_scored_rows_put_the_positive_first_and_score_the_text_trained_on(shipped):
    from encoder.training.negative_mining import encode_matrices
    from encoder.training.pseudo_queries import CorpusPassage, PseudoQuery, analyse_passages, query_terms
    from encoder.training.teacher_scores import scored_rows

    passages = [CorpusPassage("L1", "", "보증금을 돌려받지 못한 임차인은 임차권등기명령을 신청할 수 있습니다. 등기가 되면 이사해도 "
                                        "대항력이 유지됩니다."),
                CorpusPassage("L2", "", "월세를 올릴 때는 기존 차임의 5%를 넘을 수 없습니다."),
                CorpusPassage("L3", "", "전세 계약이 끝나면 임대인은 보증금을 반환해야 합니다."),
                CorpusPassage("L4", "", "소액 사건은 소액사건심판 절차로 빠르게 진행됩니다.")]
    texts = [p.text for p in passages]
    terms = analyse_passages(texts)
    cut = "등기가 되면 이사해도 대항력이 유지됩니다."  # ict: the sentence is cut out of its positive
    queries = [PseudoQuery("임차권등기명령 신청", texts[0], 0, "keyphrase"),
               PseudoQuery("보증금을 돌려받지 못한 임차인은 임차권등기명령을 신청할 수 있습니다.", cut, 0, "ict")]
    qterms = query_terms([q.query for q in queries])
    qm, pm = encode_matrices(shipped, texts, [q.query for q in queries])
    picked = [[(2, "bm25"), (1, "model")], [(3, "bm25"), (2, "model")]]
    plain = scored_rows(queries, picked, passages, terms, qterms, shipped, qm, pm, 0.0)
    for row, query, negatives in zip(plain, queries, picked):
        assert isinstance(row, ScoredRow) and row.passages == [query.positive] + [texts[n] for n, _ in negatives]
        # bm25_share 0: the teacher is the parent's own score of each (query, candidate text), encoded afresh
        expected = [sum(w * doc.get(t, 0.0) for t, w in shipped.encode_queries([query.query])[0].items())
                    for doc in shipped.encode_documents(row.passages)]
        assert row.scores == pytest.approx(expected, abs=1e-3)
    assert plain[1].scores[0] < plain[0].scores[0]  # the cut positive lacks the query's sentence
    mixed = scored_rows(queries, picked, passages, terms, qterms, shipped, qm, pm, 0.5)
    assert max(mixed[0].scores) == pytest.approx(max(plain[0].scores), abs=1e-3)  # the parent's range is kept
    assert min(mixed[0].scores) == pytest.approx(min(plain[0].scores), abs=1e-3)


def _mean_nnz(model_dir, texts) -> float:
    from encoder import SparseEncoder

    return float(np.mean([len(v) for v in SparseEncoder.load(model_dir).encode_documents(texts)]))


@pytest.mark.slow
def test_distilling_on_a_small_corpus_keeps_the_parents_vector_density(shipped, tmp_path):
    """The contrastive objective took the shipped model's passages from 77 to 30 non-zero weights on the legal corpus;
    distillation must not collapse them (the shipped model on 24 passages of it, FLOPS at the parent's weights). The
    contrastive loss on the same pairs (first negative) and steps took them from 71 to 42 when this was written, so
    the bound tells the two objectives apart."""
    import json
    from pathlib import Path

    from encoder.model_resolution import resolve_model
    from encoder.training.adapt import fit_within_budget, recipe_for
    from encoder.training.negative_mining import bm25_rankings, encode_matrices, pick_negatives, rank_by_dot
    from encoder.training.pseudo_queries import CorpusPassage, analyse_passages, pseudo_queries, query_terms
    from encoder.training.recipe import segmenter_of
    from encoder.training.teacher_scores import scored_rows

    rows = [json.loads(line) for line in open("eval_data/ood-legal/corpus.jsonl", encoding="utf-8")][:24]
    passages = [CorpusPassage(r["id"], r.get("title", ""), r["text"][:200]) for r in rows]
    texts = [p.text for p in passages]
    terms = analyse_passages(texts)
    queries = pseudo_queries(passages, terms, random.Random(0), 48)
    qterms = query_terms([q.query for q in queries])
    qm, pm = encode_matrices(shipped, texts, [q.query for q in queries])
    rankings = {"bm25": bm25_rankings([t.content for t in terms], qterms, 20), "model": rank_by_dot(qm, pm, 20)}
    picked = pick_negatives(queries, passages, terms, rankings, random.Random(0), count=3)
    scored = scored_rows(queries, picked, passages, terms, qterms, shipped, qm, pm, 0.5)
    segment = segmenter_of(shipped.model_id).segment
    queries_seg = segment([r.query for r in scored])
    flat = iter(segment([p for r in scored for p in r.passages]))
    scored = [ScoredRow(q, [next(flat) for _ in r.passages], r.scores, r.source) for q, r in zip(queries_seg, scored)]
    parent_dir = Path(resolve_model(shipped.model_id)[1])
    recipe = recipe_for(parent_dir, epochs=2.0, batch_size=16)  # 6 steps
    fit = fit_within_budget(parent_dir, scored, recipe, tmp_path, seconds=3600, max_length=shipped.max_length,
                            progress=False)
    assert fit.objective == "distill" and fit.steps == fit.max_steps >= 5
    (fit.model_dir / "ksearch.json").write_text((parent_dir / "ksearch.json").read_text(encoding="utf-8"),
                                                encoding="utf-8")
    assert _mean_nnz(fit.model_dir, texts) >= 0.85 * _mean_nnz(parent_dir, texts)
