"""What the node is assembled from: pinned Maven artifacts (with their SHA-1s) and the modules and plugins they make."""

from __future__ import annotations

import os
from dataclasses import dataclass

OPENSEARCH_VERSION = "2.19.1"
"""OpenSearch server version (runs on Java 11 to 21; 17 is what we test with)."""
PLUGIN_VERSION = f"{OPENSEARCH_VERSION}.0"
"""Version of the opensearch-project plugins built for OPENSEARCH_VERSION."""
LUCENE_VERSION = "9.12.1"
"""Lucene version bundled with OPENSEARCH_VERSION (for lucene-analysis-nori)."""
ANTLR_VERSION = "4.13.1"
ASM_VERSION = "9.7"

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
MAVEN_URL_ENV = "KSEARCH_MAVEN_URL"


@dataclass(frozen=True)
class Artifact:
    """One file in a Maven repository."""

    group: str
    name: str
    version: str
    ext: str = "jar"
    sha1: str = ""  # pinned SHA-1; checked in addition to Maven's .sha1 file when that exists
    classifier: str = ""  # e.g. "linux-x86_64" for a platform's native jar

    @property
    def coordinate(self) -> str:
        """``group:artifact:version[:classifier]@ext``."""
        classifier = f":{self.classifier}" if self.classifier else ""
        return f"{self.group}:{self.name}:{self.version}{classifier}@{self.ext}"

    @property
    def relpath(self) -> str:
        """Path of the file inside a Maven repository."""
        g = self.group.replace(".", "/")
        classifier = f"-{self.classifier}" if self.classifier else ""
        return f"{g}/{self.name}/{self.version}/{self.name}-{self.version}{classifier}.{self.ext}"

    def url(self, base: str | None = None) -> str:
        """Download URL of the file."""
        base = (base or os.environ.get(MAVEN_URL_ENV) or MAVEN_CENTRAL).rstrip("/")
        return f"{base}/{self.relpath}"


_OS_PLUGIN_GROUP = "org.opensearch.plugin"

DISTRIBUTION = Artifact(
    "org.opensearch.distribution.integ-test-zip",
    "opensearch",
    OPENSEARCH_VERSION,
    "zip",
    "af4fbc753ec975e4f335e3cf514527c7fb216864",
)


@dataclass(frozen=True)
class ModuleSpec:
    """A module shipped as jars; we write its plugin descriptor ourselves."""

    name: str
    classname: str
    description: str
    jars: tuple[Artifact, ...]
    extended: tuple[str, ...] = ()
    policy: str = ""


MODULES: tuple[ModuleSpec, ...] = (
    ModuleSpec(
        name="lang-painless",
        classname="org.opensearch.painless.PainlessPlugin",
        description="An easy, safe and fast scripting language for OpenSearch",
        jars=(
            Artifact(
                _OS_PLUGIN_GROUP, "lang-painless", OPENSEARCH_VERSION, sha1="645bd9d27379a90d051dec24eb7232244f2cd8f2"
            ),
            Artifact(
                _OS_PLUGIN_GROUP,
                "opensearch-scripting-painless-spi",
                OPENSEARCH_VERSION,
                sha1="71223aae74a978698dd2218f95917a82e111c9b5",
            ),
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
        jars=(
            Artifact(
                _OS_PLUGIN_GROUP,
                "mapper-extras-client",
                OPENSEARCH_VERSION,
                sha1="0750d08445584e74f92f54701bedca0211802c6b",
            ),
        ),
    ),
    ModuleSpec(
        name="analysis-common",
        classname="org.opensearch.analysis.common.CommonAnalysisPlugin",
        description="Adds the common analysis components (whitespace tokenizer, lowercase filter, ...)",
        jars=(
            Artifact(
                _OS_PLUGIN_GROUP,
                "analysis-common",
                OPENSEARCH_VERSION,
                sha1="bcae872f90ec26130dd6ec07504ab72225cb5af2",
            ),
        ),
        extended=("lang-painless",),
    ),
)

# Plugin zips, installed under plugins/<descriptor name>/ in this order.
PLUGINS: tuple[Artifact, ...] = (
    Artifact(_OS_PLUGIN_GROUP, "opensearch-knn", PLUGIN_VERSION, "zip", "7ded4cf706be052f7bfcccea7102770a9298b96e"),
    # Maven Central has no .sha1 (nor .pom) for this one: the pinned SHA-1 is the only check.
    Artifact(_OS_PLUGIN_GROUP, "neural-search", PLUGIN_VERSION, "zip", "af25af4caf1d2a7563e187df1b97dc4559c6176e"),
)

NORI_LUCENE = Artifact(
    "org.apache.lucene", "lucene-analysis-nori", LUCENE_VERSION, sha1="e265410a6a4d9cd23b2e9c73321e6bd307bc1422"
)


def all_artifacts(with_nori: bool = True) -> list[Artifact]:
    """Every artifact the assembly downloads."""
    arts = [DISTRIBUTION, *[a for m in MODULES for a in m.jars], *PLUGINS]
    if with_nori:
        arts.append(NORI_LUCENE)
    return arts
