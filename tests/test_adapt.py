"""`ksearch adapt`: a tiny corpus adapts a tiny model on the CPU in seconds; models are never half-written, and never
overwritten unless `--force` names ksearch adapt's own earlier output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encoder import SparseEncoder
from encoder.training.model_install import MARKER_FILE, WORK_FOLDER
from ksearch.cli import app
from tiny_models import KOREAN_SENTENCES

runner = CliRunner()


def write_corpus(path: Path, rows: int = len(KOREAN_SENTENCES)) -> Path:
    """`rows` documents with titles; every text is two sentences (so ict pairs can be made)."""
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            text = f"{KOREAN_SENTENCES[i]} {KOREAN_SENTENCES[(i + 3) % len(KOREAN_SENTENCES)]}"
            f.write(json.dumps({"id": f"d{i}", "title": f"{KOREAN_SENTENCES[i].split()[0]} 안내", "text": text},
                               ensure_ascii=False) + "\n")
    return path


def adapt(*args: str):
    return runner.invoke(app, ["adapt", *args, "--quiet"])


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, tiny_model_dir):
    """One adaptation of the tiny BERT to a 12-document corpus: (home, corpus, model folder, command output)."""
    from retrieval.settings import get_settings

    root = tmp_path_factory.mktemp("adapt")
    corpus = write_corpus(root / "corpus.jsonl")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KSEARCH_HOME", str(root / "home"))
        mp.delenv("KSEARCH_MODEL", raising=False)
        get_settings.cache_clear()
        result = adapt(str(corpus), "--out", "clinic", "--from", str(tiny_model_dir), "--minutes", "1")
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return root / "home", corpus, root / "home" / "models" / "clinic", result.output


@pytest.fixture
def adapted_home(adapted, monkeypatch):
    """$KSEARCH_HOME of the `adapted` run, for commands that use the model by name."""
    from retrieval.settings import get_settings

    monkeypatch.setenv("KSEARCH_HOME", str(adapted[0]))
    monkeypatch.delenv("KSEARCH_MODEL", raising=False)
    get_settings.cache_clear()
    yield adapted[0]
    get_settings.cache_clear()


@pytest.fixture
def no_onnx(monkeypatch):
    """Skip the ONNX export in runs whose model folder is not under test (it takes seconds)."""
    monkeypatch.setattr("ksearch.adaptation._export_onnx", lambda staging: "skipped in this test")


def test_a_tiny_corpus_adapts_into_a_model_folder_that_loads(adapted, tiny_model_dir):
    _, corpus, folder, output = adapted
    assert "ksearch ingest" in output and "--model clinic" in output
    record = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    assert record["written_by"] == "ksearch adapt"
    assert record["parent"]["path"] == str(tiny_model_dir.resolve())
    assert record["corpus"]["documents"] == 12 and record["corpus"]["passages"] == 12
    assert len(record["corpus"]["fingerprint"]) == 64
    assert {"title", "keyphrase", "ict"} <= set(record["pairs"])
    assert sum(record["negatives"].get(m, 0) for m in ("bm25", "model")) > 0
    assert record["recipe"]["contrastive"]["learning_rate"] > 0 and record["training"]["steps"] > 0
    # the default objective distils, with more than one mined negative per pair (three where the corpus has them)
    assert record["recipe"]["objective"] == "distill" and record["training"]["objective"] == "distill"
    mined = sum(record["negatives"].get(m, 0) for m in ("bm25", "model"))
    assert sum(record["pairs"].values()) < mined <= 3 * sum(record["pairs"].values())
    enc = SparseEncoder.load(folder)
    assert enc.backend == "onnx", "the folder has a model.onnx of its present weights"
    assert enc.encode_queries(["보증금 반환"])[0]
    assert enc.vocab_hash == SparseEncoder.load(tiny_model_dir).vocab_hash  # a copy of the parent, fine-tuned
    assert not (folder.parent / WORK_FOLDER).exists(), "a finished run leaves no work folder"


def test_the_adapted_weights_differ_from_the_parent(adapted, tiny_model_dir):
    from safetensors.torch import load_file

    parent = load_file(tiny_model_dir / "model.safetensors")
    child = load_file(adapted[2] / "model.safetensors")
    changed = [k for k in child if k in parent and not (child[k].float() - parent[k].float().half().float()).abs().max() == 0]
    assert changed, "fine-tuning changed no weight"


def test_model_name_resolves_under_ksearch_home_for_encode_ingest_and_search(adapted_home, tmp_path, tiny_model_dirs):
    corpus = write_corpus(tmp_path / "c.jsonl")
    encoded = runner.invoke(app, ["encode", "보증금", "--model", "clinic", "--json"])
    assert encoded.exit_code == 0, encoded.output
    ingested = runner.invoke(app, ["ingest", str(corpus), "--model", "clinic", "--index", "clinic", "--quiet"])
    assert ingested.exit_code == 0, ingested.output
    found = runner.invoke(app, ["search", "보증금", "--index", "clinic", "--json"])  # the index's own model, by name
    assert found.exit_code == 0, found.output
    assert json.loads(found.output)["hits"]
    other = runner.invoke(app, ["search", "보증금", "--index", "clinic", "--model", str(tiny_model_dirs["roberta"])])
    assert other.exit_code == 2 and "vocabulary" in other.output


def test_an_existing_model_is_never_overwritten(adapted, tmp_path, monkeypatch, tiny_model_dir):
    from retrieval.settings import get_settings

    home = tmp_path / "home"
    theirs = home / "models" / "theirs"
    theirs.mkdir(parents=True)
    (theirs / "config.json").write_text("{}", encoding="utf-8")
    monkeypatch.setenv("KSEARCH_HOME", str(home))
    get_settings.cache_clear()
    try:
        plain = adapt(str(adapted[1]), "--out", "theirs", "--from", str(tiny_model_dir))
        forced = adapt(str(adapted[1]), "--out", "theirs", "--from", str(tiny_model_dir), "--force")
    finally:
        get_settings.cache_clear()
    assert plain.exit_code == 2 and "already exists" in plain.output and "--force" in plain.output
    assert forced.exit_code == 2 and "not written by ksearch adapt" in " ".join(forced.output.split())
    assert [p.name for p in theirs.iterdir()] == ["config.json"]


def test_force_replaces_only_its_own_earlier_output(adapted_home, tmp_path, tiny_model_dir, no_onnx):
    folder = adapted_home / "models" / "clinic"
    before = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    smaller = write_corpus(tmp_path / "smaller.jsonl", rows=8)
    ingest = ["ingest", str(smaller), "--model", "clinic", "--index", "before-force"]
    assert runner.invoke(app, ingest).exit_code == 0
    again = adapt(str(smaller), "--out", "clinic", "--from", str(tiny_model_dir))
    assert again.exit_code == 2 and "already exists" in again.output
    assert json.loads((folder / MARKER_FILE).read_text(encoding="utf-8")) == before
    forced = adapt(str(smaller), "--out", "clinic", "--from", str(tiny_model_dir), "--force", "--minutes", "0.5")
    assert forced.exit_code == 0, forced.output
    after = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    assert after["corpus"]["documents"] == 8 and after["corpus"]["fingerprint"] != before["corpus"]["fingerprint"]
    assert SparseEncoder.load(folder).encode_documents(["보증금"])[0]
    reingested = runner.invoke(app, ingest)  # the same name, new weights: nothing kept from the earlier model
    assert reingested.exit_code == 0 and "written 8, skipped (unchanged) 0" in reingested.output, reingested.output


@pytest.mark.parametrize("rows, why", [
    ([{"id": "a", "text": ""}, {"id": "b"}, {"text": "제목 없는 문서"}], "all 3 rows were skipped"),
    ([{"id": "a", "text": "!!! ???"}, {"id": "b", "text": "... ---"}], "gave 0 training queries"),
])
def test_a_corpus_with_no_usable_text_is_a_clear_error(home, tmp_path, tiny_model_dir, rows, why):
    corpus = tmp_path / "empty.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = adapt(str(corpus), "--out", "nothing", "--from", str(tiny_model_dir))
    message = " ".join(result.output.split())
    assert result.exit_code == 2 and "no usable text" in message and why in message, result.output
    assert not (home / "models" / "nothing").exists()


def test_a_bad_model_name_is_refused(home, tmp_path, tiny_model_dir):
    result = adapt(str(write_corpus(tmp_path / "c.jsonl")), "--out", "../escape", "--from", str(tiny_model_dir))
    assert result.exit_code == 2 and "model name" in result.output
    assert not (tmp_path / "escape").exists()


def test_an_interrupted_run_leaves_no_model_and_the_next_run_resumes(home, tmp_path, tiny_model_dir, monkeypatch, no_onnx):
    from encoder import SparseEncoder as Encoder
    from encoder.training.time_budget import TimeBudget
    from ksearch.adaptation import adapt_corpus

    corpus = write_corpus(tmp_path / "c.jsonl")
    models = home / "models"
    encoder = Encoder.load(tiny_model_dir)
    step_end = TimeBudget.on_step_end

    def interrupt_at_step_2(self, args, state, control, **kwargs):
        control = step_end(self, args, state, control, **kwargs)
        if state.global_step == 2:
            raise KeyboardInterrupt  # Ctrl-C in the middle of training
        return control

    monkeypatch.setattr(TimeBudget, "on_step_end", interrupt_at_step_2)
    every_step = {"checkpoint_minutes": 0.0, "batch_size": 8, "epochs": 1.0}
    with pytest.raises(KeyboardInterrupt):
        adapt_corpus(corpus, "resumable", encoder, models_dir=models, minutes=1, progress=False,
                     recipe_overrides=every_step)
    assert not (models / "resumable").exists()
    assert (models / WORK_FOLDER / "resumable" / "checkpoints" / "checkpoint-1").is_dir()
    monkeypatch.setattr(TimeBudget, "on_step_end", step_end)
    report = adapt_corpus(corpus, "resumable", encoder, models_dir=models, minutes=1, progress=False,
                          recipe_overrides=every_step)
    assert report.reused_prepared and report.fit.resumed_from_step == 1 and report.fit.steps > 1
    assert Encoder.load(models / "resumable").encode_queries(["보증금"])[0]


def test_pseudo_queries_of_every_kind_come_from_the_passage_itself():
    import random

    from encoder.training.pseudo_queries import CorpusPassage, analyse_passages, pseudo_queries

    passages = [CorpusPassage("L1", "임차권등기명령 신청", "보증금을 돌려받지 못한 임차인은 임차권등기명령을 신청할 수 있습니다. "
                                                       "등기가 되면 이사해도 대항력이 유지됩니다."),
                CorpusPassage("M1", "당뇨병 진단", "당뇨병은 당화혈색소 6.5% 이상이면 진단합니다.")]
    queries = pseudo_queries(passages, analyse_passages([p.text for p in passages]), random.Random(0))
    by_kind = {(q.passage, q.kind): q for q in queries}
    assert set(by_kind) == {(0, "title"), (0, "keyphrase"), (0, "ict"), (1, "title"), (1, "keyphrase"), (1, "cloze")}
    assert "임차권등기명령" in by_kind[0, "keyphrase"].query.split()  # a compound is one key term
    ict = by_kind[0, "ict"]
    assert ict.query in passages[0].text and ict.positive != passages[0].text and ict.query not in ict.positive
    cloze = by_kind[1, "cloze"]
    assert cloze.positive == passages[1].text and "당뇨병" not in cloze.query and "진단합니다" in cloze.query


def test_mined_negatives_are_never_the_source_document_or_a_near_duplicate():
    import random

    import numpy as np

    from encoder.training.negative_mining import pick_negatives
    from encoder.training.pseudo_queries import CorpusPassage, PassageTerms, PseudoQuery

    passages = [CorpusPassage("a", "", "보증금 반환 소송", True), CorpusPassage("a", "", "보증금 반환 절차", False),
                CorpusPassage("b", "", "보증금 반환 소송 ", True), CorpusPassage("c", "", "월세 인상 상한", True)]
    terms = [PassageTerms(("보증금", "반환", "소송"), ()), PassageTerms(("보증금", "반환", "절차"), ()),
             PassageTerms(("보증금", "반환", "소송"), ()), PassageTerms(("월세", "인상", "상한"), ())]
    query = PseudoQuery("보증금 반환", "보증금 반환 소송", 0, "keyphrase")
    ranking = np.array([[0, 1, 2, 3]] * 2)  # itself, its own document, a near-duplicate, then a real negative
    picked = pick_negatives([query, query], passages, terms, {"bm25": ranking, "model": ranking}, random.Random(0))
    assert picked == [[(3, "bm25")], [(3, "model")]]  # the miners alternate
    assert pick_negatives([query], passages, terms, {"bm25": np.array([[0, 1, 2, -1]])}, random.Random(0)) == [[]]
    # several per pair (distillation): distinct passages, the miners taking turns while they have candidates
    passages.append(CorpusPassage("d", "", "전세 사기 예방", True))
    terms.append(PassageTerms(("전세", "사기", "예방"), ()))
    several = pick_negatives([query], passages, terms, {"bm25": np.array([[3, 4]]), "model": np.array([[3, 0]])},
                             random.Random(0), count=3)
    assert sorted(several[0]) == [(3, "bm25"), (4, "bm25")] or sorted(several[0]) == [(3, "model"), (4, "bm25")]
    assert len({n for n, _ in several[0]}) == 2


def test_the_time_budget_stops_before_a_step_would_end_past_it(monkeypatch):
    from types import SimpleNamespace

    from encoder.training import time_budget
    from encoder.training.time_budget import TimeBudget

    clock = [100.0]
    monkeypatch.setattr(time_budget.time, "monotonic", lambda: clock[0])
    budget = TimeBudget(10.0, checkpoint_seconds=4.0, progress=False)
    state = SimpleNamespace(global_step=0, max_steps=100)
    control = SimpleNamespace(should_training_stop=False, should_save=False)
    budget.on_train_begin(None, state, control)
    seen = []
    for step in range(1, 10):
        clock[0] += 3.0  # every step takes 3 s
        state.global_step = step
        control.should_save = False
        budget.on_step_end(None, state, control)
        seen.append((step, control.should_save, control.should_training_stop))
        if control.should_training_stop:
            break
    # after step 3 (9 s) a fourth step would end at 12 s > 10 s; checkpoints when 4 s have passed since the last
    assert seen == [(1, False, False), (2, True, False), (3, False, True)]
    assert budget.stopped_by_budget


def test_without_minutes_training_gets_the_rest_of_a_30_minute_run_and_never_under_5():
    from ksearch.adaptation import default_training_minutes

    assert default_training_minutes(0) == pytest.approx(29.0)  # a minute is kept for saving
    assert default_training_minutes(10 * 60) == pytest.approx(19.0)
    assert default_training_minutes(40 * 60) == 5.0


def test_kiwi_neighbours_are_computed_once_per_vocabulary_and_copied_for_every_run(tmp_path, tiny_model_dir,
                                                                                   monkeypatch):
    import encoder.training.kiwi_teacher as kiwi_teacher
    from ksearch.adaptation import NEIGHBOURS_FILE, _write_neighbours

    calls = []

    def graph(vocab, **kwargs):
        calls.append(len(vocab))
        return {5: [[6, 0.9]]}

    monkeypatch.setattr(kiwi_teacher, "neighbour_graph", graph)
    cache = tmp_path / "models" / ".adapt-cache"
    for run in ("first", "second"):
        work = tmp_path / "work" / run
        work.mkdir(parents=True)
        _write_neighbours(work, tiny_model_dir, cache, progress=False)
        assert json.loads((work / NEIGHBOURS_FILE).read_text(encoding="utf-8")) == {"5": [[6, 0.9]]}
    assert len(calls) == 1 and calls[0] > 0
    assert [p.name.startswith("neighbours-") for p in cache.iterdir()] == [True]  # no partial file left
