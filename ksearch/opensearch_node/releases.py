"""The OpenSearch releases ksearch can assemble, each pinned with its artifacts, Java range and JVM options.

* **2.19.1** (the default): runs on Java 11 to 23, so on Debian 12's only JDK (17); ml-commons (``--ml``) and the
  security-plugin tests are set up for it; the `docker-compose.yml` image is the same version. Its integ-test zip
  holds the server and ``transport-netty4`` only: ksearch adds the modules it needs as bare jars (`MODULES_2_19`).
* **3.6.0**: the newest 3.x whose server, ``opensearch-knn`` and ``neural-search`` Maven Central all serves (3.7.0
  and 3.8.0 have a server but no neural-search there; 3.9.0 no server). Needs Java 21 to 25 (it runs without the
  Java Security Manager, through its own agent, ``agent/opensearch-agent.jar``). Its integ-test zip already ships the
  modules (``lang-painless``, ``mapper-extras``, ``analysis-common``, ``reindex``, ``transport-grpc``, ...). It has
  the ``sparse_vector`` field with the SEISMIC method (3.3+).

`OPENSEARCH_VERSION_ENV` picks the version where none is given (`default_version`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ksearch.opensearch_node.artifacts import Artifact, ModuleSpec
from ksearch.opensearch_node.errors import UnknownVersionError

OPENSEARCH_VERSION_ENV = "KSEARCH_OPENSEARCH_VERSION"
DEFAULT_VERSION = "2.19.1"

_OS_PLUGIN_GROUP = "org.opensearch.plugin"


@dataclass(frozen=True)
class Release:
    """One OpenSearch version: what it is assembled from and what it runs on."""

    version: str
    lucene_version: str
    distribution: Artifact
    plugins: tuple[Artifact, ...]  # zips, installed under plugins/<descriptor name>/ in this order
    nori_lucene: Artifact  # lucene-analysis-nori of the server's Lucene, for the plugin compiled here
    java_min: int
    java_max: int
    java_release: int  # class-file level of the jars we build (javac --release) and of our plugin descriptors
    jvm_options: tuple[str, ...]  # the version-specific lines of jvm.options (heap and GC lines are common)
    modules: tuple[ModuleSpec, ...] = ()  # modules the zip lacks, added as bare jars with descriptors we write

    @property
    def plugin_version(self) -> str:
        """Version of the opensearch-project plugins built for this server."""
        return f"{self.version}.0"

    @property
    def major(self) -> int:
        """The major version (2 or 3)."""
        return int(self.version.split(".")[0])

    def artifacts(self, with_nori: bool = True) -> list[Artifact]:
        """Every artifact the assembly downloads."""
        arts = [self.distribution, *[a for m in self.modules for a in m.jars], *self.plugins]
        if with_nori:
            arts.append(self.nori_lucene)
        return arts


# ---- 2.19.1

_V2 = "2.19.1"
ANTLR_VERSION = "4.13.1"
ASM_VERSION = "9.7"

MODULES_2_19: tuple[ModuleSpec, ...] = (
    ModuleSpec(
        name="lang-painless",
        classname="org.opensearch.painless.PainlessPlugin",
        description="An easy, safe and fast scripting language for OpenSearch",
        jars=(
            Artifact(_OS_PLUGIN_GROUP, "lang-painless", _V2, sha1="645bd9d27379a90d051dec24eb7232244f2cd8f2"),
            Artifact(_OS_PLUGIN_GROUP, "opensearch-scripting-painless-spi", _V2,
                     sha1="71223aae74a978698dd2218f95917a82e111c9b5"),
            Artifact("org.antlr", "antlr4-runtime", ANTLR_VERSION, sha1="17125bae1d965624e265ef49552f6465a2bfa307"),
            Artifact("org.ow2.asm", "asm", ASM_VERSION, sha1="073d7b3086e14beb604ced229c302feff6449723"),
            Artifact("org.ow2.asm", "asm-util", ASM_VERSION, sha1="c0655519f24d92af2202cb681cd7c1569df6ead6"),
            Artifact("org.ow2.asm", "asm-tree", ASM_VERSION, sha1="e446a17b175bfb733b87c5c2560ccb4e57d69f1a"),
            Artifact("org.ow2.asm", "asm-commons", ASM_VERSION, sha1="e86dda4696d3c185fcc95d8d311904e7ce38a53f"),
            Artifact("org.ow2.asm", "asm-analysis", ASM_VERSION, sha1="e4a258b7eb96107106c0599f0061cfc1832fe07a"),
        ),
        policy=(
            "grant {\n"
            '  permission java.lang.RuntimePermission "createClassLoader";\n'
            '  permission java.lang.RuntimePermission "getClassLoader";\n'
            "};\n"
        ),
    ),
    ModuleSpec(
        name="mapper-extras",
        classname="org.opensearch.index.mapper.MapperExtrasPlugin",
        description="Adds advanced field mappers (rank_feature(s), scaled_float, search_as_you_type, ...)",
        jars=(Artifact(_OS_PLUGIN_GROUP, "mapper-extras-client", _V2, sha1="0750d08445584e74f92f54701bedca0211802c6b"),),
    ),
    ModuleSpec(
        name="analysis-common",
        classname="org.opensearch.analysis.common.CommonAnalysisPlugin",
        description="Adds the common analysis components (whitespace tokenizer, lowercase filter, ...)",
        jars=(Artifact(_OS_PLUGIN_GROUP, "analysis-common", _V2, sha1="bcae872f90ec26130dd6ec07504ab72225cb5af2"),),
        extended=("lang-painless",),
    ),
)

RELEASE_2_19 = Release(
    version=_V2,
    lucene_version="9.12.1",
    distribution=Artifact("org.opensearch.distribution.integ-test-zip", "opensearch", _V2, "zip",
                          "af4fbc753ec975e4f335e3cf514527c7fb216864"),
    modules=MODULES_2_19,
    plugins=(
        Artifact(_OS_PLUGIN_GROUP, "opensearch-knn", f"{_V2}.0", "zip", "7ded4cf706be052f7bfcccea7102770a9298b96e"),
        # Maven Central has no .sha1 (nor .pom) for this one: the pinned SHA-1 is the only check.
        Artifact(_OS_PLUGIN_GROUP, "neural-search", f"{_V2}.0", "zip", "af25af4caf1d2a7563e187df1b97dc4559c6176e"),
    ),
    nori_lucene=Artifact("org.apache.lucene", "lucene-analysis-nori", "9.12.1",
                         sha1="e265410a6a4d9cd23b2e9c73321e6bd307bc1422"),
    java_min=11,
    java_max=23,  # 2.19 needs the Java Security Manager, which Java 24+ no longer has
    java_release=11,
    jvm_options=(
        "18-:-Djava.security.manager=allow",
        "20-:--add-modules=jdk.incubator.vector",
        "-Djava.util.concurrent.ForkJoinPool.common.threadFactory="
        "org.opensearch.secure_sm.SecuredForkJoinWorkerThreadFactory",
    ),
)

# ---- 3.6.0

_V3 = "3.6.0"

RELEASE_3_6 = Release(
    version=_V3,
    lucene_version="10.4.0",
    distribution=Artifact("org.opensearch.distribution.integ-test-zip", "opensearch", _V3, "zip",
                          "8549f483e338699fbfc1e9bfca831900d578bdf4"),
    plugins=(
        # Maven Central publishes no .sha1 for these two zips: the pinned SHA-1 is the only check.
        Artifact(_OS_PLUGIN_GROUP, "opensearch-knn", f"{_V3}.0", "zip", "a5341366a870baf34bc405602bbb6b6530157697"),
        Artifact(_OS_PLUGIN_GROUP, "neural-search", f"{_V3}.0", "zip", "8bc15fe12b8cf7bd6bc8138e0ab0666b05940c36"),
    ),
    nori_lucene=Artifact("org.apache.lucene", "lucene-analysis-nori", "10.4.0",
                         sha1="3781153d96b93e8f50c975bb5b60c7634687074a"),
    java_min=21,
    java_max=25,
    java_release=21,
    jvm_options=(
        # the lines of the distribution's own config/jvm.options beyond heap and GC (bin/opensearch runs from home)
        "-javaagent:agent/opensearch-agent.jar",
        "--add-modules=jdk.incubator.vector",
        "-Dorg.apache.lucene.store.MMapDirectory.sharedArenaMaxPermits=1",
        "25-:-XX:+UseCompactObjectHeaders",
    ),
)

RELEASES: dict[str, Release] = {r.version: r for r in (RELEASE_2_19, RELEASE_3_6)}


def default_version() -> str:
    """``$KSEARCH_OPENSEARCH_VERSION`` or DEFAULT_VERSION."""
    return os.environ.get(OPENSEARCH_VERSION_ENV, "").strip() or DEFAULT_VERSION


def get_release(version: str | None = None) -> Release:
    """The pinned release of `version` (None: `default_version`); UnknownVersionError naming the supported ones
    otherwise.

    A bare major ("3") or major.minor ("2.19") picks the pinned release it names."""
    wanted = (version or default_version()).strip()
    if wanted in RELEASES:
        return RELEASES[wanted]
    matches = [r for v, r in RELEASES.items() if v.startswith(wanted + ".")]
    if len(matches) == 1:
        return matches[0]
    source = "" if version else f" (from ${OPENSEARCH_VERSION_ENV})"
    raise UnknownVersionError(f"OpenSearch {wanted!r}{source} is not one ksearch assembles; choose one of "
                     f"{', '.join(RELEASES)}")
