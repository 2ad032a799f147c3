"""Finding a Java runtime the node accepts (11 to 23), and the environment it runs in."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ksearch.opensearch_node.artifacts import OPENSEARCH_VERSION
from ksearch.opensearch_node.errors import JavaNotFoundError

JAVA_MIN, JAVA_MAX = 11, 23  # 2.19 needs the Java Security Manager, which Java 24+ no longer has


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


def find_java_home() -> Path:
    """A Java home with a runtime OpenSearch OPENSEARCH_VERSION accepts (11 to 23), or JavaNotFoundError."""
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
    tried: list[str] = []
    seen: set[Path] = set()
    for label, home in candidates:
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
        elif JAVA_MIN <= major <= JAVA_MAX:
            return home
        else:
            tried.append(f"{label}: {java} is Java {major}")
    raise JavaNotFoundError(
        f"OpenSearch {OPENSEARCH_VERSION} needs Java {JAVA_MIN} to {JAVA_MAX} (17 recommended); none found.\n"
        + ("Tried:\n  " + "\n  ".join(tried) + "\n" if tried else "")
        + "Install one (e.g. `apt-get install openjdk-17-jdk-headless`) or set KSEARCH_JAVA_HOME / JAVA_HOME."
    )

