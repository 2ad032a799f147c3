"""Vocabulary tokens map to OpenSearch-safe feature names and back, losslessly."""

from __future__ import annotations

import pytest

from encoder import SparseEncoder, feature_to_token, is_safe_feature_name, token_to_feature

AWKWARD = ["", " ", ".", "..", "a.b", "%", "%2E", "%%", "##보증", "▁임대인", "Ġë°ĺ", "제623조.", "tab\there",
           "new\nline", "\u200b", "\x00", "100%", "x.y.z", "임대인", "[UNK]", "e\u0301", "🙂", "a b"]


@pytest.mark.parametrize("token", AWKWARD)
def test_round_trip_and_safe(token):
    name = token_to_feature(token)
    assert feature_to_token(name) == token
    assert is_safe_feature_name(name), name
    assert "." not in name and name.strip() == name and name


def test_plain_korean_tokens_are_unchanged():
    for token in ["임대인", "##보증", "▁당뇨", "HbA1c", "#"]:
        assert token_to_feature(token) == token


def test_mapping_is_injective_over_awkward_tokens():
    names = [token_to_feature(t) for t in AWKWARD]
    assert len(set(names)) == len(AWKWARD)


def test_unsafe_names_are_detected():
    for name in ["", "a.b", " x", "a\tb"]:
        assert not is_safe_feature_name(name)


def test_every_vocabulary_token_of_real_tokenizers_maps_safely(tiny_model_dirs):
    for model_dir in tiny_model_dirs.values():
        enc = SparseEncoder.load(model_dir)
        vocab = enc.tokenizer.get_vocab()
        for token, token_id in vocab.items():
            name = enc.feature_names[token_id]
            assert is_safe_feature_name(name) and feature_to_token(name) == token
        assert len(set(enc.feature_names)) == len(enc.feature_names)


def test_escaping_each_unsafe_character_in_turn_gives_the_feature_name():
    """What the TorchScript export's tokenizer decoder does: one replacement per unsafe character, '%' first."""
    from encoder.feature_names import escape_character, unsafe_characters

    chars = unsafe_characters(AWKWARD)
    assert chars[0] == "%" and {".", " ", "\t", "\n", "\u200b", "\x00"} <= set(chars)
    for token in filter(None, AWKWARD):
        escaped = token
        for char in chars:
            escaped = escaped.replace(char, escape_character(char))
        assert escaped == token_to_feature(token), token


def test_a_model_folder_names_its_segmenter_without_loading_the_model(tiny_model_dir, tmp_path):
    import json
    import shutil

    from encoder.model_resolution import SHIPPED_MODEL_DIR
    from encoder.segmentation import KiwiSegmenter

    assert KiwiSegmenter.for_model(tiny_model_dir) is None
    shipped = KiwiSegmenter.for_model(SHIPPED_MODEL_DIR)
    settings = json.loads((SHIPPED_MODEL_DIR / "ksearch.json").read_text(encoding="utf-8"))
    assert shipped is not None and shipped.config() == settings["pre_segmentation"]
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "ksearch.json").write_text('{"pre_segmentation": {"type": "mecab"}}')
    with pytest.raises(ValueError, match="mecab"):
        KiwiSegmenter.for_model(broken)
