"""What a hit's explanation says: matched tokens, expansion tokens (what the model added) and unmatched query words."""

from __future__ import annotations

from retrieval.backends import EmbeddedIndex
from retrieval.index_meta import IndexMeta
from retrieval.own_words import OwnWords
from retrieval.passage import Passage
from retrieval.searcher import EXPANSION_TOKENS_SHOWN, Searcher

QUERY = "전세 보증금 못 받으면"
SEGMENTED = {  # what a segmenting model's Kiwi step makes of each text (conjugated stems: 빌려 -> 빌리)
    QUERY: "전세 보증금 못 받",
    "전세는 보증금을 맡기고 집을 빌려 쓰다가 돌려받는 임대차 방식입니다.": "전세 보증금 맡기 집 빌리 쓰 돌려받 임대차 방식",
    "확정일자를 받으면 우선변제권이 생깁니다.": "확정일자 받 우선변제권 생기",
}
PASSAGES = {
    "D1#0": ("전세는 보증금을 맡기고 집을 빌려 쓰다가 돌려받는 임대차 방식입니다.",
             {"전세": 2.0, "보증금": 1.5, "임대인": 0.7, "빌리": 1.6, "임대차": 1.0, "월세": 0.4}),
    "D2#0": ("확정일자를 받으면 우선변제권이 생깁니다.",
             {"확정일자": 2.0, "우선변제권": 1.2, "보증금": 0.5, "못": 0.3, "임차인": 0.9}),
}
QUERY_VECTOR = {"전세": 1.4, "보증금": 1.1, "못": 1.2, "받": 0.3, "임대인": 0.9, "확정일자": 0.8}


class _Encoder:
    """The parts of `SparseEncoder` a `Searcher` uses, with fixed vectors and segmentations."""

    model_id, vocab_hash = "model-a", "vocab-a"

    def encode_queries(self, texts):
        return [dict(QUERY_VECTOR) for _ in texts]

    def model_text(self, texts):
        return [SEGMENTED[t] for t in texts]

    def display_token(self, name):
        return name


def _searcher(tmp_path) -> Searcher:
    index = EmbeddedIndex.create(tmp_path / "t", IndexMeta(name="t", model_id="model-a", vocab_hash="vocab-a"))
    index.add([Passage(id=pid, doc_id=pid.split("#")[0], text=text, domain="legal") for pid, (text, _) in PASSAGES.items()],
              [vector for _, vector in PASSAGES.values()])
    return Searcher(_Encoder(), index)


def test_expansions_are_what_the_model_added_and_query_words_the_passage_lacks_are_apart(tmp_path):
    hits = {h.hit.id: h for h in _searcher(tmp_path).search(QUERY, "sparse", 5, per_document=False).hits}
    first, second = hits["D1#0"], hits["D2#0"]
    # 임대인 (added to query and passage) and 확정일자 (added to the query) are in neither text; 월세 the model added
    # to the passage. Not expansions: 못 and 받 (the query's words), 빌리 (the passage's 빌려), 임대차 (in its text).
    assert set(first.expansion_tokens) == {"임대인", "확정일자", "월세"}
    assert first.expansion_tokens["임대인"] == 0.9  # the larger of query and passage weight
    assert list(first.expansion_tokens) == ["임대인", "확정일자", "월세"]  # heaviest first
    assert first.unmatched_query_tokens == {"못": 1.2}  # 받 is in 돌려받는; 못 is neither in its text nor its vector
    assert "임대인" in first.matched_tokens and "못" not in first.matched_tokens
    # 못 is in the second passage's vector (the model added it there): matched, so not unmatched, and not an expansion
    assert "못" in second.matched_tokens and "못" not in second.unmatched_query_tokens
    assert "못" not in second.expansion_tokens and "확정일자" not in second.expansion_tokens  # in its text
    assert set(second.expansion_tokens) == {"임대인", "임차인"}
    for hit in hits.values():
        payload = hit.to_json()
        assert payload["expansion_tokens"] == hit.top_expansion_tokens()
        assert payload["unmatched_query_tokens"] == hit.unmatched_query_tokens


def test_own_words_are_model_words_parts_of_them_or_pieces_of_the_text():
    words = OwnWords("집주인이 돈을 안 돌려줘요", ["집주인", "돈", "안", "돌려주"])
    assert "돌려주" in words and "집주" in words and "##주인" in words and "돌려줘" in words
    assert "임대인" not in words and "" not in words and "##" not in words


def test_only_the_heaviest_expansions_are_printed(tmp_path):
    hit = _searcher(tmp_path).search(QUERY, "sparse", 1).hits[0]
    hit.expansion_tokens = {f"t{i}": 1.0 / (i + 1) for i in range(40)}
    assert list(hit.to_json()["expansion_tokens"]) == [f"t{i}" for i in range(EXPANSION_TOKENS_SHOWN)]


def test_the_shipped_model_never_calls_a_query_word_an_expansion(tmp_path):
    """The issue's example: 못 of "전세 보증금 못 받으면" is a query word the passages lack, not an expansion."""
    import json
    from pathlib import Path

    from encoder import SparseEncoder
    from ingest import ingest_path
    from retrieval.backends import open_or_create_index
    from retrieval.backends.config import BackendConfig
    from retrieval.own_words import own_words

    rows = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "sample_data" / "corpus.jsonl")
            .read_text(encoding="utf-8").splitlines()[:40]]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    encoder = SparseEncoder.load()
    with open_or_create_index("s", IndexMeta.for_encoder("s", encoder), config=BackendConfig(home=tmp_path / "home")) as store:
        ingest_path(corpus, store, encoder, progress=False)
        result = Searcher(encoder, store).search(QUERY, "sparse", 5)
    assert result.hits and "못" in result.query_tokens
    query_words = own_words(encoder, [QUERY])[0]
    for item in result.hits:
        passage_words = own_words(encoder, [item.hit.text])[0]
        assert "못" not in item.expansion_tokens
        assert item.expansion_tokens and all(t not in query_words and t not in passage_words
                                              for t in item.expansion_tokens)
        assert all(t in query_words and t not in passage_words for t in item.unmatched_query_tokens)
        if "못" not in item.hit.text and "못" not in item.matched_tokens:
            assert "못" in item.unmatched_query_tokens
