"""BM25 on OpenSearch (Kiwi morphemes, `analyzer="kiwi"`) against the embedded index's BM25, on a real node.

Both score Lucene's BM25 (k1 = 1.2, b = 0.75) over the same Kiwi content morphemes, and a ksearch index has one
shard (so OpenSearch's statistics are the whole collection's). They differ in two documented ways:

1. Scale: OpenSearch 2.x scores with `LegacyBM25Similarity`, which keeps the (k1 + 1) numerator that Lucene
   dropped; OpenSearch 3.x defaults to Lucene's `BM25Similarity` (opensearch-project/OpenSearch#17315), as the
   embedded index does. A constant factor: rankings and the min-max hybrid are unchanged.
2. Length: Lucene stores a passage's length in one byte (`SmallFloat.intToByte4`): exact below 40 terms, above
   rounded down to 4 significant bits of (length - 24), e.g. 45 -> 44, 100 -> 96 (at most 1/8 shorter). The
   embedded index uses the exact length, so such a passage scores a little higher on OpenSearch.

So: on passages under 40 morphemes the two agree exactly (same top-k, scores equal up to the scale); for longer
ones each backend's score is Lucene's formula with its own length, which `test_long_passages_...` checks by hand.
(A passage with no content morpheme at all is a third difference: Lucene leaves it out of the document count and
the average length, the embedded index counts it.)
"""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import pytest

from retrieval.backends import EmbeddedIndex
from retrieval.backends.opensearch import OpenSearchIndex
from retrieval.backends.opensearch_connection import OpenSearchConnection
from retrieval.bm25_index import B, K1
from retrieval.hits import Hit
from retrieval.index_meta import IndexMeta
from retrieval.morphemes import content_morphemes_many
from retrieval.passage import Passage

pytestmark = pytest.mark.opensearch

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
EXACT_LENGTHS_BELOW = 40  # Lucene's one-byte length is exact below this many terms
REL_TOL = 1e-5  # both compute in float32


def lucene_length(n: int) -> int:
    """The length Lucene's BM25 uses for a passage of `n` terms: `SmallFloat.byte4ToInt(intToByte4(n))`."""
    if n < 24:
        return n
    j = n - 24
    shift = max(j.bit_length() - 4, 0)
    return 24 + ((j >> shift) << shift)


def bm25(tf: int, df: int, n_docs: int, length: float, avg_length: float) -> float:
    """Lucene's BM25 term score without the (k1 + 1) numerator (what the embedded index computes)."""
    idf = math.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + K1 * (1 - B + B * length / avg_length))


def _meta(name: str) -> IndexMeta:
    return IndexMeta(name=name, model_id="test-model", vocab_hash="test-vocab")


@pytest.fixture(scope="module")
def conn(opensearch_url) -> OpenSearchConnection:
    return OpenSearchConnection(url=opensearch_url, timeout=60)


@pytest.fixture(scope="module")
def scale(conn) -> float:
    """OpenSearch's BM25 / the embedded index's BM25 on this node (see the module docstring)."""
    client = conn.client()
    try:
        major = int(client.info()["version"]["number"].split(".")[0])
    finally:
        client.close()
    return K1 + 1 if major < 3 else 1.0


def _pair(tmp_path: Path, conn: OpenSearchConnection, passages: list[Passage]):
    """The same passages in an embedded index and a Kiwi-analysed OpenSearch index (dummy sparse vectors)."""
    vectors = [{"x": 1.0}] * len(passages)
    embedded = EmbeddedIndex.create(tmp_path / "emb", _meta("emb"))
    embedded.add(passages, vectors)
    embedded.finish_writes()
    name = f"bm25-{uuid.uuid4().hex[:10]}"
    remote = OpenSearchIndex.open_or_create(name, _meta(name), conn=conn, analyzer="kiwi", dead_letter_dir=tmp_path)
    remote.add(passages, vectors)
    remote.finish_writes()
    return embedded, remote


def _sample_passages(limit_docs: int = 400) -> list[Passage]:
    """Sample documents cut into passages at sentence ends (so documents have several), each under 40 morphemes."""
    passages = []
    for line in (SAMPLE / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:limit_docs]:
        row = json.loads(line)
        for n, sentence in enumerate(s for s in row["text"].split(". ") if s.strip()):
            passages.append(Passage(id=f"{row['id']}#{n}", doc_id=row["id"], text=sentence, title=row["title"],
                                    domain=row["domain"], content_hash="h"))
    lengths = content_morphemes_many(p.text for p in passages)
    return [p for p, m in zip(passages, lengths) if 0 < len(m) < EXACT_LENGTHS_BELOW]


def _assert_same_ranking(got: list[Hit], want: list[Hit], scale: float, what: str) -> None:
    """Same scores (OpenSearch's divided by `scale`) rank by rank; the same ids except among ties at the cut."""
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        assert math.isclose(g.score / scale, w.score, rel_tol=REL_TOL), (what, g.id, g.score, w.id, w.score)
    if not want:
        return
    last = want[-1].score
    above = lambda hits, s: {h.id for h in hits if h.score > s * (1 + REL_TOL)}  # noqa: E731
    assert above(got, last * scale) == above(want, last), what
    for i in range(len(want) - 1):  # within a run of equal scores the order is the backend's own tie-break
        if want[i].score > want[i + 1].score * (1 + REL_TOL):
            assert {h.id for h in got[: i + 1]} == {h.id for h in want[: i + 1]}, (what, i)


def test_bm25_ranks_the_same_on_both_backends(tmp_path, conn, scale):
    passages = _sample_passages()
    assert len(passages) > 500 and len({p.doc_id for p in passages}) < len(passages)
    # (ksearch's Kiwi has no multi-word dictionary since it was dropped for start-up time, so no morpheme holds a
    # space any more; the writer still keeps one such morpheme one term on both backends)
    embedded, remote = _pair(tmp_path, conn, passages)
    queries = [json.loads(line)["text"] for line in (SAMPLE / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    try:
        compared = 0
        for query in queries[::10]:
            for per_document in (False, True):
                want = embedded.search_bm25(query, 10, per_document=per_document)
                got = remote.search_bm25(query, 10, per_document=per_document)
                _assert_same_ranking(got, want, scale, f"{query} (per_document={per_document})")
                compared += bool(want)
        assert compared >= 100
    finally:
        remote.delete_index()
        remote.close()
        embedded.close()


def test_long_passages_score_with_lucenes_one_byte_length_on_opensearch(tmp_path, conn, scale):
    lengths = [5, 23, 39, 40, 41, 45, 61, 100, 300]
    passages = [Passage(id=f"L{n}#0", doc_id=f"L{n}", text="target " + " ".join(["filler"] * (n - 1)), domain="legal",
                        content_hash="h") for n in lengths]
    passages.append(Passage(id="other#0", doc_id="other", text="unrelated words", domain="legal", content_hash="h"))
    assert [len(m) for m in content_morphemes_many(p.text for p in passages)] == [*lengths, 2]
    embedded, remote = _pair(tmp_path, conn, passages)
    try:
        n_docs, avg = len(passages), (sum(lengths) + 2) / len(passages)
        want = {h.id: h.score for h in embedded.search_bm25("target", 20)}
        got = {h.id: h.score for h in remote.search_bm25("target", 20)}
        assert set(want) == set(got) == {f"L{n}#0" for n in lengths}
        for n in lengths:
            assert math.isclose(want[f"L{n}#0"], bm25(1, len(lengths), n_docs, n, avg), rel_tol=REL_TOL), n
            lucene = scale * bm25(1, len(lengths), n_docs, lucene_length(n), avg)
            assert math.isclose(got[f"L{n}#0"], lucene, rel_tol=REL_TOL), (n, lucene_length(n))
            exact = math.isclose(got[f"L{n}#0"] / scale, want[f"L{n}#0"], rel_tol=REL_TOL)
            assert exact is (lucene_length(n) == n), n  # the documented difference, and only there
        assert [n for n in lengths if lucene_length(n) != n] == [41, 45, 61, 100, 300]
    finally:
        remote.delete_index()
        remote.close()
        embedded.close()


def test_a_morpheme_holding_a_space_stays_one_term():
    from retrieval.backends.opensearch_mapping import morpheme_terms

    # a Kiwi with a multi-word dictionary (or a user's) returns such morphemes; the embedded BM25 counts each as one term
    assert morpheme_terms(["손목터널 증후군", "통증"]).split() == ["손목터널_증후군", "통증"]
