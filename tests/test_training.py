"""`ksearch train` builds a Korean morpheme SPLADE model that SparseEncoder loads (tiny settings, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encoder import SparseEncoder
from encoder.training.config import TrainConfig
from ksearch.cli import app

pytestmark = pytest.mark.slow  # trains a model (tiny, but the torch trainer and Kiwi teacher take minutes on 2 cores)

PAIRS = [
    ("집주인이 보증금을 안 돌려줘요", "임대인은 임대차 계약이 끝나면 임차인에게 보증금을 반환해야 합니다.", "월세를 올리려면 임대인은 5% 상한을 지켜야 합니다."),
    ("회사에서 갑자기 나가래요", "사용자가 정당한 이유 없이 근로자를 해고하면 부당해고 구제신청을 할 수 있습니다.", "권고사직은 근로자가 회사의 제안에 동의해 퇴직하는 것입니다."),
    ("밥 먹고 나면 속이 쓰려요", "위염은 위 점막에 염증이 생겨 식후 속쓰림과 더부룩함이 나타나는 질환입니다.", "과민성 대장 증후군은 복통과 설사, 변비가 반복됩니다."),
    ("애가 열이 40도까지 올라요", "소아 고열이 3일 이상 계속되거나 처지면 소아청소년과 진료를 받아야 합니다.", "예방접종 후 미열은 하루 이틀 안에 좋아집니다."),
]


LONG_DOC = {"id": "L1", "title": "해고 예고", "sections": [
    "사용자는 근로자를 해고하려면 적어도 30일 전에 예고해야 합니다.",
    "30일 전에 예고하지 않은 때에는 30일분 이상의 통상임금을 해고예고수당으로 지급해야 합니다.",
    "근로자가 계속 근로한 기간이 3개월 미만이면 해고예고 규정이 적용되지 않습니다."],
    "queries": [{"query": "갑자기 내일부터 나오지 말래요 돈 받을 수 있나요", "section": 1},
                {"query": "입사 두 달 만에 잘렸어요", "section": 2}]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train")
    pairs = root / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": q, "positive": p, "hard_negative": n}, ensure_ascii=False) + "\n"
                             for q, p, n in PAIRS * 4), encoding="utf-8")
    long_docs = root / "long.jsonl"
    long_docs.write_text(json.dumps(LONG_DOC, ensure_ascii=False) + "\n", encoding="utf-8")
    config = root / "tiny.toml"
    config.write_text(f"""
seed = 3
output_dir = "{root / 'model'}"
work_dir = "{root / 'work'}"
query_pruning = "top_k:10"
[base]
vocab_size = 5200
hidden_size = 32
num_layers = 1
num_heads = 2
intermediate_size = 64
[data]
pair_files = ["{pairs}"]
sample_dir = ""
eval_split = ""
[distill]
steps = 5
batch_size = 8
long_document_files = ["{long_docs}"]
[contrastive]
easy_epochs = 1
hard_epochs = 1
batch_size = 4
query_anchor_weight = 0.1
document_anchor_weight = 0.02
""", encoding="utf-8")
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    return root / "model"


def test_trained_folder_is_a_loadable_korean_model(trained):
    settings = json.loads((trained / "ksearch.json").read_text(encoding="utf-8"))
    assert settings["pre_segmentation"]["type"] == "kiwi" and settings["query_pruning"] == "top_k:10"
    assert (trained / "model.safetensors").is_file() and (trained / "training_recipe.json").is_file()
    enc = SparseEncoder.load(trained)
    assert enc.segmenter is not None
    vector = enc.encode_queries(["집주인이 보증금을 안 돌려줘요"])[0]
    assert 0 < len(vector) <= 10
    vocab = enc.tokenizer.get_vocab()
    assert {"보증금", "집주인", "임대인"} <= set(vocab), "training words are whole vocabulary entries"


def test_segmented_model_counts_tokens_after_segmentation(trained):
    enc = SparseEncoder.load(trained)
    assert enc.model_text(["집주인이 보증금을"]) == ["집주인 보증금"]
    assert enc.count_tokens(["집주인이 보증금을"]) == [4]  # [CLS] 집주인 보증금 [SEP]


def test_the_test_split_can_never_be_trained_on(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('output_dir = "x"\n[data]\ntrain_splits = ["train", "test"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="test split is never used"):
        TrainConfig.from_file(config)


def test_long_document_questions_pair_the_answering_section_with_another_section(tmp_path):
    import random

    from encoder.training.data import long_document_triples

    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(LONG_DOC, ensure_ascii=False) + "\n", encoding="utf-8")
    triples = long_document_triples([path], random.Random(0))
    assert [t.query for t in triples] == [q["query"] for q in LONG_DOC["queries"]]
    for triple, q in zip(triples, LONG_DOC["queries"]):
        assert triple.positive == f"해고 예고. {LONG_DOC['sections'][q['section']]}"
        assert triple.negative.startswith("해고 예고. ") and triple.negative != triple.positive
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"title": "t", "sections": ["a"], "queries": [{"query": "q", "section": 3}]}) + "\n",
                   encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:1"):
        long_document_triples([bad], random.Random(0))


def test_passage_windows_cut_at_sentence_ends_within_the_limit():
    from encoder.training.data import passage_windows

    text = "첫 문장입니다. 둘째 문장입니다. 셋째 문장입니다.\n넷째 문장입니다."
    windows = passage_windows(text, limit=20)
    assert windows == ["첫 문장입니다. 둘째 문장입니다.", "셋째 문장입니다. 넷째 문장입니다."]
    assert passage_windows(text, limit=1000) == ["첫 문장입니다. 둘째 문장입니다. 셋째 문장입니다. 넷째 문장입니다."]


def test_anchor_penalises_only_weight_outside_the_texts_tokens_and_their_neighbours():
    import torch

    from encoder.training.anchored_loss import AnchoredSpladeLoss
    from encoder.training.kiwi_teacher import ExpansionTeacher

    teacher = ExpansionTeacher({5: [(7, 0.9)]}, vocab_size=10, special_ids=[0, 1])
    loss = AnchoredSpladeLoss.__new__(AnchoredSpladeLoss)  # only the penalty is under test, no model needed
    torch.nn.Module.__init__(loss)
    loss.teacher = teacher
    ids = torch.tensor([[1, 5, 6, 0]])  # [CLS]-like special, two words, padding
    mask = torch.tensor([[1, 1, 1, 0]])
    vector = torch.zeros(1, 10)
    vector[0, [5, 6, 7, 8, 9]] = torch.tensor([1.0, 0.5, 0.25, 2.0, 4.0])
    outside = loss._outside_mass([ids], [mask], [vector])
    assert outside.tolist() == [6.0]  # 8 and 9: neither the text's own tokens (5, 6) nor 5's neighbour (7)


def test_kiwi_neighbours_cover_ambiguous_forms_and_skip_degenerate_embeddings():
    from encoder.training.kiwi_teacher import neighbour_graph

    vocab = ["[PAD]", "물", "깨물", "바다", "체포", "연행", "침침하", "뤽상부르", "쓰담쓰담"]
    graph = neighbour_graph(vocab, top_n=10, min_score=0.55)
    neighbours = {vocab[i]: {vocab[j] for j, _ in out} for i, out in graph.items()}
    assert {"깨물", "바다"} <= neighbours["물"]  # 물 has a noun and a verb reading: both count
    assert "연행" in neighbours["체포"]
    assert "침침하" not in neighbours  # its embedding's neighbours are an arbitrary cluster
