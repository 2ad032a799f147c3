"""The query-side expansion gate: expansions are kept only near the query's own words (Kiwi's neighbours)."""

from __future__ import annotations

import json
import shutil

import pytest

from encoder.expansion_gate import ExpansionGate
from encoder.kiwi_neighbours import KiwiNeighbours


class FixedNeighbours:
    """A neighbour lookup with a fixed table, so the gate's own rules are tested apart from Kiwi."""

    def __init__(self, table: dict[str, tuple[tuple[str, float], ...]]) -> None:
        self.table = table

    def of(self, word: str) -> tuple[tuple[str, float], ...]:
        return self.table.get(word, ())


def test_the_gate_keeps_own_words_and_their_neighbours_and_drops_or_damps_the_rest():
    vector = {"영장": 2.0, "체포": 1.0, "목걸이": 0.8, "구속": 0.5}
    table = FixedNeighbours({"영장": (("체포", 0.8),), "목걸이": (("구속", 0.9),)})
    assert ExpansionGate().apply(vector, {"영장"}, table) == {"영장": 2.0, "체포": 1.0}
    damped = ExpansionGate(outside_weight=0.25).apply(vector, {"영장"}, table)
    assert damped == {"영장": 2.0, "체포": 1.0, "목걸이": 0.2, "구속": 0.125}


@pytest.mark.parametrize("value, expected", [(None, None), (False, None), (True, ExpansionGate()),
                                             ({"neighbours": 5, "outside_weight": 0.5},
                                              ExpansionGate(neighbours=5, outside_weight=0.5))])
def test_ksearch_json_turns_the_gate_on_with_defaults_or_fields(value, expected):
    assert ExpansionGate.parse(value) == expected


@pytest.mark.parametrize("value, message", [("yes", "expected true, false or an object"),
                                            ({"radius": 3}, "unknown field 'radius'"),
                                            ({"outside_weight": 1.5}, "outside_weight in \\[0, 1\\)"),
                                            ({"neighbours": "many"}, "invalid literal")])
def test_a_bad_gate_setting_is_refused_naming_the_field(value, message):
    with pytest.raises(ValueError, match=f"expansion_gate: .*{message}"):
        ExpansionGate.parse(value)


def test_kiwi_neighbours_stay_inside_the_vocabulary():
    vocabulary = ["체포", "연행", "구속", "목걸이", "##포"]
    near = dict(KiwiNeighbours(vocabulary).of("체포"))
    assert "연행" in near and set(near) <= set(vocabulary) - {"체포"}
    assert KiwiNeighbours(vocabulary).of("##포") == ()  # word pieces are not looked up


def test_the_shipped_model_with_the_gate_drops_the_unrelated_words_it_adds():
    from encoder.sparse_encoder import SparseEncoder

    encoder = SparseEncoder.load()
    query = "밥 먹고 나서 혈당이 너무 올라요"
    plain = encoder.encode_queries([query])[0]
    encoder.expansion_gate = ExpansionGate()
    gated = encoder.encode_queries([query])[0]
    assert "레몬" in plain and "레몬" not in gated  # added by the model, near no word of the query
    assert {"혈당", "당뇨", "식후"} <= set(gated)  # its own word and two neighbours of 혈당 keep their weights
    assert all(gated[t] == plain[t] for t in gated) and len(gated) < len(plain)


def test_a_model_folder_turns_the_gate_on_and_server_query_models_refuse_it(tiny_model_dir, tmp_path):
    from encoder.sparse_encoder import SparseEncoder
    from retrieval.backends.ml_commons_models import needs_query_model

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "ksearch.json").write_text(json.dumps({"expansion_gate": {"neighbours": 5}}))
    encoder = SparseEncoder.load(folder, backend="torch")
    assert encoder.expansion_gate == ExpansionGate(neighbours=5)
    assert needs_query_model(encoder)  # a server-side query encoding would differ from the client's
    from encoder.torchscript_export import export_torchscript

    with pytest.raises(ValueError, match="expansion_gate looks up Kiwi's neighbours"):
        export_torchscript(folder, tmp_path / "q.zip", queries=True)
    (folder / "ksearch.json").write_text(json.dumps({"expansion_gate": {"min_score": 2}}))
    with pytest.raises(ValueError, match="expansion_gate: .*min_score in \\[0, 1\\]"):
        SparseEncoder.load(folder, backend="torch")


def test_the_model_cards_manual_expansion_figures_come_from_the_stored_judgments():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    rows = [json.loads(line) for line in (root / "eval_data/expansion_judgments/v3-and-gate.jsonl").open(encoding="utf-8")]
    card = (root / "encoder/MODEL_CARD.md").read_text(encoding="utf-8")
    for column in ("in_v3_top10", "in_gated_top10"):
        judged = [r["related"] for r in rows if r[column]]
        assert f"{sum(judged) / len(judged):.1%} ({len(judged)} tokens, 87 queries)" in card
