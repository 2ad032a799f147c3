"""The encoder computes exactly the model card's vector, batched or not, for any masked-LM."""

from __future__ import annotations

import math

import pytest
from transformers import AutoModelForMaskedLM, AutoTokenizer

from encoder import ModelNotFoundError, Pruning, PruneType, SparseEncoder, feature_to_token, token_to_feature
from encoder.card_reference import card_encode

TEXTS = [
    "집주인이 전세 보증금을 안 돌려줘요",
    "당뇨병 치료 방법",
    "제623조. 임대인은 목적물을 사용, 수익에 필요한 상태로 유지할 의무가 있다.",
    "MRI 검사 비용 5%",
    "편두통",
    "근로자를 해고하려면 정당한 이유가 있어야 하고 30일 전에 예고해야 합니다. " * 3,
]
ARCHS = ["bert", "modernbert", "roberta"]


def card_reference(model_dir, text: str, max_length: int = 64) -> dict[str, float]:
    """The model card's encode() of one text, with the model folder's own tokenizer and weights."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForMaskedLM.from_pretrained(model_dir, local_files_only=True).eval()
    return card_encode(model, tokenizer, [text], max_length)[0]


def assert_same_vector(got: dict[str, float], want: dict[str, float], tol: float = 1e-4) -> None:
    assert set(got) == set(want), (set(got) ^ set(want))
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=tol, abs_tol=tol), (key, got[key], value)


@pytest.fixture(scope="module")
def encoders(tiny_model_dirs) -> dict[str, SparseEncoder]:
    return {arch: SparseEncoder.load(tiny_model_dirs[arch], device="cpu") for arch in ARCHS}


@pytest.mark.parametrize("arch", ARCHS)
def test_vector_equals_card_formula(arch, encoders, tiny_model_dirs):
    enc = encoders[arch]
    for text, got in zip(TEXTS, enc.encode_documents(TEXTS)):
        want = card_reference(tiny_model_dirs[arch], text)
        assert_same_vector({feature_to_token(k): v for k, v in got.items()}, want)


@pytest.mark.parametrize("arch", ARCHS)
def test_batched_equals_one_at_a_time(arch, encoders):
    enc = encoders[arch]
    batched = enc.encode_documents(TEXTS, batch_size=4)
    for text, vector in zip(TEXTS, batched):
        assert_same_vector(vector, enc.encode_documents([text])[0])


def test_results_come_back_in_input_order(encoders):
    enc = encoders["bert"]
    forward = enc.encode_documents(TEXTS)
    backward = enc.encode_documents(TEXTS[::-1])
    for a, b in zip(forward, backward[::-1]):
        assert_same_vector(a, b)


@pytest.mark.parametrize("arch", ARCHS)
def test_no_special_tokens_and_no_zero_weights(arch, encoders):
    enc = encoders[arch]
    specials = {token_to_feature(t) for t in enc.tokenizer.all_special_tokens}
    for vector in enc.encode_documents(TEXTS):
        assert vector, "a random model still gives a non-empty vector"
        assert not specials & set(vector)
        assert all(w > 0 and math.isfinite(w) for w in vector.values())
        weights = list(vector.values())
        assert weights == sorted(weights, reverse=True)


def test_logit_slices_bound_memory_and_match(encoders, monkeypatch):
    """Slicing the vocabulary projection into many small pieces gives the same vectors."""
    import encoder.torch_backend as module

    enc = encoders["modernbert"]
    whole = enc.encode_documents(TEXTS)
    monkeypatch.setattr(module, "_LOGIT_CHUNK_BYTES", enc.vocab_size * 4 * 3)  # 3 token rows per slice
    for a, b in zip(whole, enc.encode_documents(TEXTS)):
        assert_same_vector(a, b, tol=1e-6)


def test_truncation_is_counted_not_hidden(encoders, caplog):
    enc = encoders["bert"]
    before = enc.truncated_count
    with caplog.at_level("WARNING"):
        enc.encode_documents(["보증금 " * 200, "짧은 글"])
    assert enc.truncated_count == before + 1
    assert "truncated" in caplog.text


def test_max_length_from_config_and_overridable(tiny_model_dir):
    assert SparseEncoder.load(tiny_model_dir).max_length == 64
    short = SparseEncoder.load(tiny_model_dir, max_length=8)
    assert short.max_length == 8
    short.encode_documents(["집주인이 전세 보증금을 돌려주지 않으면 임차권등기명령을 신청할 수 있습니다."])
    assert short.truncated_count == 1


def test_empty_and_whitespace_give_empty_vectors(encoders):
    enc = encoders["bert"]
    assert enc.encode_queries(["", "   \n\t"]) == [{}, {}]
    assert enc.encode_documents([]) == []


@pytest.mark.parametrize("bad", [[None], ["ok", 3], [b"bytes"]])
def test_non_str_input_is_a_clear_error(encoders, bad):
    with pytest.raises(TypeError, match=r"text #\d+ is"):
        encoders["bert"].encode_documents(bad)


def test_single_string_instead_of_list_is_refused(encoders):
    with pytest.raises(TypeError, match="wrap it in a list"):
        encoders["bert"].encode_queries("당뇨")


def test_query_and_document_pruning_are_separate(tiny_model_dir):
    enc = SparseEncoder.load(tiny_model_dir, query_pruning="top_k:5", document_pruning="max_ratio:0.9")
    q, = enc.encode_queries([TEXTS[0]])
    d, = enc.encode_documents([TEXTS[0]])
    assert len(q) == 5
    assert min(d.values()) >= 0.9 * max(d.values())


def test_unknown_or_impossible_precisions_are_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="unknown precision 'fp8'.*fp32, bf16, int8"):
        SparseEncoder.load(tiny_model_dir, precision="fp8")
    with pytest.raises(ValueError, match="int8 dynamic quantisation runs on CPU only"):
        SparseEncoder.load(tiny_model_dir, device="cuda", precision="int8")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_every_precision_encodes_any_masked_lm(arch, precision, tiny_model_dirs):
    enc = SparseEncoder.load(tiny_model_dirs[arch], device="cpu", precision=precision)
    vectors = enc.encode_documents(TEXTS)
    assert enc.precision == precision and all(vectors)
    assert all(w > 0 and math.isfinite(w) for v in vectors for w in v.values())
    assert all(list(v.values()) == sorted(v.values(), reverse=True) for v in vectors)


def test_default_precision_is_the_first_measured_one_this_machine_runs(monkeypatch):
    from encoder import sparse_encoder as se

    assert se.default_precision(None, "cpu") == "fp32"
    assert se.default_precision(["bf16", "int8"], "cuda") == "fp32"  # measured for CPUs only
    monkeypatch.setattr(se, "native_bf16", lambda device: True)
    assert se.default_precision(["bf16", "int8"], "cpu") == "bf16"
    monkeypatch.setattr(se, "native_bf16", lambda device: False)
    assert se.default_precision(["bf16", "int8"], "cpu") == "int8"
    assert se.default_precision("bf16", "cpu") == "fp32"
    monkeypatch.setattr(se, "native_int8", lambda: False)
    assert se.default_precision(["bf16", "int8"], "cpu") == "fp32"


def test_a_model_folder_without_cpu_precision_loads_as_fp32(tiny_model_dir):
    assert SparseEncoder.load(tiny_model_dir, device="cpu").precision == "fp32"


def test_top_tokens_match_card_get_top_tokens(encoders, tiny_model_dirs):
    """What `ksearch encode` shows (the heaviest features as display tokens) is the card's get_top_tokens."""
    enc = encoders["bert"]
    want = sorted(card_reference(tiny_model_dirs["bert"], TEXTS[1]).items(), key=lambda kv: -kv[1])[:5]
    vector = enc.encode_queries([TEXTS[1]])[0]  # no pruning in the tiny model's folder: the full vector, heaviest first
    got = [(enc.display_token(n), round(w, 4)) for n, w in list(vector.items())[:5]]
    assert [w for _, w in got] == [round(w, 4) for _, w in want]
    assert [t for t, _ in got] == [enc.tokenizer.decode([enc.tokenizer.convert_tokens_to_ids(t)]).strip() for t, _ in want]


def test_vocab_hash_is_stable_and_tells_vocabularies_apart(encoders, tiny_model_dirs):
    assert SparseEncoder.load(tiny_model_dirs["bert"]).vocab_hash == encoders["bert"].vocab_hash
    assert encoders["bert"].vocab_hash != encoders["roberta"].vocab_hash


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelNotFoundError, match="ksearch model pull"):
        SparseEncoder.load("nobody/no-such-model")
    with pytest.raises(ModelNotFoundError, match="KSEARCH_MODEL"):
        SparseEncoder.load(str(tmp_path / "not-a-folder-and-not-an-id"))


def test_env_var_selects_the_model(tiny_model_dir, monkeypatch):
    monkeypatch.setenv("KSEARCH_MODEL", str(tiny_model_dir))
    assert SparseEncoder.load().model_id == str(tiny_model_dir)


# ---------------------------------------------------------------- pruning semantics (OpenSearch's)
VEC = {"a": 10.0, "b": 6.0, "c": 3.0, "d": 1.0}


@pytest.mark.parametrize(
    "spec, kept",
    [
        ("none", "abcd"),
        ("top_k:2", "ab"),
        ("max_ratio:0.3", "abc"),  # >= 0.3 * 10
        ("abs_value:3", "abc"),  # >= 3
        ("alpha_mass:0.8", "ab"),  # running sum 10, 16 <= 16; 19 > 16 (OpenSearch's own test case)
        ("alpha_mass:1.0", "abcd"),
    ],
)
def test_pruning_matches_opensearch_semantics(spec, kept):
    assert "".join(Pruning.parse(spec).apply(VEC)) == kept


@pytest.mark.parametrize("spec", ["top_k:0", "top_k:2.5", "max_ratio:1.5", "alpha_mass:0", "abs_value:-1", "bogus:1", "top_k:x"])
def test_bad_pruning_specs_are_refused(spec):
    with pytest.raises(ValueError, match="pruning"):
        Pruning.parse(spec)


def test_pruning_round_trips_through_its_string_form():
    for spec in ["none", "top_k:40", "max_ratio:0.1", "abs_value:0.05", "alpha_mass:0.9"]:
        assert str(Pruning.parse(spec)) == spec
    assert Pruning.parse("top_k:3").type is PruneType.TOP_K
