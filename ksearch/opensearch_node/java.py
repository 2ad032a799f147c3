"""Finding a Java runtime the chosen OpenSearch release accepts (2.19: 11 to 23; 3.6: 21 to 25), preferring a JDK
(with ``javac``, for the Korean analyzer), and the environment it runs in."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ksearch.opensearch_node.errors import JavaNotFoundError
from ksearch.opensearch_node.releases import RELEASE_2_19, Release, get_release

JAVA_MIN, JAVA_MAX = RELEASE_2_19.java_min, RELEASE_2_19.java_max  # of the default release (kept for callers)

# Debian 12 packages only OpenJDK 17; a Java 21+ has to come from elsewhere (e.g. a Temurin JDK in /usr/lib/jvm).
_INSTALL_HINT = {2: "`apt-get install openjdk-17-jdk-headless`",
                 3: "a JDK 21 or 25 (`apt-get install openjdk-21-jdk-headless` where Debian has it, else a Temurin JDK)"}


def java_env_clean() -> dict[str, str]:
    """This process's environment without the variables that inject JVM options."""
    env = dict(os.environ)
    env.pop("JAVA_TOOL_OPTIONS", None)
    env.pop("_JAVA_OPTIONS", None)
    return env


def java_major(java: Path) -> int | None:
    """The major version `java -version` reports (8 for 1.8), or None."""
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, env=java_env_clean(), check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    if major == 1 and m.group(2):  # 1.8 -> 8
        major = int(m.group(2))
    return major


def java_candidates() -> list[tuple[str, Path]]:
    """Java homes to try, in order: $KSEARCH_JAVA_HOME, $OPENSEARCH_JAVA_HOME, $JAVA_HOME, the `java` on PATH,
    then every folder in /usr/lib/jvm."""
    candidates: list[tuple[str, Path]] = []
    for var in ("KSEARCH_JAVA_HOME", "OPENSEARCH_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            candidates.append((f"${var}", Path(os.environ[var])))
    which = shutil.which("java")
    if which:
        candidates.append(("java on PATH", Path(which).resolve().parent.parent))
    jvm_dir = Path("/usr/lib/jvm")
    if jvm_dir.is_dir():
        candidates.extend((str(p), p) for p in sorted(jvm_dir.iterdir()) if p.is_dir() and not p.is_symlink())
    return candidates


def find_java_home(release: Release | None = None) -> Path:
    """The first Java home (`java_candidates` order) whose version `release` (default: the default release) accepts,
    one with ``javac`` before one without; JavaNotFoundError listing what was tried otherwise."""
    release = release or get_release()
    tried: list[str] = []
    seen: set[Path] = set()
    runtime_only: Path | None = None
    for label, home in java_candidates():
        home = home.resolve()
        if home in seen:
            continue
        seen.add(home)
        java = home / "bin" / "java"
        if not java.is_file():
            tried.append(f"{label}: {java} does not exist")
            continue
        major = java_major(java)
        if major is None:
            tried.append(f"{label}: {java} did not report a version")
        elif not release.java_min <= major <= release.java_max:
            tried.append(f"{label}: {java} is Java {major}")
        elif (home / "bin" / "javac").is_file():
            return home
        elif runtime_only is None:
            runtime_only = home
    if runtime_only is not None:
        return runtime_only
    raise JavaNotFoundError(
        f"OpenSearch {release.version} needs Java {release.java_min} to {release.java_max}; none found.\n"
        + ("Tried:\n  " + "\n  ".join(tried) + "\n" if tried else "")
        + f"Install {_INSTALL_HINT.get(release.major, 'one')} or set KSEARCH_JAVA_HOME / JAVA_HOME."
    )
