"""A real single-node OpenSearch for tests and local use, without Docker.

The node is assembled from pinned artifacts on Maven Central:

* ``org.opensearch.distribution.integ-test-zip:opensearch`` (server + transport-netty4 only, no JDK),
* the modules ``lang-painless`` (with its dependencies), ``mapper-extras`` (``rank_features`` field and
  ``rank_feature`` query) and ``analysis-common``, shipped as plain jars: a plugin descriptor is written for each,
* the plugins ``opensearch-knn`` and ``neural-search`` (the ``neural_sparse`` query),
* ``analysis-nori``: no 2.19 build of it is published, so a small Korean analysis plugin is compiled here
  (needs ``javac``) against ``org.apache.lucene:lucene-analysis-nori``; it is skipped when no ``javac`` is found.

Downloads are verified against Maven's ``.sha1`` files and cached (``KSEARCH_CACHE_DIR`` or
``~/.cache/ksearch/opensearch``); the node runs detached, its state lives in ``<cache>/run/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ksearch.opensearch_state import default_cache_dir, node_process_alive, read_state, state_file

if TYPE_CHECKING:
    from rich.progress import Progress

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
HEAP_ENV = "KSEARCH_OPENSEARCH_HEAP"
DEFAULT_HEAP = "512m"
JAVA_MIN, JAVA_MAX = 11, 23  # 2.19 needs the Java Security Manager, which Java 24+ no longer has

# Bump when the assembled layout changes, so cached installs are rebuilt.
ASSEMBLY_REVISION = 1


# --------------------------------------------------------------------------- errors


class OpenSearchNodeError(RuntimeError):
    """Base class of the errors raised by the local node manager."""


class JavaNotFoundError(OpenSearchNodeError):
    """No usable Java runtime (11 to 23) was found."""


class DownloadError(OpenSearchNodeError):
    """An artifact could not be downloaded or failed its checksum."""

    def __init__(self, coordinate: str, url: str, reason: str) -> None:
        self.coordinate, self.url, self.reason = coordinate, url, reason
        super().__init__(f"could not download {coordinate} from {url}: {reason}")


class NodeStartError(OpenSearchNodeError):
    """The node did not come up; ``log_tail`` holds the end of its log."""

    def __init__(self, message: str, log_tail: str = "", log_path: Path | None = None) -> None:
        self.log_tail, self.log_path = log_tail, log_path
        text = message
        if log_path is not None:
            text += f"\nnode log: {log_path}"
        if log_tail:
            text += "\n--- last lines of the node log ---\n" + log_tail
        super().__init__(text)


# --------------------------------------------------------------------------- artifacts


@dataclass(frozen=True)
class Artifact:
    """One file in a Maven repository."""

    group: str
    name: str
    version: str
    ext: str = "jar"
    sha1: str = ""  # pinned SHA-1; checked in addition to Maven's .sha1 file when that exists

    @property
    def coordinate(self) -> str:
        """``group:artifact:version@ext``."""
        return f"{self.group}:{self.name}:{self.version}@{self.ext}"

    @property
    def relpath(self) -> str:
        """Path of the file inside a Maven repository."""
        g = self.group.replace(".", "/")
        return f"{g}/{self.name}/{self.version}/{self.name}-{self.version}.{self.ext}"

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


# --------------------------------------------------------------------------- helpers


def _stderr_console():  # -> rich.console.Console
    from rich.console import Console

    return Console(stderr=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    """True when nothing listens on `port` (connections of a stopped node in TIME_WAIT do not count: the node's
    own listener binds with SO_REUSEADDR too, so a restart on the same port works at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _java_major(java: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, env=_java_env_clean(), check=False
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


def _java_env_clean() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("JAVA_TOOL_OPTIONS", None)
    env.pop("_JAVA_OPTIONS", None)
    return env


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
        major = _java_major(java)
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


# OpenSearch refuses to run as root, and it finds out through JNA (geteuid). CI and many containers run
# as root, so there the JNA native library is kept from loading: OpenSearch then cannot tell, logs a
# warning and carries on without the native extras (mlockall, seccomp), which a local node does not need.
_AS_ROOT_JVM_OPTIONS = [
    "-Djna.nosys=true",
    "-Djna.noclasspath=true",
    "-Djna.nounpack=true",
    "-Djna.boot.library.path=/nonexistent-ksearch-no-jna",
]


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _extract_zip(zip_path: Path, dest: Path, strip_top: bool = False) -> None:
    """Extract a zip keeping unix file modes; optionally drop the single top-level folder."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            name = info.filename
            if strip_top:
                name = name.split("/", 1)[1] if "/" in name else ""
            if not name or name.endswith("/"):
                if name:
                    (dest / name).mkdir(parents=True, exist_ok=True)
                continue
            target = (dest / name).resolve()
            if not str(target).startswith(str(dest.resolve()) + os.sep):
                raise OpenSearchNodeError(f"unsafe path {info.filename!r} in {zip_path}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)


def _read_properties(text: str) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        props[k.strip()] = v.strip()
    return props


def _descriptor(name: str, classname: str, description: str, version: str, extended: tuple[str, ...] = ()) -> str:
    return (
        f"description={description}\n"
        f"version={version}\n"
        f"name={name}\n"
        f"classname={classname}\n"
        "java.version=11\n"
        f"opensearch.version={OPENSEARCH_VERSION}\n"
        "custom.foldername=\n"
        f"extended.plugins={','.join(extended)}\n"
        "has.native.controller=false\n"
    )


# --------------------------------------------------------------------------- the nori plugin source
# No analysis-nori build for 2.19 is published, so this small plugin (opensearch_nori/) is compiled at assembly time. It
# registers the usual names: the "nori" analyzer, the "nori_tokenizer" tokenizer and the
# "nori_part_of_speech", "nori_readingform" and "nori_number" token filters.

_NORI_PACKAGE = "dev.ksearch.opensearch.nori"
_NORI_CLASS = f"{_NORI_PACKAGE}.KsearchNoriPlugin"
_NORI_JAVA_SOURCE = Path(__file__).resolve().parent / "opensearch_nori" / "KsearchNoriPlugin.java"


# --------------------------------------------------------------------------- the manager


class LocalOpenSearch:
    """Downloads, assembles, starts and stops a local single-node OpenSearch."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        heap: str | None = None,
        quiet: bool = False,
    ) -> None:
        """Manage the node whose files live under ``cache_dir`` (default: ``default_cache_dir()``)."""
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.heap = heap or os.environ.get(HEAP_ENV) or DEFAULT_HEAP
        self.quiet = quiet
        self._proc: subprocess.Popen[bytes] | None = None
        self.started_here = False  # True once start() has launched the node from this object

    # ---- paths

    @property
    def downloads_dir(self) -> Path:
        """Where the downloaded artifacts are kept (Maven layout)."""
        return self.cache_dir / "downloads"

    @property
    def home(self) -> Path:
        """The assembled OpenSearch home."""
        return self.cache_dir / f"opensearch-{OPENSEARCH_VERSION}"

    @property
    def run_dir(self) -> Path:
        """Config, data, logs and state of the running node."""
        return self.cache_dir / "run"

    @property
    def state_file(self) -> Path:
        """JSON file with pid, port, url and log path of the running node (settings read it: opensearch_state)."""
        return state_file(self.cache_dir)

    @property
    def log_file(self) -> Path:
        """The node's console output."""
        return self.run_dir / "node.log"

    def _say(self, msg: str) -> None:
        if not self.quiet:
            _stderr_console().print(msg, highlight=False, soft_wrap=True)

    # ---- download

    def _fetch_text(self, url: str, coordinate: str) -> str:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                return resp.read().decode("ascii", "replace")
        except urllib.error.HTTPError as e:
            raise DownloadError(coordinate, url, f"HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError) as e:
            raise DownloadError(coordinate, url, str(getattr(e, "reason", e))) from e

    def _expected_sha1(self, artifact: Artifact) -> str:
        """The SHA-1 a download must have: Maven's .sha1 file, which must agree with the pinned one."""
        url = artifact.url() + ".sha1"
        try:
            published = self._fetch_text(url, artifact.coordinate).strip().split()[0].lower()
        except DownloadError as e:
            if artifact.sha1 and "HTTP 404" in e.reason:
                return artifact.sha1  # no .sha1 published: rely on the pinned one
            raise
        except IndexError:
            published = ""
        if not re.fullmatch(r"[0-9a-f]{40}", published):
            raise DownloadError(artifact.coordinate, url, f"not a SHA-1: {published[:60]!r}")
        if artifact.sha1 and published != artifact.sha1:
            raise DownloadError(
                artifact.coordinate, url, f"published SHA-1 {published} differs from the pinned {artifact.sha1}"
            )
        return published

    def download(self, artifact: Artifact, progress: Progress | None = None) -> Path:
        """Download one artifact into the cache (verified with its .sha1), or reuse the cached file."""
        dest = self.downloads_dir / artifact.relpath
        sha_file = dest.with_name(dest.name + ".sha1")
        if dest.is_file() and sha_file.is_file():
            return dest
        url = artifact.url()
        expected = self._expected_sha1(artifact)
        dest.parent.mkdir(parents=True, exist_ok=True)
        last_error: Exception | None = None
        for attempt in range(3):
            part = dest.with_name(f"{dest.name}.part{os.getpid()}")
            task = None
            try:
                with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as out:
                    total = int(resp.headers.get("Content-Length") or 0) or None
                    if progress is not None:
                        task = progress.add_task(dest.name, total=total)
                    digest = hashlib.sha1()
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        digest.update(chunk)
                        if task is not None:
                            progress.update(task, advance=len(chunk))
                if digest.hexdigest() != expected:
                    raise DownloadError(
                        artifact.coordinate, url, f"SHA-1 mismatch: got {digest.hexdigest()}, expected {expected}"
                    )
                os.replace(part, dest)
                sha_file.write_text(expected + "\n")
                return dest
            except urllib.error.HTTPError as e:
                part.unlink(missing_ok=True)
                raise DownloadError(artifact.coordinate, url, f"HTTP {e.code} {e.reason}") from e
            except (urllib.error.URLError, OSError, DownloadError) as e:
                part.unlink(missing_ok=True)
                last_error = e
                time.sleep(1 + 2 * attempt)
            finally:
                if task is not None:
                    progress.remove_task(task)
        assert last_error is not None
        if isinstance(last_error, DownloadError):
            raise last_error
        raise DownloadError(artifact.coordinate, url, str(getattr(last_error, "reason", last_error))) from last_error

    def _download_all(self, artifacts: list[Artifact]) -> dict[Artifact, Path]:
        missing = [a for a in artifacts if not (self.downloads_dir / a.relpath).is_file()]
        if not missing:
            return {a: self.download(a) for a in artifacts}
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._say(f"Downloading {len(missing)} OpenSearch {OPENSEARCH_VERSION} artifact(s) into {self.downloads_dir}")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=_stderr_console(),
            disable=self.quiet,
            transient=True,
        ) as progress:
            return {a: self.download(a, progress) for a in artifacts}

    # ---- assembly

    def _marker(self) -> Path:
        return self.home / ".ksearch-assembled.json"

    def installed(self) -> dict[str, Any] | None:
        """The assembly record (modules, plugins) if the node is assembled, else None."""
        try:
            info = json.loads(self._marker().read_text())
        except (OSError, ValueError):
            return None
        if info.get("revision") != ASSEMBLY_REVISION or info.get("version") != OPENSEARCH_VERSION:
            return None
        return info

    def ensure_installed(self) -> Path:
        """Download and assemble OpenSearch with its modules and plugins (idempotent); return its home."""
        if self.installed() is not None:
            return self.home
        with _file_lock(self.cache_dir / ".assemble.lock"):
            if self.installed() is not None:
                return self.home
            java_home = find_java_home()
            javac = java_home / "bin" / "javac"
            with_nori = javac.is_file()
            files = self._download_all(all_artifacts(with_nori))
            self._say(f"Assembling OpenSearch {OPENSEARCH_VERSION} in {self.home}")
            tmp = Path(tempfile.mkdtemp(prefix=f".opensearch-{OPENSEARCH_VERSION}-", dir=self.cache_dir))
            try:
                _extract_zip(files[DISTRIBUTION], tmp, strip_top=True)
                for sub in ("bin",):
                    for p in (tmp / sub).iterdir():
                        p.chmod(0o755)
                for d in ("plugins", "logs", "modules"):
                    (tmp / d).mkdir(exist_ok=True)
                modules = ["transport-netty4"]
                for spec in MODULES:
                    mdir = tmp / "modules" / spec.name
                    mdir.mkdir(parents=True)
                    for art in spec.jars:
                        shutil.copy2(files[art], mdir / files[art].name)
                    (mdir / "plugin-descriptor.properties").write_text(
                        _descriptor(spec.name, spec.classname, spec.description, OPENSEARCH_VERSION, spec.extended)
                    )
                    if spec.policy:
                        (mdir / "plugin-security.policy").write_text(spec.policy)
                    modules.append(spec.name)
                plugins = []
                for art in PLUGINS:
                    with zipfile.ZipFile(files[art]) as zf:
                        props = _read_properties(zf.read("plugin-descriptor.properties").decode("utf-8"))
                    name = props.get("custom.foldername") or props["name"]
                    if props.get("opensearch.version") != OPENSEARCH_VERSION:
                        raise OpenSearchNodeError(
                            f"{art.coordinate} is built for OpenSearch {props.get('opensearch.version')}, "
                            f"not {OPENSEARCH_VERSION}"
                        )
                    _extract_zip(files[art], tmp / "plugins" / name)
                    plugins.append(props["name"])
                nori_note = None
                if with_nori:
                    try:
                        self._build_nori(tmp, java_home, files[NORI_LUCENE])
                        plugins.append("analysis-nori")
                    except OpenSearchNodeError as e:
                        nori_note = str(e)
                        self._say(f"[yellow]analysis-nori skipped:[/] {e}")
                else:
                    nori_note = f"no javac in {java_home}"
                    self._say(f"[yellow]analysis-nori skipped:[/] {nori_note} (install a JDK, not only a JRE)")
                info = {
                    "revision": ASSEMBLY_REVISION,
                    "version": OPENSEARCH_VERSION,
                    "modules": modules,
                    "plugins": plugins,
                    "nori_skipped": nori_note,
                    "artifacts": {a.coordinate: a.url() for a in files},
                    "assembled_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                }
                (tmp / self._marker().name).write_text(json.dumps(info, indent=2) + "\n")
                if self.home.exists():
                    shutil.rmtree(self.home)
                os.replace(tmp, self.home)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            return self.home

    def _build_nori(self, home: Path, java_home: Path, nori_jar: Path) -> None:
        """Compile the small analysis-nori plugin into home/plugins/analysis-nori."""
        with tempfile.TemporaryDirectory(prefix="ksearch-nori-") as work_s:
            work = Path(work_s)
            src = work / "src" / Path(*_NORI_PACKAGE.split(".")) / "KsearchNoriPlugin.java"
            src.parent.mkdir(parents=True)
            src.write_text(_NORI_JAVA_SOURCE.read_text(encoding="utf-8"))
            classes = work / "classes"
            classes.mkdir()
            cp = os.pathsep.join([str(home / "lib" / "*"), str(nori_jar)])
            cmd = [
                str(java_home / "bin" / "javac"),
                "--release",
                "11",
                "-nowarn",
                "-encoding",
                "UTF-8",
                "-cp",
                cp,
                "-d",
                str(classes),
                str(src),
            ]
            res = subprocess.run(cmd, capture_output=True, text=True, env=_java_env_clean(), timeout=300, check=False)
            if res.returncode != 0:
                raise OpenSearchNodeError(f"javac failed:\n{(res.stdout + res.stderr)[-3000:]}")
            pdir = home / "plugins" / "analysis-nori"
            pdir.mkdir(parents=True)
            with zipfile.ZipFile(pdir / "ksearch-analysis-nori.jar", "w", zipfile.ZIP_DEFLATED) as jar:
                jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nCreated-By: ksearch\r\n\r\n")
                for f in sorted(classes.rglob("*.class")):
                    jar.write(f, f.relative_to(classes).as_posix())
            shutil.copy2(nori_jar, pdir / nori_jar.name)
            (pdir / "plugin-descriptor.properties").write_text(
                _descriptor(
                    "analysis-nori",
                    _NORI_CLASS,
                    f"Korean (nori) analysis built by ksearch on {NORI_LUCENE.coordinate}",
                    OPENSEARCH_VERSION,
                )
            )

    # ---- state

    def _read_state(self) -> dict | None:
        return read_state(self.state_file)

    def _pid_alive(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is None
        with contextlib.suppress(ChildProcessError, OSError):
            # Reap it if it is our exited child.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return False
        return node_process_alive(pid, self.home)

    @staticmethod
    def _answers(url: str, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(url + "/", timeout=timeout) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _health(self, url: str) -> str | None:
        try:
            with urllib.request.urlopen(url + "/_cluster/health?wait_for_status=yellow&timeout=1s", timeout=5) as r:
                return json.loads(r.read()).get("status")
        except urllib.error.HTTPError as e:  # 408 when the wait timed out
            with contextlib.suppress(Exception):
                return json.loads(e.read()).get("status")
            return None
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the node's console log ("" if there is none)."""
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 256 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def status(self) -> str | None:
        """The node's URL if it is running and answering, else None."""
        state = self._read_state()
        if not state or not self._pid_alive(int(state["pid"])):
            return None
        return state["url"] if self._answers(state["url"]) else None

    # ---- start / stop

    def _write_config(self, conf: Path, http_port: int, transport_port: int) -> None:
        conf.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.home / "config" / "log4j2.properties", conf / "log4j2.properties")
        (conf / "jvm.options.d").mkdir(exist_ok=True)
        (conf / "jvm.options").write_text(
            "\n".join(
                [
                    f"-Xms{self.heap}",
                    f"-Xmx{self.heap}",
                    "-XX:+UseG1GC",
                    "-XX:G1ReservePercent=25",
                    "-Djava.io.tmpdir=${OPENSEARCH_TMPDIR}",
                    "-XX:ErrorFile=logs/hs_err_pid%p.log",
                    "18-:-Djava.security.manager=allow",
                    "20-:--add-modules=jdk.incubator.vector",
                    (
                        "-Djava.util.concurrent.ForkJoinPool.common.threadFactory="
                        "org.opensearch.secure_sm.SecuredForkJoinWorkerThreadFactory"
                    ),
                    *(_AS_ROOT_JVM_OPTIONS if _running_as_root() else []),
                    "",
                ]
            )
        )
        data, logs = self.run_dir / "data", self.run_dir / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        (conf / "opensearch.yml").write_text(
            "# written by ksearch.opensearch_node on every start\n"
            "cluster.name: ksearch-local\n"
            "node.name: ksearch-local\n"
            "network.host: 127.0.0.1\n"
            f"http.port: {http_port}\n"
            f"transport.port: {transport_port}\n"
            "discovery.type: single-node\n"
            f"path.data: {json.dumps(str(data))}\n"
            f"path.logs: {json.dumps(str(logs))}\n"
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
            "bootstrap.memory_lock: false\n"
        )

    def _spawn(self, http_port: int, java_home: Path) -> dict:
        transport_port = free_port()
        while transport_port == http_port:
            transport_port = free_port()
        conf = self.run_dir / "config"
        self._write_config(conf, http_port, transport_port)
        env = _java_env_clean()
        env.update(
            OPENSEARCH_PATH_CONF=str(conf),
            OPENSEARCH_JAVA_HOME=str(java_home),
            JAVA_HOME=str(java_home),
        )
        env.pop("OPENSEARCH_JAVA_OPTS", None)
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:
            self._proc = subprocess.Popen(
                [str(self.home / "bin" / "opensearch")],
                cwd=self.run_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        url = f"http://127.0.0.1:{http_port}"
        state = {
            "pid": self._proc.pid,
            "port": http_port,
            "transport_port": transport_port,
            "url": url,
            "log": str(self.log_file),
            "home": str(self.home),
            "version": OPENSEARCH_VERSION,
            "java_home": str(java_home),
            "started_at": time.time(),
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, self.state_file)
        return state

    def _wait_ready(self, state: dict, deadline: float) -> str:
        url, pid = state["url"], int(state["pid"])
        while True:
            if not self._pid_alive(pid):
                self.state_file.unlink(missing_ok=True)
                raise NodeStartError(
                    f"OpenSearch {OPENSEARCH_VERSION} exited while starting", self.log_tail(), self.log_file
                )
            if self._health(url) in ("green", "yellow"):
                return url
            if time.monotonic() > deadline:
                raise NodeStartError(
                    f"OpenSearch did not become ready at {url} in time", self.log_tail(), self.log_file
                )
            time.sleep(0.5)

    def start(self, port: int | None = None, timeout: float = 180) -> str:
        """Start the node in the background (or find it running); return its URL once yellow/green."""
        deadline = time.monotonic() + timeout
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.run_dir / ".start.lock"):
            state = self._read_state()
            if state and self._pid_alive(int(state["pid"])):
                return self._wait_ready(state, deadline)
            self.state_file.unlink(missing_ok=True)
            self.ensure_installed()
            java_home = find_java_home()
            if port is not None and not _port_free(port):
                raise NodeStartError(f"port {port} on 127.0.0.1 is already in use")
            attempts = 1 if port is not None else 3
            for attempt in range(attempts):
                http_port = port if port is not None else free_port()
                self._say(
                    f"Starting OpenSearch {OPENSEARCH_VERSION} on http://127.0.0.1:{http_port} (log: {self.log_file})"
                )
                state = self._spawn(http_port, java_home)
                try:
                    url = self._wait_ready(state, deadline)
                    self.started_here = True
                    return url
                except NodeStartError:
                    self._kill(int(state["pid"]), grace=10)
                    self.state_file.unlink(missing_ok=True)
                    tail = self.log_tail(200)
                    if attempt + 1 < attempts and "BindException" in tail and time.monotonic() < deadline:
                        continue  # the free port was taken meanwhile: try another
                    raise
            raise AssertionError("unreachable")

    def _kill(self, pid: int, grace: float) -> None:
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)  # the node runs in its own session: pgid == pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
            end = time.monotonic() + wait
            while time.monotonic() < end:
                if not self._pid_alive(pid):
                    if self._proc is not None and self._proc.pid == pid:
                        self._proc.wait()
                        self._proc = None
                    return
                time.sleep(0.2)
        raise OpenSearchNodeError(f"could not stop OpenSearch (pid {pid})")

    def stop(self, timeout: float = 60) -> bool:
        """Stop the node (SIGTERM, then SIGKILL after ``timeout`` s); return False if none was running."""
        with _file_lock(self.run_dir / ".start.lock"):
            state = self._read_state()
            if not state:
                return False
            pid = int(state["pid"])
            running = self._pid_alive(pid)
            if running:
                self._kill(pid, grace=timeout)
            self.state_file.unlink(missing_ok=True)
            return running


# --------------------------------------------------------------------------- module-level shortcuts

_default: LocalOpenSearch | None = None


def _node() -> LocalOpenSearch:
    global _default
    if _default is None or _default.cache_dir != default_cache_dir():
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


if __name__ == "__main__":  # pragma: no cover - handy for manual runs
    cmd = sys.argv[1] if len(sys.argv) > 1 else "status"
    print({"start": start, "stop": stop, "status": status, "install": ensure_installed}[cmd]())


def node_sharing_installation(cache_dir: Path, *, quiet: bool = True) -> "LocalOpenSearch":
    """A `LocalOpenSearch` with its own config, data, logs and port under `cache_dir`, whose home links to the
    default node's assembled installation (assembled first if needed), so stopping it never touches that node."""
    home = LocalOpenSearch(quiet=True).ensure_installed()
    cache_dir.mkdir(parents=True, exist_ok=True)
    node = LocalOpenSearch(cache_dir=cache_dir, quiet=quiet)
    if not node.home.exists():
        os.symlink(home, node.home, target_is_directory=True)
    return node
