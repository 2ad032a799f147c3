"""OpenSearch with the security plugin (TLS with a test CA, basic auth): the backend connects through the CA file
and credentials from the settings; a wrong password or a missing CA is a clear error; no credential is ever
shown in an error message or a log line."""

from __future__ import annotations

import logging
import uuid

import pytest

from encoder import SparseEncoder
from ingest import ingest_path
from retrieval.backends.opensearch import OpenSearchIndex
from retrieval.backends.opensearch_connection import OpenSearchConnection, OpenSearchRefusedError
from retrieval.index_meta import IndexMeta
from secure_opensearch import TEST_USER, SecureOpenSearch
from private_opensearch import free_port

pytestmark = pytest.mark.opensearch

PASSWORD = "Kx9-test-Pw!" + uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def secure_node(opensearch_url, tmp_path_factory):
    """(https URL, node) of a private node with the security plugin; stopped at the end."""
    node = SecureOpenSearch(tmp_path_factory.mktemp("secure-os"), PASSWORD)
    node.install()
    url = node.start(port=free_port())
    try:
        yield url.replace("http://", "https://", 1), node
    finally:
        node.stop()


def test_backend_connects_with_ca_file_and_credentials_from_settings(secure_node, tiny_model_dir, tmp_path,
                                                                     monkeypatch, caplog):
    from retrieval.settings import get_settings

    url, node = secure_node
    monkeypatch.setenv("KSEARCH_OPENSEARCH_URL", url)
    monkeypatch.setenv("KSEARCH_OPENSEARCH_USER", TEST_USER)
    monkeypatch.setenv("KSEARCH_OPENSEARCH_PASSWORD", PASSWORD)
    monkeypatch.setenv("KSEARCH_OPENSEARCH_CA_FILE", str(node.ca_file))
    get_settings.cache_clear()
    caplog.set_level(logging.DEBUG)
    encoder = SparseEncoder.load(tiny_model_dir, device="cpu")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "S1", "text": "임대인이 보증금을 돌려주지 않는다"}\n{"id": "S2", "text": "당뇨 진단 기준"}\n',
                      encoding="utf-8")
    name = f"sec-{uuid.uuid4().hex[:8]}"
    try:
        conn = get_settings().opensearch_connection()
        assert conn.ca_file == node.ca_file and PASSWORD not in repr(conn)
        store = OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder), conn=conn,
                                               dead_letter_dir=tmp_path)
        try:
            assert ingest_path(corpus, store, encoder, progress=False).written == 2
            assert store.count() == 2 and store.search_bm25("보증금", 5)[0].doc_id == "S1"
        finally:
            store.delete_index()
            store.close()
    finally:
        get_settings.cache_clear()
    assert PASSWORD not in caplog.text + "\n".join(str(r.args) for r in caplog.records)


def test_wrong_password_and_missing_ca_are_clear_errors_without_credentials(secure_node, caplog):
    url, node = secure_node
    caplog.set_level(logging.DEBUG)
    wrong = f"{PASSWORD}-wrong"
    with pytest.raises(OpenSearchRefusedError, match=r"refused the credentials \(HTTP 401\)") as err:
        OpenSearchIndex.open("anything", conn=OpenSearchConnection(url=url, user=TEST_USER, password=wrong,
                                                                   ca_file=node.ca_file, timeout=10))
    with pytest.raises(OpenSearchRefusedError, match="TLS verification failed.*KSEARCH_OPENSEARCH_CA_FILE") as tls:
        OpenSearchIndex.open("anything", conn=OpenSearchConnection(url=url, user=TEST_USER, password=PASSWORD, timeout=10))
    embedded = f"https://{TEST_USER}:{wrong}@{url.removeprefix('https://')}"
    with pytest.raises(OpenSearchRefusedError, match="HTTP 401") as in_url:
        OpenSearchIndex.open("anything", conn=OpenSearchConnection(url=embedded, ca_file=node.ca_file, timeout=10))
    shown = "\n".join([str(err.value), str(tls.value), str(in_url.value), caplog.text,
                       *(str(r.args) for r in caplog.records)])
    assert PASSWORD not in shown and wrong not in shown
