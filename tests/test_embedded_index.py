"""The embedded index: exact scores, replacement, tombstones, crash leftovers, the vocabulary guard (its approximate
index: test_approximate_index.py)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from retrieval.backends import EmbeddedIndex, SearchFilters
from retrieval.backends.manifest import read_manifest
from retrieval.errors import IndexNotFoundError, VocabularyMismatchError
from retrieval.hybrid import fuse, min_max
from retrieval.hits import Hit
from retrieval.index_meta import IndexMeta
from retrieval.passage import Passage

META = IndexMeta(name="t", model_id="model-a", vocab_hash="vocab-a")


def _random_corpus(rng, n=60, vocab=40):
    names = [f"tok{i}" for i in range(vocab)]
    passages, vectors = [], []
    for i in range(n):
        doc = f"D{i // 3}"
        passages.append(Passage(id=f"{doc}#{i % 3}", doc_id=doc, text=f"문서 {i} 보증금", domain="legal" if i % 2 else "medical"))
        chosen = rng.choice(vocab, size=rng.integers(1, 10), replace=False)
        vectors.append({names[j]: float(rng.uniform(0.1, 3)) for j in chosen})
    return passages, vectors


def test_scores_equal_brute_force_dot_product(tmp_path):
    rng = np.random.default_rng(0)
    passages, vectors = _random_corpus(rng)
    index = EmbeddedIndex.create(tmp_path / "t", META)
    index.add(passages[:25], vectors[:25])
    index.add(passages[25:], vectors[25:])  # two segments
    index.close()
    index = EmbeddedIndex.open(tmp_path / "t")
    query = {f"tok{j}": float(rng.uniform(0.1, 2)) for j in range(0, 40, 3)}
    brute = {p.id: sum(w * v.get(t, 0.0) for t, w in query.items()) for p, v in zip(passages, vectors)}
    hits = index.search(query, k=1000, per_document=False)
    assert len(hits) == sum(s > 0 for s in brute.values())
    for hit in hits:
        assert hit.score == pytest.approx(brute[hit.id], rel=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # per document: each document's best passage
    best = {}
    for pid, s in brute.items():
        doc = pid.split("#")[0]
        if s > 0 and s > best.get(doc, (None, 0))[1]:
            best[doc] = (pid, s)
    docs = index.search(query, k=1000)
    assert {h.doc_id: h.id for h in docs} == {d: pid for d, (pid, _) in best.items()}
    legal = index.search(query, k=1000, filters=SearchFilters(domain="legal"), per_document=False)
    assert legal and all(h.domain == "legal" for h in legal)
    explained = index.explain(query, hits[0].id)
    assert sum(c.contribution for c in explained.values()) == pytest.approx(hits[0].score, rel=1e-5)


def test_replace_delete_compact_and_persistence(tmp_path):
    index = EmbeddedIndex.create(tmp_path / "t", META)
    index.add([Passage("a#0", "a", "하나"), Passage("a#1", "a", "둘")], [{"x": 1.0}, {"y": 1.0}])
    index.add([Passage("a#0", "a", "하나 새것")], [{"x": 5.0}])  # replaces by id
    assert index.count() == 2
    assert index.get_passages(["a#0"])[0].text == "하나 새것"
    assert index.delete(["a#1", "nope"]) == 1
    index.add([Passage("a#1", "a", "다시")], [{"y": 2.0}])  # re-added after its tombstone
    index.delete(["a#1"])
    index.finish_writes()
    index.close()
    reopened = EmbeddedIndex.open(tmp_path / "t")
    assert reopened.content_hashes().keys() == {"a#0"}
    assert reopened.search({"x": 1.0})[0].score == pytest.approx(5.0)
    assert reopened.search_bm25("하나")[0].id == "a#0"
    reopened.compact()
    reopened.close()
    assert sorted(p.name for p in (tmp_path / "t").glob("seg-*")) == ["seg-000006"]
    assert EmbeddedIndex.open(tmp_path / "t").get_vectors(["a#0"]) == {"a#0": {"x": 5.0}}


def test_crash_leftovers_are_ignored_then_cleaned(tmp_path):
    root = tmp_path / "t"
    index = EmbeddedIndex.create(root, META)
    index.add([Passage("a#0", "a", "하나")], [{"x": 1.0}])
    index.close()
    # what a writer killed before its manifest commit leaves behind
    (root / "seg-000009").mkdir()
    (root / "seg-000009" / "passages.jsonl").write_text("garbage", encoding="utf-8")
    (root / ".tmp-seg-000010-123").mkdir()
    (root / ".tmp-manifest.json-123").write_text("{not json", encoding="utf-8")
    reader = EmbeddedIndex.open(root)
    assert reader.count() == 1
    writer = EmbeddedIndex.open(root)
    writer.add([Passage("b#0", "b", "둘")], [{"y": 1.0}])
    writer.close()
    assert not (root / "seg-000009").exists() and not list(root.glob(".tmp-*"))
    assert EmbeddedIndex.open(root).count() == 2


def test_arrays_are_plain_npy(tmp_path):
    index = EmbeddedIndex.create(tmp_path / "t", META)
    index.add([Passage("a#0", "a", "하나")], [{"x": 1.5}])
    for npy in (tmp_path / "t").glob("seg-*/*.npy"):
        np.load(npy, allow_pickle=False)
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["meta"]["vocab_hash"] == "vocab-a" and manifest["meta"]["format_version"] == 1


def test_vocabulary_guard_names_both_models(tmp_path):
    index = EmbeddedIndex.create(tmp_path / "t", META)
    index.check_encoder("model-a", "vocab-a")
    index.check_encoder("model-a-finetuned", "vocab-a")  # same vocabulary: allowed (warning)
    with pytest.raises(VocabularyMismatchError, match="model-a.*model-b"):
        index.check_encoder("model-b", "vocab-b")
    with pytest.raises(IndexNotFoundError, match="ksearch ingest"):
        EmbeddedIndex.open(tmp_path / "missing")


def test_hybrid_fusion_formula():
    assert min_max([3.0, 1.0, 2.0]) == [1.0, 0.0, 0.5]
    sparse = [Hit("a#0", "a", 10.0), Hit("b#0", "b", 6.0), Hit("c#0", "c", 2.0)]
    bm25 = [Hit("c#1", "c", 9.0), Hit("a#0", "a", 3.0)]
    fused = fuse(sparse, bm25, 10, sparse_weight=0.5)
    # a: .5*1 + .5*0 ; b: .5*.5 ; c: .5*0 + .5*1
    assert [(h.doc_id, round(h.score, 6)) for h in fused] == [("a", 0.5), ("c", 0.5), ("b", 0.25)]
    assert fused[1].id == "c#0"  # the sparse ranking's passage represents the document


def test_approximate_above_comes_from_the_settings_through_the_backend_config(tmp_path, monkeypatch):
    from retrieval.backends import BackendConfig, open_index, open_or_create_index
    from retrieval.settings import Settings

    open_or_create_index("t", META, config=BackendConfig(home=tmp_path)).close()
    assert open_index("t", config=BackendConfig(home=tmp_path)).approximate_above is None
    monkeypatch.setenv("KSEARCH_APPROXIMATE_ABOVE", "500000")
    config = Settings().backend_config(home=tmp_path)
    assert open_index("t", config=config).approximate_above == 500_000
    monkeypatch.delenv("KSEARCH_APPROXIMATE_ABOVE")
    assert open_index("t", config=Settings().backend_config(home=tmp_path)).approximate_above is None


def test_bm25_is_lucenes_with_opensearchs_default_k1_and_b():
    """idf = ln(1 + (N - df + 0.5) / (df + 0.5)); tf part = tf / (tf + k1 (1 - b + b |d| / avgdl)), k1 1.2, b 0.75."""
    import math

    from retrieval.bm25_index import BM25Index

    docs = [["임대인", "보증금"], ["임대인"], ["보증금", "보증금", "반환", "소송"]]
    index = BM25Index.build(["a", "b", "c"], docs)
    ids = index.retriever.get_tokens_ids(["보증금"])
    scores = index.retriever.get_scores_from_ids(ids)
    avgdl, idf = 7 / 3, math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    expected = [idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * len(d) / avgdl)) if tf else 0.0
                for d, tf in ((d, d.count("보증금")) for d in docs)]
    assert list(scores) == pytest.approx(expected, rel=1e-5)


def test_hybrid_shows_each_document_by_its_best_fused_passage():
    """Sparse favours d1#0, BM25 d1#1; fused, d1#1 wins (0.5 * 0.75 + 0.5 * 1 > 0.5 * 1), so it represents d1."""
    from retrieval.hits import Hit
    from retrieval.searcher import Searcher

    class TwoRankings(EmbeddedIndex):
        def __init__(self):  # no files: only the two rankings below
            self.meta = META

        def check_encoder(self, model_id, vocab_hash):
            pass

        def search(self, query_tokens, k=10, *, filters=None, per_document=True):
            assert not per_document
            return [Hit("d1#0", "d1", 1.0), Hit("d1#1", "d1", 0.8), Hit("d2#0", "d2", 0.2)]

        def search_bm25(self, text, k=10, *, filters=None, per_document=True):
            assert not per_document
            return [Hit("d1#1", "d1", 5.0), Hit("d2#0", "d2", 3.0)]

    encoder = type("Encoder", (), {"model_id": "m", "vocab_hash": "v"})()
    hits = Searcher(encoder, TwoRankings()).rank("q", "hybrid", 10, query_tokens={"q": 1.0})
    assert [(h.id, h.doc_id) for h in hits] == [("d1#1", "d1"), ("d2#0", "d2")]
    assert hits[0].score == pytest.approx(0.875)
    # KSEARCH_HYBRID_WEIGHT 0.9 leans on sparse: d1#0 (0.9 * 1) beats d1#1 (0.9 * 0.75 + 0.1 * 1)
    leaning = Searcher(encoder, TwoRankings(), hybrid_weight=0.9).rank("q", "hybrid", 10, query_tokens={"q": 1.0})
    assert [(h.id, round(h.score, 6)) for h in leaning] == [("d1#0", 0.9), ("d2#0", 0.0)]
    with pytest.raises(ValueError, match="between 0 and 1"):
        Searcher(encoder, TwoRankings(), hybrid_weight=1.5)


def test_the_hybrid_weight_comes_from_the_settings(monkeypatch):
    from pydantic import ValidationError

    from retrieval.settings import Settings

    assert Settings().hybrid_weight == 0.5
    monkeypatch.setenv("KSEARCH_HYBRID_WEIGHT", "0.8")
    assert Settings().hybrid_weight == 0.8
    monkeypatch.setenv("KSEARCH_HYBRID_WEIGHT", "1.5")
    with pytest.raises(ValidationError, match="hybrid_weight"):
        Settings()


def test_a_morpheme_read_from_disk_is_one_object_however_many_rows_have_it(tmp_path):
    index = EmbeddedIndex.create(tmp_path / "t", META)
    index.add([Passage("a#0", "a", "보증금 반환"), Passage("a#1", "a", "보증금 청구")], [{"x": 1.0}, {"y": 1.0}])
    index.add([Passage("b#0", "b", "보증금 계약")], [{"x": 2.0}])  # another segment
    index.close()
    reopened = EmbeddedIndex.open(tmp_path / "t")
    rows = reopened._view().morphemes
    assert [r[0] for r in rows] == ["보증금"] * 3 and len({id(r[0]) for r in rows}) == 1
    reopened.compact()  # the merged segment keeps the rows' own objects, and BM25 is built over them
    reopened.finish_writes()
    assert len({id(r[0]) for r in reopened._view().morphemes}) == 1
    assert {h.id for h in reopened.search_bm25("보증금", per_document=False)} == {"a#0", "a#1", "b#0"}
    assert reopened.search_bm25("청구")[0].id == "a#1"
    reopened.close()


def test_threads_sharing_one_index_write_in_turn(tmp_path):
    """Without the per-object write lock two threads read the same next_seq and one segment overwrites the other."""
    root = tmp_path / "t"
    index = EmbeddedIndex.create(root, META)
    passages, vectors = _random_corpus(np.random.default_rng(3), n=240)
    errors = []

    def write(part: int) -> None:
        try:
            for start in range(part * 10, 240, 40):
                index.add(passages[start : start + 10], vectors[start : start + 10])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    manifest = read_manifest(root)
    assert [s.seq for s in manifest.segments] == list(range(1, 25)) and manifest.next_seq == 25
    assert index.count() == 240
    index.close()
    assert EmbeddedIndex.open(root).content_hashes() == {p.id: p.content_hash for p in passages}
