"""`--backend opensearch` finds the node `ksearch opensearch start` runs, from the state file it records (no node here:
a stand-in process plays it; tests/test_opensearch_smoke.py checks the same with a real node)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ksearch.opensearch_cli import opensearch_app
from ksearch.opensearch_node import LocalOpenSearch
from retrieval.settings import DEFAULT_OPENSEARCH_URL, Settings
from search_ui.backend_choice import available_backends

RECORDED = "http://127.0.0.1:41873"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty node cache folder, no KSEARCH_OPENSEARCH_URL and no .env in the working directory."""
    monkeypatch.setenv("KSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KSEARCH_OPENSEARCH_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "cache"


@pytest.fixture
def recorded_node(cache):
    """A process standing in for a started node (its command line names the node's home, as the real one's does)
    and the state file `start` writes for it."""
    node = LocalOpenSearch(cache)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(node.home)],
                            start_new_session=True)
    node.run_dir.mkdir(parents=True)
    node.state_file.write_text(json.dumps({"pid": proc.pid, "port": 41873, "url": RECORDED, "home": str(node.home)}))
    yield node, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_without_a_started_node_the_default_url_is_used(cache):
    assert Settings().opensearch_url == DEFAULT_OPENSEARCH_URL
    assert "opensearch" not in available_backends(Settings())


def test_the_started_node_is_found_without_setting_the_url(recorded_node):
    settings = Settings()
    assert settings.opensearch_url == RECORDED
    assert settings.opensearch_connection().url == RECORDED
    assert "opensearch_url" not in settings.model_fields_set  # still the default: not an explicit setting
    assert available_backends(settings) == ["embedded", "opensearch"]  # the app offers it too


def test_an_explicit_url_wins_over_the_started_node(recorded_node, monkeypatch):
    monkeypatch.setenv("KSEARCH_OPENSEARCH_URL", "https://search.example:9200")
    assert Settings().opensearch_url == "https://search.example:9200"


def test_an_explicit_url_in_dotenv_wins_too(recorded_node, tmp_path):
    (tmp_path / ".env").write_text("KSEARCH_OPENSEARCH_URL=http://10.0.0.5:9200\n")
    assert Settings().opensearch_url == "http://10.0.0.5:9200"


def test_a_node_that_has_gone_is_not_used(recorded_node):
    _, proc = recorded_node
    proc.kill()
    proc.wait()  # its pid is free now: the state file is stale (e.g. after a reboot)
    assert Settings().opensearch_url == DEFAULT_OPENSEARCH_URL


def test_a_reused_pid_is_not_taken_for_the_node(cache):
    node = LocalOpenSearch(cache)
    node.run_dir.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        node.state_file.write_text(json.dumps({"pid": other.pid, "url": RECORDED, "home": str(node.home)}))
        assert Settings().opensearch_url == DEFAULT_OPENSEARCH_URL
    finally:
        other.kill()
        other.wait()


def test_stop_clears_the_recorded_node(recorded_node):
    node, proc = recorded_node
    result = CliRunner().invoke(opensearch_app, ["stop"])
    assert result.exit_code == 0 and result.output.strip() == "stopped", result.output
    assert proc.poll() is not None and not node.state_file.exists()
    assert Settings().opensearch_url == DEFAULT_OPENSEARCH_URL
