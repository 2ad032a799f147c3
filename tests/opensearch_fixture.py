"""Pytest plugin: a real OpenSearch node for the tests marked ``opensearch``.

``opensearch_url`` is a node of ``opensearch_version``: the default version (``$KSEARCH_OPENSEARCH_VERSION``, else
2.19.1), or, for the tests marked ``every_opensearch_version``, each version in turn (`cross_versions`: every pinned
release, so one ``pytest`` run tests both 2.19 and 3.x; ``--opensearch-versions 3.6.0`` or
``$KSEARCH_OPENSEARCH_VERSION`` narrows it). Order of preference for a version's node:
1. ``$KSEARCH_OPENSEARCH_URL`` (a node someone else runs, e.g. ``docker compose up``): the only node then;
2. a node of that version already started with ``ksearch opensearch start`` (left running afterwards);
3. for the default version, that node started here for the session; for another version, a private node (own
   config, data and port; home shared with ``ksearch opensearch install --version X``); stopped at the end.

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
VERSIONS_OPTION = "--opensearch-versions"
EVERY_VERSION_MARK = "every_opensearch_version"


def pytest_addoption(parser) -> None:
    parser.addoption(VERSIONS_OPTION, default=None,
                     help="comma-separated OpenSearch versions for the tests marked every_opensearch_version "
                          "(default: $KSEARCH_OPENSEARCH_VERSION, else every version ksearch assembles)")


def cross_versions(config) -> list[str]:
    """The versions the tests marked every_opensearch_version run against ([] with $KSEARCH_OPENSEARCH_URL: that
    node alone)."""
    from ksearch.opensearch_node import OPENSEARCH_VERSION_ENV, RELEASES, get_release

    if os.environ.get(URL_ENV):
        return []
    wanted = config.getoption(VERSIONS_OPTION)
    if wanted:
        return list(dict.fromkeys(get_release(v).version for v in wanted.split(",") if v.strip()))
    if os.environ.get(OPENSEARCH_VERSION_ENV):
        return [get_release().version]
    return list(RELEASES)


def pytest_generate_tests(metafunc) -> None:
    if "opensearch_version" not in metafunc.fixturenames or not metafunc.definition.get_closest_marker(
            EVERY_VERSION_MARK):
        return
    versions = cross_versions(metafunc.config)
    if versions:
        metafunc.parametrize("opensearch_version", versions, indirect=True, scope="session",
                             ids=[f"os{v}" for v in versions])


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


class _Nodes:
    """The session's nodes, one per version, started when first asked for and stopped at the session's end (so
    switching between versions costs nothing)."""

    def __init__(self, tmp_path_factory) -> None:
        self._tmp = tmp_path_factory
        self._urls: dict[str, str] = {}
        self._failed: dict[str, str] = {}
        self._started: list = []

    def url(self, version: str) -> str:
        """The URL of a running node of `version` (skips, or fails in CI, when none can be had)."""
        if version in self._failed:
            unavailable(self._failed[version])
        if version not in self._urls:
            try:
                self._urls[version] = self._find_or_start(version)
            except _NodeUnavailable as e:
                self._failed[version] = str(e)
                unavailable(str(e))
        return self._urls[version]

    def _find_or_start(self, version: str) -> str:
        from ksearch.opensearch_node import (LocalOpenSearch, NodeStartError, OpenSearchNodeError, get_release,
                                             node_sharing_installation)
        from retrieval.backends.opensearch_state import read_state

        shared = LocalOpenSearch(version=version)
        url = shared.status()
        running = (read_state(shared.state_file) or {}).get("version") if url else None
        if url and running == version:
            return url
        what = f"a local OpenSearch {version} node"
        try:
            if url is None and version == get_release().version:
                node = shared
            else:  # the default cache runs another version, or this is not the default one: a private node
                node = node_sharing_installation(self._tmp.mktemp(f"os-{version}"), version=version)
            url = node.start()
        except OpenSearchNodeError as e:
            tail = e.log_tail if isinstance(e, NodeStartError) else ""
            msg = f"could not start {what}: {e}"
            if tail and tail not in msg:
                msg += "\n--- node log tail ---\n" + tail
            raise _NodeUnavailable(msg) from e
        if node.started_here:  # a node that another process was starting meanwhile is left alone
            self._started.append(node)
        return url

    def stop_all(self) -> None:
        """Stop the nodes this session started."""
        for node in self._started:
            node.stop()
        self._started.clear()


class _NodeUnavailable(Exception):
    pass


@pytest.fixture(scope="session")
def _opensearch_nodes(tmp_path_factory) -> Iterator[_Nodes]:
    nodes = _Nodes(tmp_path_factory)
    try:
        yield nodes
    finally:
        nodes.stop_all()


@pytest.fixture(scope="session")
def opensearch_version(request) -> str:
    """The OpenSearch version of ``opensearch_url``: a parameter for the tests marked every_opensearch_version,
    else the default version."""
    from ksearch.opensearch_node import get_release

    return getattr(request, "param", None) or get_release().version


@pytest.fixture(scope="session")
def opensearch_url(opensearch_version: str, _opensearch_nodes: _Nodes) -> str:
    """Base URL of a running OpenSearch node of ``opensearch_version`` (see the module docstring)."""
    env_url = os.environ.get(URL_ENV)
    if env_url:
        return env_url.rstrip("/")
    return _opensearch_nodes.url(opensearch_version)


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
        unavailable(msg)
    try:
        yield url
    finally:
        if node.started_here:  # a node that another process was starting meanwhile is left alone
            node.stop()


def unavailable(msg: str) -> None:
    """Skip the test because no node can be had, or fail it under CI (``CI=true``)."""
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
    from ksearch.opensearch_node.ml_commons import ML_RELEASE
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
    shared = LocalOpenSearch(version=ML_RELEASE.version)
    url = shared.status()
    if url is not None and (read_state(shared.state_file) or {}).get("ml"):
        yield url
        return
    try:
        node = node_sharing_installation(tmp_path_factory.mktemp("ml-node"), ml=True, version=ML_RELEASE.version)
    except OpenSearchNodeError as e:
        unavailable(f"could not install OpenSearch with ml-commons: {e}")
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
