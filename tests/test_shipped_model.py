"""The shipped Korean model: loads offline by default, is small and sparse, and expands like a Korean speaker."""

from __future__ import annotations

import json

import pytest

from encoder import SparseEncoder
from encoder.model_resolution import SHIPPED_MODEL_DIR

# Colloquial query -> words a Korean speaker expects the model to add (any one of them must appear).
PROBES = {
    "집주인이 보증금을 안 돌려줘요": {"임대인", "임차인", "전세금", "확정일자", "대항력", "임대차"},
    "회사에서 갑자기 나가래요": {"해고", "부당해고", "해고자", "사업주", "노동자", "근로자", "퇴사"},
    "월급을 몇 달째 못 받았어요": {"임금", "체불", "노동청", "급료", "사업주"},
    "교통사고 나서 합의금 얼마 받을 수 있나요": {"위자료", "보험금", "과실", "손해배상"},
    "남편이랑 이혼하면 애는 누가 키워요": {"양육권", "양육", "친권", "자녀", "혼인"},
    "돌아가신 아버지 빚이 더 많아요": {"상속", "상속인", "상속포기", "한정승인", "채무", "변제"},
    "인터넷에 나쁜 댓글 단 사람 처벌하고 싶어요": {"모욕죄", "명예훼손", "고소", "온라인"},
    "피가 달고 물을 많이 마셔요": {"당뇨", "혈당", "인슐린"},
    "머리 한쪽이 욱신거리고 토할 것 같아요": {"편두통", "두통", "통증", "구역질"},
    "밥 먹고 나면 속이 쓰려요": {"위염", "위산", "위궤양", "식후", "점막", "역류"},
    "허리가 아프고 다리가 저려요": {"추간판", "요통", "디스크", "요추", "척추"},
    "잠이 안 와서 미치겠어요": {"불면증", "수면제", "수면"},
    "애가 열이 펄펄 나요": {"발열", "체온", "해열제", "고열"},
    "피부가 가렵고 오돌토돌 올라와요": {"두드러기", "아토피", "습진", "피부염"},
    "귀에서 삐 소리가 나요": {"이명", "난청", "중이염"},
}


@pytest.fixture(scope="module")
def shipped() -> SparseEncoder:
    return SparseEncoder.load(SHIPPED_MODEL_DIR)


def test_default_model_is_the_shipped_one_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("KSEARCH_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    enc = SparseEncoder.load()
    assert enc.model_id == "ksearch/ksearch-ko-sparse"
    assert enc.segmenter is not None and enc.max_length == 64


def test_weights_are_small_and_standard_hf_format():
    assert (SHIPPED_MODEL_DIR / "model.safetensors").stat().st_size <= 40 * 2**20
    config = json.loads((SHIPPED_MODEL_DIR / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "bert" and config["vocab_size"] == 24_000
    assert (SHIPPED_MODEL_DIR / "tokenizer.json").is_file()


def test_probe_queries_get_the_expansions_a_korean_speaker_expects(shipped):
    """At least 14 of the 15 colloquial probes get an expected word (v2 misses 애가 열이 펄펄 나요: MODEL_CARD.md)."""
    misses = {}
    for query, expected in PROBES.items():
        vector = shipped.encode_queries([query])[0]
        tokens = {shipped.display_token(name) for name in vector}
        literal = set(shipped.model_text([query])[0].split())
        if not (tokens - literal) & expected:
            misses[query] = sorted(tokens - literal)[:20]
    assert len(misses) <= 1, misses


def test_default_pruning_keeps_vectors_sparse(shipped):
    queries = list(PROBES)
    passages = ["임대인은 임대차 계약이 끝나면 임차인에게 보증금을 반환해야 하며, 반환하지 않으면 임차인은 "
                "임차권등기명령을 신청하고 보증금 반환 소송을 제기할 수 있다."] * 2
    assert max(len(v) for v in shipped.encode_queries(queries)) <= 40
    assert max(len(v) for v in shipped.encode_documents(passages)) <= 200


def test_the_shipped_model_id_that_indexes_record_loads_again():
    assert SparseEncoder.load("ksearch/ksearch-ko-sparse").model_id == "ksearch/ksearch-ko-sparse"


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_faster_precisions_keep_the_fp32_ranking_tokens(precision):
    fp32 = SparseEncoder.load(SHIPPED_MODEL_DIR, device="cpu", precision="fp32", backend="torch")
    fast = SparseEncoder.load(SHIPPED_MODEL_DIR, device="cpu", precision=precision, backend="torch")
    assert (fp32.precision, fast.precision) == ("fp32", precision)
    texts = list(PROBES) + ["임대인은 임대차 계약이 끝나면 임차인에게 보증금을 반환해야 한다."]
    for a, b in zip(fp32.encode_queries(texts), fast.encode_queries(texts)):
        top_a, top_b = set(list(a)[:10]), set(list(b)[:10])
        assert len(top_a & top_b) >= 0.8 * len(top_a), (precision, list(a)[:10], list(b)[:10])  # vectors may be short
        shared = top_a & top_b
        assert max(abs(a[t] - b[t]) for t in shared) < 0.1


def test_the_shipped_model_runs_onnx_fp32_by_default_and_declares_no_unmeasured_precision():
    settings = json.loads((SHIPPED_MODEL_DIR / "ksearch.json").read_text(encoding="utf-8"))
    assert "cpu_precision" not in settings  # v2's bf16/int8 nDCG parity was not measured
    default = SparseEncoder.load(SHIPPED_MODEL_DIR, device="cpu")
    assert (default.backend, default.precision) == ("onnx", "fp32")
    assert SparseEncoder.load(SHIPPED_MODEL_DIR, device="cpu", backend="torch").precision == "fp32"
