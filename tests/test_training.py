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


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train")
    pairs = root / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": q, "positive": p, "hard_negative": n}, ensure_ascii=False) + "\n"
                             for q, p, n in PAIRS * 4), encoding="utf-8")
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
[contrastive]
easy_epochs = 1
hard_epochs = 1
batch_size = 4
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
