"""A real single-node OpenSearch for tests and local use, without Docker.

Two releases can be assembled (`releases`: 2.19.1, the default, and 3.6.0; ``version=`` / ``--version`` /
``$KSEARCH_OPENSEARCH_VERSION``), each in its own home, from pinned artifacts on Maven Central:

* ``org.opensearch.distribution.integ-test-zip:opensearch`` (no JDK; 2.19's holds transport-netty4 only, 3.6's the
  usual modules),
* for 2.19, the modules ``lang-painless`` (with its dependencies), ``mapper-extras`` (``rank_features`` field and
  ``rank_feature`` query) and ``analysis-common``, shipped as plain jars: a plugin descriptor is written for each,
* the plugins ``opensearch-knn`` and ``neural-search`` (the ``neural_sparse`` query),
* ``analysis-nori``: no build of it is published, so a small Korean analysis plugin is compiled here
  (needs ``javac``) against ``org.apache.lucene:lucene-analysis-nori``; it is skipped when no ``javac`` is found,
* opt-in (``ml=True``, ``ksearch opensearch start --ml``): ``opensearch-job-scheduler`` and ``opensearch-ml``
  (ml-commons, to serve models inside OpenSearch) with a PyTorch runtime for its DJL engine, so a model deploys
  offline (`ml_commons`).

Downloads are verified against Maven's ``.sha1`` files and cached (``KSEARCH_CACHE_DIR`` or
``~/.cache/ksearch/opensearch``); the node runs detached, its state lives in ``<cache>/run/``.

One job per module: `artifacts` (what is downloaded, pinned SHA-1s), `downloads` (fetching and verifying),
`releases` (the pinned versions), `java` (finding a Java runtime for a release), `assembly` (modules, plugins, compiling the nori plugin), `node` (the
`LocalOpenSearch` process: start, readiness, stop), `cluster` (`LocalCluster`: several such nodes forming one
cluster on loopback), `ml_commons` (ml-commons: plugins, PyTorch runtime, settings),
`ports` (held ports, locks), `testing` (a second node sharing the installation). Everything public is importable
from here.
"""

from __future__ import annotations

from pathlib import Path

from ksearch.opensearch_node.artifacts import MAVEN_CENTRAL, MAVEN_URL_ENV, Artifact, ModuleSpec
from ksearch.opensearch_node.assembly import ASSEMBLY_REVISION
from ksearch.opensearch_node.errors import (DownloadError, JavaNotFoundError, NodeStartError, OpenSearchNodeError,
                                            UnknownVersionError)
from ksearch.opensearch_node.releases import (ANTLR_VERSION, ASM_VERSION, DEFAULT_VERSION, OPENSEARCH_VERSION_ENV,
                                              RELEASE_2_19, RELEASE_3_6, RELEASES, Release, default_version,
                                              get_release)
from ksearch.opensearch_node.java import JAVA_MAX, JAVA_MIN, find_java_home
from ksearch.opensearch_node.ml_commons import DJL_VERSION, LIBTORCH_VERSION, ML_ARTIFACTS, ML_SETTINGS
from ksearch.opensearch_node.cluster import LocalCluster
from ksearch.opensearch_node.node import CACHE_DIR_ENV, DEFAULT_HEAP, HEAP_ENV, LocalOpenSearch, default_cache_dir
from ksearch.opensearch_node.ports import PortReservation, free_port, reserve_port
from ksearch.opensearch_node.testing import cluster_sharing_installation, node_sharing_installation

# The default release's pins, under their old names.
OPENSEARCH_VERSION = DEFAULT_VERSION
_DEFAULT_RELEASE = RELEASES[DEFAULT_VERSION]
PLUGIN_VERSION = _DEFAULT_RELEASE.plugin_version
LUCENE_VERSION = _DEFAULT_RELEASE.lucene_version
DISTRIBUTION = _DEFAULT_RELEASE.distribution
MODULES = _DEFAULT_RELEASE.modules
PLUGINS = _DEFAULT_RELEASE.plugins
NORI_LUCENE = _DEFAULT_RELEASE.nori_lucene


def all_artifacts(with_nori: bool = True) -> list[Artifact]:
    """Every artifact the default release's assembly downloads."""
    return _DEFAULT_RELEASE.artifacts(with_nori)


_default: LocalOpenSearch | None = None


def _node() -> LocalOpenSearch:
    global _default
    if _default is None or _default.cache_dir != default_cache_dir() or _default.version != get_release().version:
        _default = LocalOpenSearch()
    return _default


def ensure_installed() -> Path:
    """Download and assemble the node in the default cache; return its home."""
    return _node().ensure_installed()


def start(port: int | None = None, timeout: float = 180) -> str:
    """Start (or find) the node of the default cache; return its URL."""
    return _node().start(port=port, timeout=timeout)


def stop() -> bool:
    """Stop the node of the default cache; return False if none was running."""
    return _node().stop()


def status() -> str | None:
    """URL of the default cache's node if it is running and answering, else None."""
    return _node().status()


__all__ = [
    "ANTLR_VERSION", "ASM_VERSION", "ASSEMBLY_REVISION", "CACHE_DIR_ENV", "DEFAULT_HEAP", "DEFAULT_VERSION", "DISTRIBUTION",
    "DJL_VERSION", "OPENSEARCH_VERSION_ENV", "RELEASE_2_19", "RELEASE_3_6", "RELEASES", "Release", "UnknownVersionError",
    "default_version", "get_release",
    "HEAP_ENV", "JAVA_MAX", "JAVA_MIN", "LIBTORCH_VERSION", "LUCENE_VERSION", "ML_ARTIFACTS", "ML_SETTINGS", "MAVEN_CENTRAL", "MAVEN_URL_ENV", "MODULES", "NORI_LUCENE",
    "OPENSEARCH_VERSION", "PLUGINS", "PLUGIN_VERSION", "Artifact", "DownloadError", "JavaNotFoundError",
    "LocalCluster", "LocalOpenSearch", "ModuleSpec", "NodeStartError", "OpenSearchNodeError", "PortReservation", "all_artifacts",
    "default_cache_dir", "ensure_installed", "find_java_home", "free_port", "cluster_sharing_installation", "node_sharing_installation",
    "reserve_port", "start", "status", "stop",
]
