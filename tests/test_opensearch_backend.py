"""`OpenSearchIndex` against a real OpenSearch node: mapping, ingest/resume, dead letters, modes, parity, CLI."""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from encoder import SparseEncoder, token_to_feature
from ingest import ingest_path
from ksearch.opensearch_node import free_port
from retrieval.backends import EmbeddedIndex, SearchFilters
from retrieval.backends.opensearch import OpenSearchIndex
from retrieval.backends.opensearch_connection import OpenSearchConnection, OpenSearchUnavailableError
from retrieval.errors import IndexNotFoundError, VocabularyMismatchError
from retrieval.index_meta import IndexMeta
from retrieval.passage import Passage
from retrieval.searcher import Searcher
from tiny_models import KOREAN_SENTENCES

pytestmark = [pytest.mark.opensearch, pytest.mark.every_opensearch_version]

QUERIES = ["전세 보증금 돌려받기", "당뇨 진단 기준", "근로자 해고 예고", "교통사고 합의금", "고혈압 운동", "임대인 의무",
           "퇴직금 지급", "MRI 본인부담금"]
REL_TOL = 0.01  # OpenSearch stores 9 significant bits of each weight (< 0.4 % low); scores compared within 1 %


def _name(prefix: str = "kt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _corpus(path: Path, n: int = 36) -> Path:
    rows = []
    for i in range(n):
        k = len(KOREAN_SENTENCES)
        parts = [KOREAN_SENTENCES[(i + j) % k] for j in range(1 + (i % 4 == 0) * 4)]  # every 4th doc spans passages
        rows.append({"id": f"D{i:03d}", "domain": "legal" if i % 2 else "medical", "title": f"문서 {i}",
                     "text": " ".join(parts) + f" 번호 {i}"})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def conn(opensearch_url) -> OpenSearchConnection:
    return OpenSearchConnection(url=opensearch_url, timeout=60)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir) -> SparseEncoder:
    return SparseEncoder.load(tiny_model_dir)


@pytest.fixture(scope="module")
def both(tmp_path_factory, conn, encoder):
    """The same corpus ingested into an embedded index and an OpenSearch index (with the first reports)."""
    root = tmp_path_factory.mktemp("os")
    corpus = _corpus(root / "c.jsonl")
    name = _name()
    embedded = EmbeddedIndex.create(root / "emb", IndexMeta.for_encoder("emb", encoder))
    emb_report = ingest_path(corpus, embedded, encoder, progress=False, write_batch=16)
    store = OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder), conn=conn,
                                           dead_letter_dir=root / "dead")
    os_report = ingest_path(corpus, store, encoder, progress=False, write_batch=16)
    yield {"corpus": corpus, "embedded": embedded, "store": store, "name": name, "emb_report": emb_report,
           "os_report": os_report, "root": root}
    store.delete_index()
    store.close()
    embedded.close()


@pytest.fixture
def small(conn, encoder, tmp_path):
    """An empty OpenSearch index, deleted afterwards."""
    name = _name("small")
    store = OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder), conn=conn,
                                           dead_letter_dir=tmp_path / "dead")
    yield store
    store.delete_index()
    store.close()


def _passage(pid: str, text: str = "보증금 반환", domain: str = "legal") -> Passage:
    return Passage(id=pid, doc_id=pid.split("#")[0], text=text, title=pid, domain=domain, content_hash=f"h-{pid}")


def test_mapping_alias_and_meta(both, conn, encoder):
    client, name = both["store"].client, both["name"]
    (concrete,) = client.indices.get_alias(name=name)
    assert re.fullmatch(rf"{name}-\d{{20}}", concrete)
    mapping = client.indices.get_mapping(index=name)[concrete]["mappings"]
    props = mapping["properties"]
    assert props["sparse"]["type"] == "rank_features"
    assert props["doc_id"]["type"] == props["domain"]["type"] == "keyword"
    assert props["chunk"]["type"] == "integer"
    nori = "analysis-nori" in {p["component"] for p in client.cat.plugins(format="json")}
    assert props["text"]["type"] == "text" and props["text"]["analyzer"] == ("nori" if nori else "standard")
    assert mapping["_meta"]["bm25_analyzer"] == ("nori" if nori else "kiwi") and ("text_morphemes" in props) is not nori
    meta = mapping["_meta"]["ksearch"]
    assert (meta["model_id"], meta["vocab_hash"], meta["format_version"]) == (encoder.model_id, encoder.vocab_hash, 1)
    assert meta["document_pruning"] == str(encoder.document_pruning)
    with OpenSearchIndex.open(name, conn=conn) as reopened:
        assert reopened.meta.vocab_hash == encoder.vocab_hash


def test_ingest_resume_skips_everything_without_duplicates(both, encoder):
    store, report = both["store"], both["os_report"]
    assert report.written == report.passages > report.documents_read == 36 and not report.rejected
    again = ingest_path(both["corpus"], store, encoder, progress=False)
    assert (again.written, again.skipped_unchanged) == (0, report.passages)
    assert store.count() == report.passages == both["embedded"].count()
    assert store.content_hashes() == both["embedded"].content_hashes()


def test_stats_match_the_embedded_index(both):
    a, b = both["store"].stats(), both["embedded"].stats()
    assert (a.passages, a.documents, a.documents_by_domain, a.passages_by_domain) == \
           (b.passages, b.documents, b.documents_by_domain, b.passages_by_domain)
    assert math.isclose(a.avg_nonzero_weights, b.avg_nonzero_weights, rel_tol=1e-6)


def test_every_mode_returns_explained_hits(both, encoder):
    searcher = Searcher(encoder, both["store"])
    for mode in ("sparse", "neural_sparse", "rank_feature", "bm25", "hybrid"):
        result = searcher.search("전세 보증금 돌려받기", mode, 5)
        assert result.hits, mode
        assert len({h.hit.doc_id for h in result.hits}) == len(result.hits), mode  # collapsed by doc_id
    top = searcher.search("전세 보증금 돌려받기", "sparse", 1).hits[0]
    assert top.matched_tokens and top.contributions


def test_domain_filter_collapse_and_pagination(both, encoder):
    store = both["store"]
    tokens = Searcher(encoder, store).query_tokens("임대인 보증금 당뇨")
    legal = store.search(tokens, 10, filters=SearchFilters(domain="legal"))
    assert legal and {h.domain for h in legal} == {"legal"}
    assert {h.domain for h in store.search_bm25("보증금", 10, filters=SearchFilters(domain="medical"))} <= {"medical"}
    passages = store.search(tokens, 50, per_document=False)
    documents = store.search(tokens, 50)
    assert len({h.doc_id for h in passages}) < len(passages)  # some documents have several passages
    assert len({h.doc_id for h in documents}) == len(documents)
    assert [h.id for h in store.search(tokens, 5, offset=5)] == [h.id for h in documents[5:10]]


def test_parity_with_the_embedded_index(both, encoder):
    """Same top-10 documents as the embedded index for every query, in neural_sparse and rank_feature.

    Tolerance: OpenSearch keeps 9 significant bits of each stored weight (rounded down, < 0.4 %), so
    the i-th scores must agree within 1 % relative, and the document *sets* must agree except for
    documents whose score is within 1 % of the 10th score (a tie that truncation may reorder).
    """
    store, embedded = both["store"], both["embedded"]
    searcher = Searcher(encoder, embedded)
    for query in QUERIES:
        tokens = searcher.query_tokens(query)
        want = embedded.search(tokens, 10)
        cutoff = want[-1].score * (1 + REL_TOL) if len(want) == 10 else 0.0
        for got in (store.search(tokens, 10), store.search_rank_feature(tokens, 10)):
            assert len(got) == len(want), query
            for g, w in zip(got, want):
                assert math.isclose(g.score, w.score, rel_tol=REL_TOL), (query, g, w)
            clear_want = {h.doc_id for h in want if h.score > cutoff}
            clear_got = {h.doc_id for h in got if h.score > cutoff}
            assert clear_want <= {h.doc_id for h in got} and clear_got <= {h.doc_id for h in want}, query


def test_dotted_token_in_neural_sparse_and_rank_feature(small):
    dotted = token_to_feature("6.5")
    assert "." not in dotted
    small.add([_passage("P1#0"), _passage("P2#0")], [{dotted: 2.0, "보증금": 1.0}, {"보증금": 3.0}])
    small.finish_writes()
    for search in (small.search, small.search_rank_feature):
        hits = search({dotted: 1.5}, 10)
        assert [h.id for h in hits] == ["P1#0"] and math.isclose(hits[0].score, 3.0, rel_tol=REL_TOL)
    assert small.explain({dotted: 1.5}, "P1#0")[dotted].document_weight == 2.0


def test_rejected_passages_go_to_the_dead_letter_file(small):
    passages = [_passage("OK#0"), _passage("ZERO#0"), _passage("NAN#0"), _passage("NEG#0"), _passage("HUGE#0")]
    vectors = [{"보증금": 1.0}, {"보증금": 0.0}, {"보증금": float("nan")}, {"반환": -1.0}, {"보증금": 1e39}]
    small.add(passages, vectors)
    small.finish_writes()
    rejected = {r.passage_id: r for r in small.rejected_writes()}
    assert set(rejected) == {"ZERO#0", "NAN#0", "NEG#0", "HUGE#0"}
    assert small.count() == 1 and small.get_passages(["OK#0"])[0].text == "보증금 반환"
    lines = [json.loads(line) for line in small.dead_letter_file.read_text(encoding="utf-8").splitlines()]
    assert {d["id"] for d in lines} == set(rejected)
    assert all(d["reason"] for d in lines) and "nan" in rejected["NAN#0"].reason.lower()
    assert rejected["ZERO#0"].status is None and "> 0" in rejected["ZERO#0"].reason  # refused before sending
    assert rejected["HUGE#0"].status == 400  # beyond float32: OpenSearch refuses it, and says why


def test_vocabulary_guard_names_both_models(both, conn, tiny_model_dirs):
    other = SparseEncoder.load(tiny_model_dirs["roberta"])
    with OpenSearchIndex.open(both["name"], conn=conn) as store:
        with pytest.raises(VocabularyMismatchError) as err:
            Searcher(other, store)
        assert store.meta.model_id in str(err.value) and other.model_id in str(err.value)
        with pytest.raises(VocabularyMismatchError):
            ingest_path(both["corpus"], store, other, progress=False)


def test_kiwi_morphemes_when_nori_is_not_used(conn, encoder, tmp_path):
    name = _name("kiwi")
    store = OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder), conn=conn, analyzer="kiwi",
                                           dead_letter_dir=tmp_path)
    try:
        store.add([_passage("A#0", "임대인이 보증금을 돌려주지 않았다"), _passage("B#0", "당뇨병 치료")],
                  [{"보증금": 1.0}, {"당뇨": 1.0}])
        store.finish_writes()
        mapping = store.client.indices.get_mapping(index=name)[store.concrete]["mappings"]
        assert mapping["properties"]["text_morphemes"]["analyzer"] == "whitespace"
        assert [h.id for h in store.search_bm25("보증금은 언제 돌려받나", 5)] == ["A#0"]
    finally:
        store.delete_index()
        store.close()


def test_rebuild_swaps_the_alias_at_the_end(small, conn, encoder):
    small.add([_passage("OLD#0")], [{"보증금": 1.0}])
    small.finish_writes()
    old = small.concrete
    with OpenSearchIndex.open_or_create(small.name, small.meta, conn=conn, rebuild=True) as rebuilt:
        assert rebuilt.concrete != old and rebuilt.content_hashes() == {}
        rebuilt.add([_passage("NEW#0"), _passage("NEW2#0")], [{"보증금": 1.0}, {"반환": 1.0}])
        rebuilt.client.indices.refresh(index=rebuilt.concrete)
        with OpenSearchIndex.open(small.name, conn=conn) as reader:
            assert reader.count() == 1  # searches still see the old index
        rebuilt.finish_writes()
    with OpenSearchIndex.open(small.name, conn=conn) as reopened:
        assert reopened.concrete == rebuilt.concrete and reopened.count() == 2
    assert not small.client.indices.exists(index=old)
    small.concrete = rebuilt.concrete  # so the fixture deletes the new one


def test_clear_errors_without_credentials(conn):
    port = free_port()
    down = OpenSearchConnection(url=f"http://admin:s3cret-pw@127.0.0.1:{port}", timeout=2)
    with pytest.raises(OpenSearchUnavailableError, match="is not reachable") as err:
        OpenSearchIndex.open("sample", conn=down)
    assert "s3cret" not in str(err.value) and "s3cret" not in repr(down)
    with pytest.raises(IndexNotFoundError, match="does not exist"):
        OpenSearchIndex.open(_name("missing"), conn=conn)
    with pytest.raises(ValueError, match="lowercase"):
        OpenSearchIndex.open("Upper", conn=conn)


def test_cli_ingest_search_eval_on_opensearch(tmp_path, monkeypatch, opensearch_url, tiny_model_dir):
    from ksearch.cli import app
    from retrieval.settings import get_settings

    monkeypatch.setenv("KSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KSEARCH_OPENSEARCH_URL", opensearch_url)
    monkeypatch.delenv("KSEARCH_MODEL", raising=False)
    get_settings.cache_clear()
    name = _name("cli")
    corpus = _corpus(tmp_path / "c.jsonl", 12)
    runner = CliRunner()
    try:
        args = ["ingest", str(corpus), "--backend", "opensearch", "--index", name, "--model", str(tiny_model_dir), "-q"]
        out = runner.invoke(app, args)
        assert out.exit_code == 0 and "written" in out.stdout, out.output
        assert "skipped (unchanged)" in runner.invoke(app, args).stdout
        assert runner.invoke(app, args + ["--rebuild"]).exit_code == 0
        for mode in ("neural_sparse", "rank_feature", "bm25", "hybrid"):
            res = runner.invoke(app, ["search", "임대인 보증금", "--backend", "opensearch", "--index", name, "--mode", mode,
                                      "--json", "--domain", "legal"])
            assert res.exit_code == 0, res.output
            hits = json.loads(res.stdout)["hits"]
            assert hits and {h["domain"] for h in hits} == {"legal"}, mode
        (tmp_path / "q.jsonl").write_text(json.dumps({"id": "q1", "text": "임대인 보증금"}, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
        (tmp_path / "qrels.tsv").write_text("q1 0 D001 1\n", encoding="utf-8")
        res = runner.invoke(app, ["eval", "--backend", "opensearch", "--index", name, "--queries", str(tmp_path / "q.jsonl"),
                                  "--qrels", str(tmp_path / "qrels.tsv"), "--split", "all", "--json"])
        assert res.exit_code == 0, res.output
        assert set(json.loads(res.stdout)) >= {"sparse", "bm25", "hybrid"}
        missing = runner.invoke(app, ["search", "보증금", "--backend", "opensearch", "--index", _name("none")])
        assert missing.exit_code == 2 and "does not exist" in missing.output
    finally:
        with OpenSearchIndex.open(name, conn=OpenSearchConnection(url=opensearch_url)) as created:
            created.delete_index()
        get_settings.cache_clear()


def test_shards_and_replicas_from_the_settings_reach_a_new_index(conn, encoder, tmp_path, monkeypatch):
    from retrieval.backends import open_or_create_index
    from retrieval.settings import Settings

    monkeypatch.setenv("KSEARCH_OPENSEARCH_URL", conn.url)
    monkeypatch.setenv("KSEARCH_OPENSEARCH_SHARDS", "3")
    monkeypatch.setenv("KSEARCH_OPENSEARCH_REPLICAS", "0")
    config = Settings().backend_config(home=tmp_path)
    name = _name("layout")
    store = open_or_create_index(name, IndexMeta.for_encoder(name, encoder), config=config, backend="opensearch")
    try:
        settings = store.client.indices.get_settings(index=store.concrete)[store.concrete]["settings"]["index"]
        assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("3", "0")
        assert "auto_expand_replicas" not in settings
        store.add([Passage(id="d1#0", doc_id="d1", text=KOREAN_SENTENCES[0], domain="legal")],
                  [encoder.encode_documents([KOREAN_SENTENCES[0]])[0]])
        store.finish_writes()
        assert store.stats().passages == 1  # three primaries answer as one index
    finally:
        store.delete_index()
        store.close()


def test_an_index_layout_that_cannot_exist_is_refused():
    from retrieval.backends.opensearch_mapping import index_body

    meta = IndexMeta(name="x", model_id="m", vocab_hash="v")
    assert index_body(meta, "kiwi")["settings"]["index"] == {"number_of_shards": 1, "auto_expand_replicas": "0-1"}
    with pytest.raises(ValueError, match="at least 1 shard"):
        index_body(meta, "kiwi", shards=0)
    with pytest.raises(ValueError, match="0 or more replicas"):
        index_body(meta, "kiwi", replicas=-1)
