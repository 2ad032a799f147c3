"""Faults: OpenSearch stopped in the middle of an ingest (then restarted), the ingest process SIGKILLed during an
embedded write, OpenSearch down while the app is open. Real nodes only: a private node is stopped, never the shared one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from encoder import SparseEncoder
from ingest import ingest_path
from ingest_reference import clean_ingest_contents, stored_contents
from private_opensearch import free_port, private_node
from retrieval.backends import EmbeddedIndex
from retrieval.backends.opensearch import OpenSearchIndex
from retrieval.backends.opensearch_connection import OpenSearchConnection, OpenSearchUnavailableError
from retrieval.index_meta import IndexMeta
from tiny_models import KOREAN_SENTENCES

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "search_ui" / "app.py")


def _corpus(path: Path, n: int) -> Path:
    k = len(KOREAN_SENTENCES)
    rows = [{"id": f"F{i:03d}", "domain": "legal" if i % 2 else "medical", "title": f"문서 {i}",
             "text": " ".join(KOREAN_SENTENCES[(i + j) % k] for j in range(1 + (i % 3 == 0) * 3)) + f" 번호 {i}"}
            for i in range(n)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def encoder(tiny_model_dir) -> SparseEncoder:
    return SparseEncoder.load(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, encoder):
    """The corpus and what a clean ingest stores from it (passage id -> (content hash, text))."""
    root = tmp_path_factory.mktemp("faults-ref")
    corpus = _corpus(root / "c.jsonl", 60)
    return corpus, clean_ingest_contents(corpus, root / "clean", encoder)


@pytest.fixture(scope="module")
def node(opensearch_url, tmp_path_factory):
    """A private OpenSearch node on a fixed port (restarts keep the URL); stopped at the end."""
    local = private_node(tmp_path_factory.mktemp("private-os"))
    port = free_port()
    url = local.start(port=port)
    try:
        yield local, port, url
    finally:
        local.stop()


@pytest.mark.opensearch
def test_opensearch_stopped_mid_ingest_then_rerun_loses_and_duplicates_nothing(node, encoder, reference, tmp_path):
    local, port, url = node
    corpus, want = reference
    conn = OpenSearchConnection(url=url, timeout=10)
    name = f"fault-{uuid.uuid4().hex[:8]}"
    store = OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder), conn=conn,
                                           dead_letter_dir=tmp_path)

    def stop_after_first_batch(written: int) -> None:
        if written == 24:
            local.stop()

    with pytest.raises(OpenSearchUnavailableError, match="is not reachable") as err:
        ingest_path(corpus, store, encoder, progress=False, write_batch=8, on_batch_written=stop_after_first_batch)
    assert "while indexing into" in str(err.value) and "ksearch opensearch start" in str(err.value)
    store.close()

    assert local.start(port=port) == url
    store = OpenSearchIndex.open(name, conn=conn)
    try:
        partial = len(store.content_hashes())  # batches are indexed in the background: any prefix may have landed
        assert partial < len(want)
        report = ingest_path(corpus, store, encoder, progress=False, write_batch=8)
        assert report.skipped_unchanged == partial and report.written == len(want) - partial
        assert not report.rejected
        store.client.indices.refresh(index=store.concrete)
        assert store.count() == len(want)  # 0 duplicated
        assert stored_contents(store) == want  # 0 lost, 0 changed
    finally:
        store.delete_index()
        store.close()


@pytest.mark.opensearch
def test_app_shows_a_readable_error_while_opensearch_is_down_and_recovers(node, encoder, reference, tmp_path,
                                                                       monkeypatch, tiny_model_dir):
    from retrieval.settings import get_settings

    local, port, url = node
    corpus, _ = reference
    name = f"uifault-{uuid.uuid4().hex[:8]}"
    conn = OpenSearchConnection(url=url, timeout=10)
    with OpenSearchIndex.open_or_create(name, IndexMeta.for_encoder(name, encoder), conn=conn,
                                        dead_letter_dir=tmp_path) as store:
        ingest_path(corpus, store, encoder, progress=False)
    monkeypatch.setenv("KSEARCH_HOME", str(tmp_path))
    monkeypatch.setenv("KSEARCH_INDEX", name)
    monkeypatch.setenv("KSEARCH_OPENSEARCH_URL", url)
    monkeypatch.setenv("KSEARCH_OPENSEARCH_TIMEOUT", "5")
    monkeypatch.setenv("KSEARCH_MODEL", str(tiny_model_dir))
    get_settings.cache_clear()
    try:
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        at.selectbox(key="search_backend").set_value("opensearch")
        at.text_input(key="search_query").set_value("보증금 반환").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert 'class="ks-hit"' in "".join(m.value for m in at.markdown)

        local.stop()
        at.text_input(key="search_query").set_value("당뇨 진단").run()
        assert not at.exception, [e.value for e in at.exception]
        message = " ".join(e.value for e in at.error)
        assert "OpenSearch at" in message and "is not reachable" in message, message

        assert local.start(port=port) == url
        at.text_input(key="search_query").set_value("보증금 반환 요청").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert 'class="ks-hit"' in "".join(m.value for m in at.markdown)
    finally:
        get_settings.cache_clear()
        if local.status() is None:
            local.start(port=port)
        OpenSearchIndex.open(name, conn=conn).delete_index()


KILLER = r"""
import os, signal, sys
import retrieval.backends.segment as segment
from encoder import SparseEncoder
from ingest import ingest_path
from retrieval.backends import EmbeddedIndex
from retrieval.index_meta import IndexMeta

calls = {"npy": 0}
real_write_npy = segment.write_npy

def write_npy_then_die(path, array):
    calls["npy"] += 1
    if calls["npy"] == 3 * 2 + 2:  # inside the third segment's write: two of its three arrays, no manifest commit
        os.kill(os.getpid(), signal.SIGKILL)
    real_write_npy(path, array)

segment.write_npy = write_npy_then_die
corpus, index, model = sys.argv[1:4]
encoder = SparseEncoder.load(model, device="cpu")
store = EmbeddedIndex.open_or_create(index, IndexMeta.for_encoder("k", encoder))
ingest_path(corpus, store, encoder, progress=False, write_batch=8)
"""


def test_ingest_sigkilled_during_an_embedded_write_opens_and_reruns(encoder, reference, tmp_path, tiny_model_dir):
    corpus, want = reference
    index = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILLER, str(corpus), str(index), str(tiny_model_dir)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert any(p.name.startswith(".") or "tmp" in p.name for p in index.iterdir())  # the half-written segment
    with EmbeddedIndex.open(index) as store:
        assert store.count() == 16  # the two committed segments, nothing of the third
        report = ingest_path(corpus, store, encoder, progress=False, write_batch=8)
        assert report.skipped_unchanged == 16 and report.written == len(want) - 16
        assert store.count() == len(want) and stored_contents(store) == want
    with EmbeddedIndex.open(index) as reopened:
        assert stored_contents(reopened) == want
