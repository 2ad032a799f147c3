"""Pytest plugin: a real OpenSearch node for the tests marked ``opensearch``.

Order of preference for ``opensearch_url``:
1. ``$KSEARCH_OPENSEARCH_URL`` (a node someone else runs, e.g. ``docker compose up``);
2. a node already started with ``ksearch opensearch start`` (left running afterwards);
3. a node started here for the session and stopped at its end.

If no node can be had, the tests are skipped, except in CI (``CI=true``) where they fail.

``opensearch_ml_url`` is a node with ml-commons (to register and deploy models), in the same order: the
``$KSEARCH_OPENSEARCH_URL`` node if it has the ``opensearch-ml`` plugin (the ML settings are then set on it,
transiently), the default cache's node if it was started with ``--ml``, else a private ML node started here
(own config, data and port; home shared with ``ksearch opensearch install --ml``) and stopped at the end.
"""

from __future__ import annotations

import os
import json
import urllib.request
from collections.abc import Iterator

import pytest

URL_ENV = "KSEARCH_OPENSEARCH_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    """Base URL of a running OpenSearch node (see the module docstring)."""
    env_url = os.environ.get(URL_ENV)
    if env_url:
        yield env_url.rstrip("/")
        return

    from ksearch.opensearch_node import LocalOpenSearch

    node = LocalOpenSearch()
    url = node.status()
    if url is not None:
        yield url
        return
    yield from _started(node, "a local OpenSearch node")


def _started(node, what: str) -> Iterator[str]:
    """Start `node`, yield its URL, stop it afterwards (skip, or fail in CI, when it cannot start)."""
    from ksearch.opensearch_node import NodeStartError, OpenSearchNodeError

    try:
        url = node.start()
    except OpenSearchNodeError as e:
        tail = e.log_tail if isinstance(e, NodeStartError) else node.log_tail()
        msg = f"could not start {what}: {e}"
        if tail and tail not in msg:
            msg += "\n--- node log tail ---\n" + tail
        _unavailable(msg)
    try:
        yield url
    finally:
        if node.started_here:  # a node that another process was starting meanwhile is left alone
            node.stop()


def _unavailable(msg: str) -> None:
    if _in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _has_ml_commons(url: str) -> bool:
    with urllib.request.urlopen(url + "/_cat/plugins?format=json", timeout=30) as resp:
        return any(p.get("component") == "opensearch-ml" for p in json.load(resp))


@pytest.fixture(scope="session")
def opensearch_ml_url(tmp_path_factory) -> Iterator[str]:
    """Base URL of a running OpenSearch node with ml-commons (see the module docstring)."""
    from ksearch.opensearch_node import ML_SETTINGS, LocalOpenSearch, OpenSearchNodeError, node_sharing_installation
    from retrieval.backends.opensearch_state import read_state

    env_url = os.environ.get(URL_ENV)
    if env_url and _has_ml_commons(env_url.rstrip("/")):
        url = env_url.rstrip("/")
        body = json.dumps({"transient": ML_SETTINGS}).encode()
        req = urllib.request.Request(url + "/_cluster/settings", data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).close()
        yield url
        return
    shared = LocalOpenSearch()
    url = shared.status()
    if url is not None and (read_state(shared.state_file) or {}).get("ml"):
        yield url
        return
    try:
        node = node_sharing_installation(tmp_path_factory.mktemp("ml-node"), ml=True)
    except OpenSearchNodeError as e:
        _unavailable(f"could not install OpenSearch with ml-commons: {e}")
    yield from _started(node, "a local OpenSearch node with ml-commons")


@pytest.fixture(scope="session")
def opensearch_client(opensearch_url: str):  # -> opensearchpy.OpenSearch
    """An ``opensearchpy.OpenSearch`` client for ``opensearch_url``."""
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[opensearch_url], timeout=60, http_compress=False)
    try:
        yield client
    finally:
        client.close()
