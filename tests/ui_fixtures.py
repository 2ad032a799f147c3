"""Fixtures of the app's tests: a small embedded index built with the shipped model, and the environment pointing at it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ksearch.opensearch_node import free_port

ROOT = Path(__file__).resolve().parents[1]
UI_INDEX = "uitest"
XSS_TITLE = "<script>alert(1)</script> 보증금 안내"
XSS_TEXT = "임대인이 보증금 반환을 거부하면 <img src=x onerror=alert(1)> 내용증명을 보냅니다. <script>alert(1)</script>"
JUDGED_QUERY = "집주인이 계약 끝났는데 돈을 안 돌려줘요"  # L1-q001 (train split), its relevant documents are in the index


def _small_corpus(path: Path) -> Path:
    """About 85 sample documents (legal L1-0001..60 holds L1-q001's judged ones, medical M1-0001..25) and one hostile document."""
    rows = []
    for line in (ROOT / "sample_data" / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        prefix, number = row["id"].rsplit("-", 1)
        if (prefix == "L1" and int(number) <= 60) or (prefix == "M1" and int(number) <= 25):
            rows.append(row)
    rows.append({"id": "X-0001", "domain": "legal", "title": XSS_TITLE, "text": XSS_TEXT})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ui_home(tmp_path_factory) -> Path:
    """A KSEARCH_HOME holding index `uitest`, built through the ingest worker with the shipped model."""
    from encoder import SparseEncoder
    from ingest import ingest_path
    from retrieval.backends import BackendConfig, open_or_create_index
    from retrieval.index_meta import IndexMeta

    home = tmp_path_factory.mktemp("ui-home")
    corpus = _small_corpus(home / "corpus.jsonl")
    encoder = SparseEncoder.load()
    with open_or_create_index(UI_INDEX, IndexMeta.for_encoder(UI_INDEX, encoder), config=BackendConfig(home=home)) as store:
        ingest_path(corpus, store, encoder, progress=False)
    return home


@pytest.fixture
def ui_env(ui_home, monkeypatch) -> Path:
    """Point the settings at the test index (and no explicit model) for this test."""
    from retrieval.settings import get_settings

    monkeypatch.setenv("KSEARCH_HOME", str(ui_home))
    monkeypatch.setenv("KSEARCH_INDEX", UI_INDEX)
    monkeypatch.delenv("KSEARCH_MODEL", raising=False)
    get_settings.cache_clear()
    yield ui_home
    get_settings.cache_clear()


@contextlib.contextmanager
def running_app(home: Path, log: Path, startup_seconds: float = 90) -> Iterator[str]:
    """`streamlit run search_ui/app.py` on a free port over the index in `home`; yields its URL, then stops it."""
    port = free_port()
    env = {**os.environ, "KSEARCH_HOME": str(home), "KSEARCH_INDEX": UI_INDEX, "HF_HUB_OFFLINE": "1"}
    env.pop("KSEARCH_MODEL", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "search_ui/app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_seconds
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"the app did not start (exit code {proc.poll()}):\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
