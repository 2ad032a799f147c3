"""What a node is assembled from: a file in a Maven repository (`Artifact`) and a module made of such jars
(`ModuleSpec`). The pinned artifacts of each OpenSearch version are in `releases`."""

from __future__ import annotations

import os
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ModuleSpec:
    """A module shipped as jars; we write its plugin descriptor ourselves."""

    name: str
    classname: str
    description: str
    jars: tuple[Artifact, ...]
    extended: tuple[str, ...] = ()
    policy: str = ""
