"""The two OpenSearch releases without a node: version choice, pins, the Java each picks, per-version config and data,
and the refusal to start one version over another's running node (tests marked every_opensearch_version run the
real nodes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ksearch.opensearch_node import (DEFAULT_VERSION, OPENSEARCH_VERSION_ENV, RELEASE_2_19, RELEASE_3_6, RELEASES,
                                     JavaNotFoundError, LocalOpenSearch, NodeStartError, UnknownVersionError,
                                     get_release)
from ksearch.opensearch_node import java as java_mod
from retrieval.backends.opensearch_state import NODE_MAIN_CLASS


def test_versions_are_chosen_by_name_major_or_environment(monkeypatch):
    monkeypatch.delenv(OPENSEARCH_VERSION_ENV, raising=False)
    assert get_release().version == DEFAULT_VERSION == "2.19.1"
    assert get_release("3").version == get_release("3.6").version == "3.6.0"
    assert get_release("2.19").version == "2.19.1"
    monkeypatch.setenv(OPENSEARCH_VERSION_ENV, "3.6.0")
    assert get_release() is RELEASE_3_6 and LocalOpenSearch().version == "3.6.0"
    monkeypatch.setenv(OPENSEARCH_VERSION_ENV, "3.7.0")
    with pytest.raises(UnknownVersionError, match=r"'3.7.0' \(from \$KSEARCH_OPENSEARCH_VERSION\).*2.19.1, 3.6.0"):
        get_release()


@pytest.mark.parametrize("release", list(RELEASES.values()), ids=list(RELEASES))
def test_every_download_of_a_release_is_pinned_and_of_its_version(release):
    arts = release.artifacts()
    assert all(len(a.sha1) == 40 for a in arts)
    assert release.distribution.version == release.version
    assert {p.name for p in release.plugins} == {"opensearch-knn", "neural-search"}
    assert all(p.version == release.plugin_version for p in release.plugins)
    assert release.nori_lucene.version == release.lucene_version
    assert all(j.version == release.version for m in release.modules for j in m.jars if j.group == "org.opensearch.plugin")


def test_each_release_has_its_own_home_java_options_and_data(tmp_path):
    old, new = LocalOpenSearch(tmp_path, version="2.19.1"), LocalOpenSearch(tmp_path, version="3.6.0")
    assert old.home.name == "opensearch-2.19.1" and new.home.name == "opensearch-3.6.0"
    assert old.run_dir == new.run_dir  # one node per cache folder
    assert old.data_dir != new.data_dir  # 2.19 cannot read what 3.x writes
    for node in (old, new):
        (node.home / "config").mkdir(parents=True)
        (node.home / "config" / "log4j2.properties").write_text("")
        conf = tmp_path / f"conf-{node.version}"
        node._write_config(conf, 9200, 9300)
        node.jvm = (conf / "jvm.options").read_text()
        assert f"path.data: {json.dumps(str(node.data_dir))}" in (conf / "opensearch.yml").read_text()
    assert "java.security.manager=allow" in old.jvm and "javaagent" not in old.jvm
    assert "-javaagent:agent/opensearch-agent.jar" in new.jvm and "security.manager" not in new.jvm


def _fake_java(home: Path, version: str, javac: bool = True) -> Path:
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-01-01' >&2\n")
    java.chmod(0o755)
    if javac:
        (home / "bin" / "javac").write_text("#!/bin/sh\n")
    return home


def test_each_release_picks_a_java_it_runs_on_preferring_a_jdk(tmp_path, monkeypatch):
    homes = {
        "jre17": _fake_java(tmp_path / "jre17", "17.0.15", javac=False),
        "jdk17": _fake_java(tmp_path / "jdk17", "17.0.15"),
        "jre21": _fake_java(tmp_path / "jre21", "21.0.2", javac=False),
        "jdk25": _fake_java(tmp_path / "jdk25", "25.0.3"),
        "jdk26": _fake_java(tmp_path / "jdk26", "26"),
    }
    monkeypatch.setattr(java_mod, "java_candidates", lambda: [(name, home) for name, home in homes.items()])
    assert java_mod.find_java_home(RELEASE_2_19) == homes["jdk17"].resolve()
    assert java_mod.find_java_home(RELEASE_3_6) == homes["jdk25"].resolve()
    monkeypatch.setattr(java_mod, "java_candidates", lambda: [("jre21", homes["jre21"]), ("jdk17", homes["jdk17"])])
    assert java_mod.find_java_home(RELEASE_3_6) == homes["jre21"].resolve()  # a runtime without javac: nori skipped
    monkeypatch.setattr(java_mod, "java_candidates", lambda: [("jdk17", homes["jdk17"]), ("jdk26", homes["jdk26"])])
    with pytest.raises(JavaNotFoundError) as err:
        java_mod.find_java_home(RELEASE_3_6)
    message = str(err.value)
    assert "OpenSearch 3.6.0 needs Java 21 to 25" in message and "jdk17" in message and "Java 26" in message


def test_a_node_of_another_version_running_in_the_cache_is_not_taken_for_this_one(tmp_path):
    running = LocalOpenSearch(tmp_path, version="2.19.1")
    running.run_dir.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", NODE_MAIN_CLASS])
    try:
        running.state_file.write_text(json.dumps({"pid": proc.pid, "url": "http://127.0.0.1:1", "version": "2.19.1"}))
        start = time.monotonic()
        with pytest.raises(NodeStartError, match=r"is OpenSearch 2\.19\.1, not 3\.6\.0: stop it"):
            LocalOpenSearch(tmp_path, version="3.6.0").start(timeout=5)
        assert time.monotonic() - start < 5
        assert running.state_file.exists()  # the running node is left alone
    finally:
        proc.kill()
        proc.wait()


def test_cli_names_the_versions_it_can_assemble(tmp_path, monkeypatch):
    from ksearch.opensearch_cli import opensearch_app

    monkeypatch.setenv("KSEARCH_CACHE_DIR", str(tmp_path))
    result = CliRunner().invoke(opensearch_app, ["install", "--version", "1.3"])
    assert result.exit_code == 1 and "choose one of 2.19.1, 3.6.0" in result.output
    assert not any(tmp_path.iterdir())  # nothing downloaded
    assert "--version" in CliRunner().invoke(opensearch_app, ["start", "--help"]).output


def test_ml_commons_is_refused_for_a_release_it_is_not_pinned_for(tmp_path):
    from ksearch.opensearch_node import OpenSearchNodeError

    with pytest.raises(OpenSearchNodeError, match="ml-commons .* 2.19.1 only, not 3.6.0"):
        LocalOpenSearch(tmp_path, version="3.6.0", ml=True).ensure_installed()


def test_cross_version_tests_run_on_every_release_unless_narrowed(monkeypatch):
    from opensearch_fixture import URL_ENV, cross_versions

    class Config:
        option = None

        def getoption(self, name):
            return self.option

    config = Config()
    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.delenv(OPENSEARCH_VERSION_ENV, raising=False)
    assert cross_versions(config) == ["2.19.1", "3.6.0"]
    monkeypatch.setenv(OPENSEARCH_VERSION_ENV, "3")
    assert cross_versions(config) == ["3.6.0"]
    config.option = "2.19,3.6.0"
    assert cross_versions(config) == ["2.19.1", "3.6.0"]
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9200")
    assert cross_versions(config) == []  # that node alone
