"""ml-commons on the local node: its plugins, the PyTorch runtime its DJL engine loads, and its single-node settings
(and the reindex module, whose delete-by-query ml-commons uses to delete a model).

Opt-in (`LocalOpenSearch(ml=True)`, `ksearch opensearch start --ml`): the ml plugin zip alone is 363 MB, and the
node starts slower with it.

**Why the PyTorch runtime is pre-filled.** At a model's first deploy, ml-commons' DJL engine looks for libtorch and
its JNI library (``libdjl_torch.so``) and, finding none, downloads them from a host outside Maven Central; offline
the deploy fails ("Failed to save pytorch index file", ml-commons issue 1902). DJL skips that search when
``PYTORCH_LIBRARY_PATH`` names a folder holding ``libtorch.so`` and the JNI library (DJL's ``LibUtils``), so the
node's environment points it at ``<home>/ml-pytorch``, filled at assembly from DJL's artifacts on Maven Central.

**Why libtorch 2.5.1 and not 1.13.1.** ml-commons 2.19 asks DJL for libtorch 1.13.1, but it bundles DJL 0.31.1
(``plugins/opensearch-ml/pytorch-engine-0.31.1.jar``) and Maven Central has no JNI library for that pair: the
1.13.1 ones are built for DJL 0.21/0.22, whose native methods lack some 0.31.1 calls (``torchIsContiguous``, used
by every ``toFloatArray``) and take different arguments for others (``moduleRunMethod``). ml-commons 3.x runs the
same DJL 0.31.1 on libtorch 2.5.1, and DJL's 2.5.1 JNI built for 0.32.0 declares exactly the 0.31.1 native methods
(DJL's JNI sources differ between the two tags in one ``interpolate`` option), so that is the pair installed here.
A model deployed here may therefore use operators newer than a stock 2.19 cluster's libtorch 1.13.1 knows.
"""

from __future__ import annotations

import platform
import stat
import zipfile
from pathlib import Path

from ksearch.opensearch_node.artifacts import Artifact, ModuleSpec
from ksearch.opensearch_node.errors import OpenSearchNodeError
from ksearch.opensearch_node.releases import RELEASE_2_19, Release

ML_RELEASE = RELEASE_2_19
"""The one release whose ml-commons is pinned and tested here (3.x ships another DJL: not checked yet)."""
OPENSEARCH_VERSION, PLUGIN_VERSION = ML_RELEASE.version, ML_RELEASE.plugin_version

_OS_PLUGIN_GROUP = "org.opensearch.plugin"

# Maven Central publishes no .sha1 for these two zips: the pinned SHA-1 is the only check.
JOB_SCHEDULER = Artifact(_OS_PLUGIN_GROUP, "opensearch-job-scheduler", PLUGIN_VERSION, "zip",
                         "70086187558b6c62bb5419cce9ad997de7e8f951")
ML_PLUGIN = Artifact(_OS_PLUGIN_GROUP, "opensearch-ml-plugin", PLUGIN_VERSION, "zip",
                     "264bb901831f3ffc22af9f95161fe40fd50fab57")
ML_PLUGINS: tuple[Artifact, ...] = (JOB_SCHEDULER, ML_PLUGIN)  # opensearch-ml extends opensearch-job-scheduler

DJL_VERSION = "0.31.1"
"""The DJL that ML_PLUGIN bundles (checked at assembly: its ``pytorch-engine-<version>.jar``)."""
LIBTORCH_VERSION = "2.5.1"
PYTORCH_FLAVOR = "cpu"  # cxx11 ABI, like the JNI library of the same flavor
PLATFORM = "linux-x86_64"
PYTORCH_NATIVE = Artifact("ai.djl.pytorch", "pytorch-native-cpu", LIBTORCH_VERSION, "jar",
                          "331cda53d80ea082ae2346b275b60cbdd3f9500f", classifier=PLATFORM)
PYTORCH_JNI = Artifact("ai.djl.pytorch", "pytorch-jni", f"{LIBTORCH_VERSION}-0.32.0", "jar",
                       "5654a2b8bea7b096b561a4379b3576f707514782")

# ml-commons deletes a model's chunks with delete-by-query, which the reindex module provides (the integ-test
# distribution has no modules beyond transport-netty4). reactor-core, which the REST client also needs, is in lib/.
REINDEX_MODULE = ModuleSpec(
    name="reindex",
    classname="org.opensearch.index.reindex.ReindexPlugin",
    description="The Reindex module adds APIs to reindex from one index to another or update documents in place.",
    jars=(
        Artifact(_OS_PLUGIN_GROUP, "reindex-client", OPENSEARCH_VERSION, sha1="982e19a26e17ee201a172fb57e8d208789aa815f"),
        Artifact("org.opensearch.client", "opensearch-rest-client", OPENSEARCH_VERSION,
                 sha1="3058ae027307dc39c599ca2368f88d89a1984a2c"),
        Artifact("org.opensearch", "opensearch-ssl-config", OPENSEARCH_VERSION,
                 sha1="8e50964a73c00d793d99cf2749d93082bb25e440"),
        Artifact("org.apache.httpcomponents", "httpclient", "4.5.14", sha1="1194890e6f56ec29177673f2f12d0b8e627dec98"),
        Artifact("org.apache.httpcomponents", "httpcore", "4.4.16", sha1="51cf043c87253c9f58b539c9f7e44c8894223850"),
        Artifact("org.apache.httpcomponents", "httpasyncclient", "4.1.5", sha1="cd18227f1eb8e9a263286c1d7362ceb24f6f9b32"),
        Artifact("org.apache.httpcomponents", "httpcore-nio", "4.4.16", sha1="cd21c80a9956be48c4c1cfd2f594ba02857d0927"),
        Artifact("commons-codec", "commons-codec", "1.16.1", sha1="47bd4d333fba53406f6c6c51884ddbca435c8862"),
        Artifact("commons-logging", "commons-logging", "1.2", sha1="4bfc12adfe4842bf07b657f0369c4cb522955686"),
    ),
    policy='grant {\n  // reindex from a remote cluster\n  permission java.net.SocketPermission "*", "connect";\n};\n',
)

ML_ARTIFACTS: tuple[Artifact, ...] = (*REINDEX_MODULE.jars, *ML_PLUGINS, PYTORCH_NATIVE, PYTORCH_JNI)

PYTORCH_DIR = "ml-pytorch"
"""Folder under the node's home holding libtorch and ``libdjl_torch.so`` (DJL's ``PYTORCH_LIBRARY_PATH``)."""

ML_SETTINGS: dict[str, str] = {
    # one node, which is not a dedicated ML node
    "plugins.ml_commons.only_run_on_ml_node": "false",
    # a model zip from a file:// URL or uploaded in chunks (`_register_meta` + `upload_chunk`)
    "plugins.ml_commons.allow_registering_model_via_url": "true",
    "plugins.ml_commons.allow_registering_model_via_local_file": "true",
    # the memory breaker compares the whole machine's memory use, which a developer's machine often runs high;
    # the disk breaker wants 5 GB free by default
    "plugins.ml_commons.native_memory_threshold": "100",
    # the JVM-heap breaker (default 85%) samples a small heap that climbs past 85% between collections, so it
    # refused a `_predict` now and then (HTTP 429 "Memory Circuit Breaker is open"); OpenSearch's own breakers stay
    "plugins.ml_commons.jvm_heap_memory_threshold": "100",
    "plugins.ml_commons.disk_free_space_threshold": "1gb",
}


def supported_here(release: Release = ML_RELEASE) -> str | None:
    """None when ml-commons can be assembled for `release` on this machine, else why not."""
    if release.version != ML_RELEASE.version:
        return (f"ml-commons (--ml) is assembled for OpenSearch {ML_RELEASE.version} only, not {release.version}: "
                f"start it with --version {ML_RELEASE.version}")
    machine = platform.machine().lower()
    if platform.system() != "Linux" or machine not in ("x86_64", "amd64"):
        return f"ml-commons' PyTorch runtime is set up for {PLATFORM} only, not {platform.system()} {machine}"
    return None


def install_pytorch_runtime(home: Path, files: dict[Artifact, Path]) -> Path:
    """Unpack libtorch and DJL's JNI library into ``home/PYTORCH_DIR``; return that folder."""
    reason = supported_here()
    if reason:
        raise OpenSearchNodeError(reason)
    ml_dir = home / "plugins" / "opensearch-ml"
    engine_jar = ml_dir / f"pytorch-engine-{DJL_VERSION}.jar"
    if not engine_jar.is_file():
        found = sorted(p.name for p in ml_dir.glob("pytorch-engine-*.jar"))
        raise OpenSearchNodeError(
            f"{ML_PLUGIN.coordinate} bundles {', '.join(found) or 'no pytorch-engine jar'}, not pytorch-engine-"
            f"{DJL_VERSION}.jar: the JNI library pinned in ksearch/opensearch_node/ml_commons.py may not fit it")
    target = home / PYTORCH_DIR
    target.mkdir(parents=True, exist_ok=True)
    libs = _extract_flat(files[PYTORCH_NATIVE], f"pytorch/{PYTORCH_FLAVOR}/{PLATFORM}/", target)
    if "libtorch.so" not in libs:
        raise OpenSearchNodeError(f"{PYTORCH_NATIVE.coordinate} has no pytorch/{PYTORCH_FLAVOR}/{PLATFORM}/libtorch.so")
    jni = _extract_flat(files[PYTORCH_JNI], f"jnilib/{PLATFORM}/{PYTORCH_FLAVOR}/", target)
    if jni != ["libdjl_torch.so"]:
        raise OpenSearchNodeError(
            f"{PYTORCH_JNI.coordinate} has no jnilib/{PLATFORM}/{PYTORCH_FLAVOR}/libdjl_torch.so (found {jni})")
    return target


def _extract_flat(jar: Path, prefix: str, target: Path) -> list[str]:
    """Extract the files directly under `prefix` in `jar` into `target` (executable); return their names."""
    names = []
    with zipfile.ZipFile(jar) as zf:
        for info in zf.infolist():
            rest = info.filename[len(prefix):] if info.filename.startswith(prefix) else ""
            if not rest or "/" in rest:
                continue
            out = target / rest
            with zf.open(info) as src, open(out, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            out.chmod(out.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            names.append(rest)
    return sorted(names)


def ml_environment(home: Path) -> dict[str, str]:
    """Environment variables that make DJL load the pre-filled runtime (env beats the system properties that
    ml-commons sets at deploy, so the engine also reports the version it really runs)."""
    return {
        "PYTORCH_LIBRARY_PATH": str(home / PYTORCH_DIR),
        "PYTORCH_VERSION": LIBTORCH_VERSION,
        "PYTORCH_FLAVOR": PYTORCH_FLAVOR,
    }


def ml_settings_yaml() -> str:
    """The ML_SETTINGS as opensearch.yml lines."""
    return "".join(f"{k}: {v}\n" for k, v in ML_SETTINGS.items())
