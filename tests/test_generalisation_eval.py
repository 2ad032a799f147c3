"""Out-of-domain evaluation tools: test collection folders, the answering passage, expansion quality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ksearch.cli import app
from retrieval.evaluation import AnswerSpan, _answer_passage_rate, holds_answer, read_answer_spans
from retrieval.expansion_quality import ProbeQuery, RelatednessJudge, query_expansions, read_probe

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

LONG = ("임대차 계약이 끝나면 임대인은 보증금을 돌려주어야 합니다. " * 6
        + "\n근로자를 해고하려면 30일 전에 예고해야 하며 예고하지 않으면 해고예고수당을 지급합니다. " * 6)


def _collection(folder: Path) -> Path:
    folder.mkdir(parents=True)
    docs = [{"id": "d1", "domain": "legal", "title": "긴 문서", "text": LONG},
            {"id": "d2", "domain": "medical", "title": "편두통", "text": "편두통은 한쪽 머리가 욱신거리는 두통입니다."},
            {"id": "d3", "domain": "medical", "title": "고혈압", "text": "고혈압 환자는 싱겁게 먹어야 합니다."}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    queries = [{"id": "q1", "text": "해고 예고", "style": "keyword"}, {"id": "q2", "text": "편두통", "style": "keyword"},
               {"id": "q3", "text": "고혈압", "style": "colloquial"}]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries), encoding="utf-8")
    (folder / "qrels.tsv").write_text("q1 0 d1 2\nq2 0 d2 2\nq3 0 d3 2\n", encoding="utf-8")
    (folder / "splits.json").write_text('{"dev": ["q3"], "test": ["q1", "q2"]}', encoding="utf-8")
    span = {"query_id": "q1", "doc_id": "d1", "answer": "근로자를 해고하려면 30일 전에 예고해야 하며 예고하지 않으면 해고예고수당을 지급합니다."}
    (folder / "answer_spans.jsonl").write_text(json.dumps(span, ensure_ascii=False) + "\n", encoding="utf-8")
    return folder


def test_holds_answer_accepts_the_span_or_most_of_it_and_nothing_else():
    answer = "근로자를 해고하려면 30일 전에 예고해야 합니다."
    assert holds_answer("앞 문장입니다. 근로자를 해고하려면  30일 전에\n예고해야 합니다. 뒤 문장.", answer)  # whitespace-insensitive
    assert holds_answer("... 근로자를 해고하려면 30일 전에 예고", answer)  # a span cut at the passage end: most of it
    assert not holds_answer("근로자를 해고", answer)
    assert not holds_answer("임대인은 보증금을 돌려주어야 합니다.", answer)


def test_answer_passage_rate_counts_only_retrieved_documents_of_the_evaluated_queries():
    spans = [AnswerSpan("q1", "d1", "정답 문장입니다"), AnswerSpan("q1", "d2", "다른 정답"), AnswerSpan("q9", "d1", "x")]
    shown = {"q1": {"d1": "여기에 정답 문장입니다 있음", "d3": "무관"}}
    rate = _answer_passage_rate(shown, spans, {"q1": {"d1": 2, "d2": 2}})
    assert rate == {"pairs": 2.0, "retrieved": 1.0, "holds": 1.0, "rate": 1.0}


def test_read_answer_spans_names_the_bad_line(tmp_path):
    path = tmp_path / "spans.jsonl"
    path.write_text('{"query_id": "q1", "doc_id": "d1", "answer": "a"}\n{"query_id": "q2"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"spans.jsonl:2"):
        read_answer_spans(path)


def test_eval_collection_ingests_once_uses_its_test_split_and_reports_the_answering_passage(tmp_path, home, tiny_model_dir):
    folder = _collection(tmp_path / "ood-tiny")
    result = runner.invoke(app, ["eval", "--collection", str(folder), "--model", str(tiny_model_dir), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["_meta"]["queries"] == 2 and payload["_meta"]["split"] == "test"
    assert payload["_meta"]["index"] == "eval-ood-tiny" and (home / "eval-ood-tiny" / "manifest.json").is_file()
    for mode in ("sparse", "bm25", "hybrid"):
        passage = payload[mode]["answer_passage"]
        assert passage["pairs"] == 1 and passage["holds"] <= passage["retrieved"] <= 1
    assert payload["bm25"]["answer_passage"] == {"pairs": 1.0, "retrieved": 1.0, "holds": 1.0, "rate": 1.0}
    again = runner.invoke(app, ["eval", "--collection", str(folder), "--model", str(tiny_model_dir), "--split", "dev"])
    assert again.exit_code == 0, again.output
    assert "1 queries (dev)" in again.stdout


def test_eval_collection_without_judgments_is_a_clear_error(tmp_path, home):
    folder = _collection(tmp_path / "broken")
    (folder / "qrels.tsv").unlink()
    result = runner.invoke(app, ["eval", "--collection", str(folder)])
    assert result.exit_code == 2 and "qrels.tsv is missing" in " ".join(result.output.split())


def test_eval_own_queries_evaluates_all_of_them_without_a_splits_file(tmp_path, home, tiny_model_dir):
    folder = _collection(tmp_path / "mine")
    ingest = runner.invoke(app, ["ingest", str(folder / "corpus.jsonl"), "--model", str(tiny_model_dir), "-q"])
    assert ingest.exit_code == 0, ingest.output
    result = runner.invoke(app, ["eval", "--queries", str(folder / "queries.jsonl"), "--qrels", str(folder / "qrels.tsv"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["_meta"]["queries"] == 3
    assert runner.invoke(app, ["eval", "--queries", str(folder / "queries.jsonl")]).exit_code == 2  # no --qrels


def test_relatedness_judge_accepts_expected_words_their_compounds_and_kiwi_neighbours():
    query = ProbeQuery("p1", "legal", "경찰이 영장 없이 잡아갈 수 있나요", ("체포", "구속", "영장"))
    verdicts = RelatednessJudge().judge(query, ["체포", "긴급체포", "검거", "엘리베이터", "목걸이"])
    assert verdicts == [True, True, True, False, False]


def test_relatedness_judge_gives_a_word_with_a_degenerate_embedding_no_neighbours():
    judge = RelatednessJudge()
    assert judge.neighbours("침침하", "VA") == frozenset()  # its "neighbours" are 불그스름, 쓰담쓰담, ... all ≥ 0.93
    assert "인슐린" in judge.neighbours("혈당", "NNG")
    query = ProbeQuery("p2", "medical", "눈이 침침해요", ("시력",))
    assert judge.judge(query, ["쓰담쓰담", "시력저하"]) == [False, True]


def test_query_expansions_never_include_the_querys_own_tokens(tiny_model_dir):
    from encoder import SparseEncoder

    enc = SparseEncoder.load(tiny_model_dir)
    text = "집주인이 보증금을 돌려주지 않으면"
    own = set(enc.tokenizer.tokenize(text))
    expansions = query_expansions(enc, text, top=10)
    assert 0 < len(expansions) <= 10
    assert not own & {t for t, _ in expansions}
    assert [w for _, w in expansions] == sorted((w for _, w in expansions), reverse=True)


def test_the_shipped_probe_set_is_large_and_well_formed():
    probe = read_probe(ROOT / "eval_data" / "expansion_probe.jsonl")
    assert len(probe) >= 100 and len({q.id for q in probe}) == len(probe)
    assert all(len(q.expected) >= 5 for q in probe)
