"""Shared fixtures: tiny models built in the session, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tiny_models import build_tiny_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test that reaches for the hub fails instead of hanging

pytest_plugins = ["opensearch_fixture", "ui_fixtures"]

HEAVY_MARKERS = ("opensearch", "browser")  # a real node or a real browser: always slow


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items) -> None:
    """Tests that need an OpenSearch node or Chromium are `slow` too, so `pytest -m "not slow"` (the fast loop)
    never starts a JVM or a browser."""
    for item in items:
        if any(item.get_closest_marker(name) for name in HEAVY_MARKERS) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory) -> dict[str, Path]:
    """One tiny random masked-LM folder per architecture."""
    root = tmp_path_factory.mktemp("models")
    return {arch: build_tiny_model(arch, root / arch) for arch in ("bert", "modernbert", "roberta")}


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_model_dirs) -> Path:
    return tiny_model_dirs["bert"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty $KSEARCH_HOME and no $KSEARCH_MODEL, with the settings cache cleared around the test."""
    from retrieval.settings import get_settings

    monkeypatch.setenv("KSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KSEARCH_MODEL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()
