"""Assembling a node of one `Release` from its downloaded artifacts: the server, the modules the zip lacks (with the
descriptors we write), the plugin zips, and the small analysis-nori plugin compiled here.

No analysis-nori build is on Maven Central (neither 2.19 nor 3.x), so `nori_plugin/KsearchNoriPlugin.java` is
compiled at assembly time (needs `javac` of a JDK the release runs on, ``--release`` its Java level) against the
server's jars and Lucene's nori jar of that release; the one source compiles against both (it reads a user dictionary
through ``Analysis.getReaderFromFile``, which 2.x and 3.x share, where ``Environment#configFile`` became
``configDir`` in 3.0). It registers the usual names: the "nori" analyzer, the "nori_tokenizer" tokenizer and the
"nori_part_of_speech", "nori_readingform" and "nori_number" token filters.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ksearch.opensearch_node import ml_commons
from ksearch.opensearch_node.artifacts import Artifact, ModuleSpec
from ksearch.opensearch_node.errors import OpenSearchNodeError
from ksearch.opensearch_node.java import java_env_clean
from ksearch.opensearch_node.releases import Release

# Bump when the assembled layout changes, so cached installs are rebuilt.
ASSEMBLY_REVISION = 1
MARKER = ".ksearch-assembled.json"

_NORI_PACKAGE = "dev.ksearch.opensearch.nori"
_NORI_CLASS = f"{_NORI_PACKAGE}.KsearchNoriPlugin"
_NORI_JAVA_SOURCE = Path(__file__).resolve().parent / "nori_plugin" / "KsearchNoriPlugin.java"


def assembly_record(home: Path, version: str) -> dict[str, Any] | None:
    """The assembly record (modules, plugins) of the node at `home` if it is OpenSearch `version` assembled by this
    revision, else None."""
    try:
        info = json.loads((home / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if info.get("revision") != ASSEMBLY_REVISION or info.get("version") != version:
        return None
    return info


def assemble(release: Release, home: Path, files: dict[Artifact, Path], java_home: Path, *, with_nori: bool,
             say: Callable[[str], None], ml: bool = False) -> None:
    """Build the node of `release` at `home` from the downloaded `files` (in a temporary folder beside it, swapped
    in at the end); `ml` adds ml-commons with its PyTorch runtime (`ml_commons`)."""
    version = release.version
    say(f"Assembling OpenSearch {version}{' with ml-commons' if ml else ''} in {home}")
    tmp = Path(tempfile.mkdtemp(prefix=f".opensearch-{version}-", dir=home.parent))
    try:
        extract_zip(files[release.distribution], tmp, strip_top=True)
        for p in (tmp / "bin").iterdir():
            p.chmod(0o755)
        for d in ("plugins", "logs", "modules"):
            (tmp / d).mkdir(exist_ok=True)
        modules = sorted(p.name for p in (tmp / "modules").iterdir() if p.is_dir())
        modules += _install_modules(tmp, files, release.modules, version)
        plugins = _install_plugins(tmp, files, release.plugins, version)
        if ml:
            modules += _install_modules(tmp, files, (ml_commons.REINDEX_MODULE,), version)
            plugins += _install_plugins(tmp, files, ml_commons.ML_PLUGINS, version)
            ml_commons.install_pytorch_runtime(tmp, files)
        nori_note = None
        if with_nori:
            try:
                build_nori(release, tmp, java_home, files[release.nori_lucene])
                plugins.append("analysis-nori")
            except OpenSearchNodeError as e:
                nori_note = str(e)
                say(f"[yellow]analysis-nori skipped:[/] {e}")
        else:
            nori_note = f"no javac in {java_home}"
            say(f"[yellow]analysis-nori skipped:[/] {nori_note} (install a JDK, not only a JRE)")
        info = {
            "revision": ASSEMBLY_REVISION,
            "version": version,
            "java_home": str(java_home),
            "modules": modules,
            "plugins": plugins,
            "nori_skipped": nori_note,
            "ml": ml,
            "artifacts": {a.coordinate: a.url() for a in files},
            "assembled_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        if home.exists():
            shutil.rmtree(home)
        os.replace(tmp, home)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _install_modules(home: Path, files: dict[Artifact, Path], specs: tuple[ModuleSpec, ...], version: str) -> list[str]:
    """Copy each module's jars under modules/<name>/ with the descriptor (and policy) we write for it."""
    names = []
    for spec in specs:
        mdir = home / "modules" / spec.name
        mdir.mkdir(parents=True)
        for art in spec.jars:
            shutil.copy2(files[art], mdir / files[art].name)
        (mdir / "plugin-descriptor.properties").write_text(
            descriptor(spec.name, spec.classname, spec.description, version, spec.extended)
        )
        if spec.policy:
            (mdir / "plugin-security.policy").write_text(spec.policy)
        names.append(spec.name)
    return names


def _install_plugins(home: Path, files: dict[Artifact, Path], plugins: tuple[Artifact, ...], version: str) -> list[str]:
    """Unpack each plugin zip under plugins/<descriptor name>/ (refusing one built for another server version)."""
    names = []
    for art in plugins:
        with zipfile.ZipFile(files[art]) as zf:
            props = read_properties(zf.read("plugin-descriptor.properties").decode("utf-8"))
        name = props.get("custom.foldername") or props["name"]
        if props.get("opensearch.version") != version:
            raise OpenSearchNodeError(
                f"{art.coordinate} is built for OpenSearch {props.get('opensearch.version')}, not {version}"
            )
        extract_zip(files[art], home / "plugins" / name)
        names.append(props["name"])
    return names


def build_nori(release: Release, home: Path, java_home: Path, nori_jar: Path) -> None:
    """Compile the small analysis-nori plugin against `release`'s jars into home/plugins/analysis-nori."""
    with tempfile.TemporaryDirectory(prefix="ksearch-nori-") as work_s:
        work = Path(work_s)
        src = work / "src" / Path(*_NORI_PACKAGE.split(".")) / "KsearchNoriPlugin.java"
        src.parent.mkdir(parents=True)
        src.write_text(_NORI_JAVA_SOURCE.read_text(encoding="utf-8"))
        classes = work / "classes"
        classes.mkdir()
        cp = os.pathsep.join([str(home / "lib" / "*"), str(nori_jar)])
        cmd = [str(java_home / "bin" / "javac"), "--release", str(release.java_release), "-nowarn", "-encoding", "UTF-8", "-cp", cp,
               "-d", str(classes), str(src)]
        res = subprocess.run(cmd, capture_output=True, text=True, env=java_env_clean(), timeout=300, check=False)
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
            descriptor(
                "analysis-nori",
                _NORI_CLASS,
                f"Korean (nori) analysis built by ksearch on {release.nori_lucene.coordinate}",
                release.version,
                java_version=release.java_release,
            )
        )


def extract_zip(zip_path: Path, dest: Path, strip_top: bool = False) -> None:
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


def read_properties(text: str) -> dict[str, str]:
    """A Java .properties text as a dict (comments and blank lines skipped)."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        k, v = line.split("=", 1)
        props[k.strip()] = v.strip()
    return props


def descriptor(name: str, classname: str, description: str, version: str, extended: tuple[str, ...] = (), *,
               java_version: int = 11) -> str:
    """A plugin-descriptor.properties for a plugin or module of OpenSearch `version`."""
    return (
        f"description={description}\n"
        f"version={version}\n"
        f"name={name}\n"
        f"classname={classname}\n"
        f"java.version={java_version}\n"
        f"opensearch.version={version}\n"
        "custom.foldername=\n"
        f"extended.plugins={','.join(extended)}\n"
        "has.native.controller=false\n"
    )
