"""`OpenSearchIndex` when things go wrong, on a real node: which error (bad request, unavailable, refused, missing
index) and what it says; clients and threads released however an index is opened or closed; exact stats."""

from __future__ import annotations

import gc
import os
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ksearch.opensearch_node import free_port
from retrieval.backends.opensearch import OpenSearchIndex, has_nori
from retrieval.backends.opensearch_connection import (
    HOW_TO_START,
    OpenSearchBadRequestError,
    OpenSearchConnection,
    OpenSearchError,
    OpenSearchRefusedError,
    OpenSearchUnavailableError,
    translated_errors,
)
from retrieval.backends.opensearch_stats import index_stats
from retrieval.errors import IndexNotFoundError
from retrieval.index_meta import IndexMeta
from retrieval.passage import Passage

pytestmark = pytest.mark.opensearch


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _meta(name: str) -> IndexMeta:
    return IndexMeta(name=name, model_id="test-model", vocab_hash="test-vocab")


def _passage(pid: str, domain: str = "legal") -> Passage:
    return Passage(id=pid, doc_id=pid.split("#")[0], text="보증금 반환", title=pid, domain=domain, content_hash=f"h-{pid}")


@pytest.fixture(scope="module")
def conn(opensearch_url) -> OpenSearchConnection:
    return OpenSearchConnection(url=opensearch_url, timeout=60)


@pytest.fixture(scope="module")
def down() -> OpenSearchConnection:
    """A URL nothing listens on (a stopped node)."""
    return OpenSearchConnection(url=f"http://127.0.0.1:{free_port()}", timeout=2)


@pytest.fixture
def store(conn, tmp_path):
    """An index holding A#0, B#0 (legal) and C#0, C#1 (medical), deleted afterwards."""
    name = _name("fail")
    with OpenSearchIndex.open_or_create(name, _meta(name), conn=conn, dead_letter_dir=tmp_path) as index:
        index.add([_passage("A#0"), _passage("B#0"), _passage("C#0", "medical"), _passage("C#1", "medical")],
                  [{"보증금": 1.0}, {"반환": 2.0}, {"보증금": 3.0, "반환": 1.0}, {"당뇨": 1.0}])
        index.finish_writes()
        yield index
        index.delete_index()


# ---------------------------------------------------------------- HTTP 400: bad input or our bug, named
def test_a_malformed_query_is_a_bad_request_naming_what_is_wrong(store, conn):
    with pytest.raises(OpenSearchBadRequestError) as err:
        with translated_errors(conn, "searching with a hand-made query"):
            store.client.search(index=store.concrete, body={"query": {"no_such_query": {"field": "x"}}})
    e = err.value
    assert (e.status, e.retryable, e.error_type, e.field) == (400, False, "parsing_exception", "no_such_query")
    assert "HTTP 400" in str(e) and "[query: no_such_query]" in str(e) and "Retrying will not help" in str(e)
    assert HOW_TO_START not in str(e) and "not reachable" not in str(e)


def test_a_document_breaking_the_mapping_is_a_bad_request_naming_the_field(store, conn):
    with pytest.raises(OpenSearchBadRequestError) as err:
        with translated_errors(conn, "indexing a hand-made document"):
            store.client.index(index=store.concrete, id="X#0", body={"not_in_the_mapping": 1})
    assert err.value.field == "not_in_the_mapping" and "strict_dynamic_mapping_exception" in str(err.value)


def test_a_page_beyond_the_result_window_is_a_bad_request_naming_the_setting(store):
    with pytest.raises(OpenSearchBadRequestError) as err:
        store.search({"보증금": 1.0}, 10, offset=10_000)
    assert err.value.field == "index.max_result_window" and "Result window is too large" in str(err.value)
    assert not err.value.retryable and HOW_TO_START not in str(err.value)


def test_has_nori_follows_the_nodes_plugins(store, conn):
    plugins = {p["component"] for p in store.client.cat.plugins(format="json")}
    assert has_nori(store.client, conn) is ("analysis-nori" in plugins)


# ---------------------------------------------------------------- unavailable: retryable, says how to start a node
def test_an_unreachable_node_is_unavailable_and_says_how_to_start_one(store, down):
    with pytest.raises(OpenSearchUnavailableError) as err:
        OpenSearchIndex.open(store.name, conn=down)
    assert err.value.retryable and "is not reachable" in str(err.value) and HOW_TO_START in str(err.value)
    detached = OpenSearchIndex(down, store.name, store.concrete, store.meta, "text")
    with detached:
        for call in (detached.stats, detached.count, lambda: detached.delete(["A#0"]),
                     lambda: detached.search({"보증금": 1.0}, 3)):
            with pytest.raises(OpenSearchUnavailableError, match="ksearch opensearch start"):
                call()


def test_reading_the_hashes_waits_out_failed_shards_then_says_the_cluster_lost_a_node(store, monkeypatch):
    """A node lost just before a re-run ingest: the scan of the content hashes meets failed shards until the
    replicas are promoted. It waits for the primaries and scans again; if shards stay failed, it is unavailable."""
    from opensearchpy.helpers import ScanError

    real_scan, failures = store._scan_hashes, {"left": 2}
    want = real_scan()

    def flaky_scan():
        if failures["left"]:
            failures["left"] -= 1
            raise ScanError("scroll-id", "Scroll request has only succeeded on 2 (skipped 0) shards out of 3.")
        return real_scan()

    monkeypatch.setattr(store, "_scan_hashes", flaky_scan)
    assert store.content_hashes() == want and len(want) == 4 and failures["left"] == 0

    failures["left"] = 99
    with pytest.raises(OpenSearchUnavailableError, match="some shards failed while reading the content hashes") as err:
        store.content_hashes()
    assert err.value.retryable and "ksearch opensearch status" in str(err.value)


# ---------------------------------------------------------------- a missing index
def test_a_missing_index_is_named_by_every_call(store, conn):
    with pytest.raises(IndexNotFoundError, match="does not exist"):
        OpenSearchIndex.open(_name("missing"), conn=conn)
    store.client.indices.delete(index=store.concrete)  # gone under an open index
    for call in (store.stats, store.count, lambda: store.delete(["A#0"]), lambda: store.search({"보증금": 1.0}, 3)):
        with pytest.raises(IndexNotFoundError) as err:
            call()
        assert repr(store.name) in str(err.value) and "ksearch ingest" in str(err.value)


# ---------------------------------------------------------------- delete(): nothing dropped silently
def test_delete_counts_what_was_stored_and_ignores_ids_that_were_not(store):
    assert store.delete(["A#0", "never-stored#0"]) == 1
    assert store.count() == 3 and store.delete([]) == 0


def test_deleting_from_a_write_blocked_index_is_refused_and_names_the_ids(store):
    store.client.indices.put_settings(index=store.concrete, body={"index.blocks.write": True})
    try:
        with pytest.raises(OpenSearchRefusedError) as err:
            store.delete(["A#0", "B#0"])
    finally:
        store.client.indices.put_settings(index=store.concrete, body={"index.blocks.write": False})
    e = err.value
    assert e.status == 403 and not e.retryable and isinstance(e, OpenSearchError)
    assert "cluster_block_exception" in str(e) and "'A#0'" in str(e) and "'B#0'" in str(e) and "2 passage(s)" in str(e)
    assert store.count() == 4  # nothing was deleted, and the error said so


# ---------------------------------------------------------------- stats(): exact, or labelled approximate
def test_stats_count_documents_exactly_and_say_so(store):
    stats = store.stats()
    assert (stats.passages, stats.documents, stats.documents_approximate) == (4, 3, False)
    assert stats.documents_by_domain == {"legal": 2, "medical": 1}
    assert stats.passages_by_domain == {"legal": 2, "medical": 2}
    assert stats.avg_nonzero_weights == pytest.approx(5 / 4)


def test_stats_above_the_exact_limit_are_estimates_labelled_approximate(store):
    stats = index_stats(store.client, store.concrete, exact_up_to=2)  # 3 documents: above the limit
    assert stats.documents_approximate and stats.passages == 4
    assert stats.documents == 3 and stats.documents_by_domain == {"legal": 2, "medical": 1}  # HLL is exact this small


# ---------------------------------------------------------------- no client, socket or thread outlives its index
@dataclass(frozen=True, repr=False)
class CountingConnection(OpenSearchConnection):
    """A connection that records every real client it makes and whether that client was closed."""

    made: list = field(default_factory=list, compare=False)
    closed: list = field(default_factory=list, compare=False)

    def client(self):
        client = super().client()
        self.made.append(client)
        close = client.close

        def recorded_close() -> None:
            self.closed.append(client)
            close()

        client.close = recorded_close
        return client


def _open_sockets() -> int:
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            pass
    return count


def test_opening_and_closing_many_indexes_leaks_no_client_socket_or_thread(store, opensearch_url, down):
    counted = CountingConnection(url=opensearch_url, timeout=60)
    counted_down = CountingConnection(url=down.url, timeout=2)
    gc.collect()
    sockets, threads = _open_sockets(), threading.active_count()
    kept = []  # closed indexes stay referenced: only close() can have released their sockets
    for _ in range(15):
        with OpenSearchIndex.open_or_create(store.name, store.meta, conn=counted) as again:  # opens the existing one
            again.add([_passage("D#0")], [{"보증금": 1.0}])  # a bulk thread, joined by close()
        kept.append(again)
        opened = OpenSearchIndex.open(store.name, conn=counted)
        assert opened.count() >= 4
        opened.close()
        kept.append(opened)
        with pytest.raises(IndexNotFoundError):
            OpenSearchIndex.open(_name("missing"), conn=counted)
        with pytest.raises(OpenSearchUnavailableError):
            OpenSearchIndex.open_or_create(store.name, store.meta, conn=counted_down)
    made = counted.made + counted_down.made
    assert len(made) == 15 * 4, "one client per open or open_or_create"
    assert {id(c) for c in made} == {id(c) for c in counted.closed + counted_down.closed}, "a client was never closed"
    assert _open_sockets() <= sockets, "closed indexes still hold connections"
    assert threading.active_count() == threads
