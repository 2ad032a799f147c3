"""Pytest plugin: a real OpenSearch node for the tests marked ``opensearch``.

Order of preference for ``opensearch_url``:
1. ``$KSEARCH_OPENSEARCH_URL`` (a node someone else runs, e.g. ``docker compose up``);
2. a node already started with ``ksearch opensearch start`` (left running afterwards);
3. a node started here for the session and stopped at its end.

If no node can be had, the tests are skipped, except in CI (``CI=true``) where they fail.
"""

from __future__ import annotations

import os
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

    from ksearch.opensearch_node import LocalOpenSearch, NodeStartError, OpenSearchNodeError

    node = LocalOpenSearch()
    url = node.status()
    if url is not None:
        yield url
        return

    try:
        url = node.start()
    except OpenSearchNodeError as e:
        tail = e.log_tail if isinstance(e, NodeStartError) else node.log_tail()
        msg = f"could not start a local OpenSearch node: {e}"
        if tail and tail not in msg:
            msg += "\n--- node log tail ---\n" + tail
        if _in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    try:
        yield url
    finally:
        if node.started_here:  # a node that another process was starting meanwhile is left alone
            node.stop()


@pytest.fixture(scope="session")
def opensearch_client(opensearch_url: str):  # -> opensearchpy.OpenSearch
    """An ``opensearchpy.OpenSearch`` client for ``opensearch_url``."""
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[opensearch_url], timeout=60, http_compress=False)
    try:
        yield client
    finally:
        client.close()
