"""The ml-commons node's setup without a node: its home, settings and environment, the PyTorch runtime it unpacks,
and the register call's checks before any request (tests/test_opensearch_ml.py runs the real thing)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ksearch.opensearch_node import LocalOpenSearch, NodeStartError, OpenSearchNodeError
from ksearch.opensearch_node.ml_commons import (DJL_VERSION, LIBTORCH_VERSION, ML_ARTIFACTS, ML_SETTINGS, PLATFORM,
                                                PYTORCH_DIR, PYTORCH_JNI, PYTORCH_NATIVE, install_pytorch_runtime,
                                                ml_environment, supported_here)
import retrieval.backends.ml_commons_client as ml_commons_client
from retrieval.backends.ml_commons_client import (THROTTLED_PAUSES, MLCommonsError, model_state, model_zip_facts,
                                                  register_model_zip)
from retrieval.backends.opensearch_state import NODE_MAIN_CLASS


def test_the_ml_node_has_its_own_home_and_the_single_node_settings(tmp_path):
    plain, ml = LocalOpenSearch(tmp_path), LocalOpenSearch(tmp_path, ml=True)
    assert ml.home != plain.home and ml.home.name.endswith("-ml")
    assert ml.run_dir == plain.run_dir  # one node per cache folder, whichever home it runs from
    for node in (plain, ml):
        (node.home / "config").mkdir(parents=True)
        (node.home / "config" / "log4j2.properties").write_text("")
        conf = tmp_path / ("conf-ml" if node.ml else "conf")
        node._write_config(conf, 9200, 9300)
        yml = (conf / "opensearch.yml").read_text()
        if node.ml:
            assert all(f"{key}: {value}\n" in yml for key, value in ML_SETTINGS.items())
        else:
            assert "ml_commons" not in yml
    assert ML_SETTINGS["plugins.ml_commons.only_run_on_ml_node"] == "false"


def test_djl_is_pointed_at_the_runtime_in_the_home(tmp_path):
    env = ml_environment(tmp_path)
    assert env["PYTORCH_LIBRARY_PATH"] == str(tmp_path / PYTORCH_DIR)
    assert env["PYTORCH_VERSION"] == LIBTORCH_VERSION == PYTORCH_NATIVE.version
    assert PYTORCH_JNI.version.startswith(LIBTORCH_VERSION + "-")


def test_native_jars_are_found_by_their_classifier():
    assert PYTORCH_NATIVE.relpath == (f"ai/djl/pytorch/pytorch-native-cpu/{LIBTORCH_VERSION}/"
                                      f"pytorch-native-cpu-{LIBTORCH_VERSION}-{PLATFORM}.jar")
    assert PYTORCH_NATIVE.coordinate.endswith(f":{PLATFORM}@jar")
    assert all(len(a.sha1) == 40 for a in ML_ARTIFACTS)  # every download is pinned


def _jar(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def runtime_jars(tmp_path) -> dict:
    native = _jar(tmp_path / "native.jar", {
        f"pytorch/cpu/{PLATFORM}/libtorch.so": b"torch", f"pytorch/cpu/{PLATFORM}/libc10.so": b"c10",
        f"pytorch/cpu-precxx11/{PLATFORM}/libtorch.so": b"other flavor", "native/lib/pytorch.properties": b"x"})
    jni = _jar(tmp_path / "jni.jar", {f"jnilib/{PLATFORM}/cpu/libdjl_torch.so": b"jni",
                                      f"jnilib/{PLATFORM}/cu124/libdjl_torch.so": b"cuda"})
    return {PYTORCH_NATIVE: native, PYTORCH_JNI: jni}


@pytest.mark.skipif(supported_here() is not None, reason="the runtime is set up for linux-x86_64 only")
def test_the_runtime_folder_gets_libtorch_and_the_jni_library_of_one_flavor(tmp_path, runtime_jars):
    home = tmp_path / "home"
    (home / "plugins" / "opensearch-ml").mkdir(parents=True)
    (home / "plugins" / "opensearch-ml" / f"pytorch-engine-{DJL_VERSION}.jar").write_bytes(b"")
    target = install_pytorch_runtime(home, runtime_jars)
    assert target == home / PYTORCH_DIR
    assert sorted(p.name for p in target.iterdir()) == ["libc10.so", "libdjl_torch.so", "libtorch.so"]
    assert (target / "libtorch.so").read_bytes() == b"torch" and (target / "libdjl_torch.so").read_bytes() == b"jni"
    assert os.access(target / "libtorch.so", os.X_OK)


@pytest.mark.skipif(supported_here() is not None, reason="the runtime is set up for linux-x86_64 only")
def test_a_plugin_bundling_another_djl_is_refused(tmp_path, runtime_jars):
    home = tmp_path / "home"
    (home / "plugins" / "opensearch-ml").mkdir(parents=True)
    (home / "plugins" / "opensearch-ml" / "pytorch-engine-0.30.0.jar").write_bytes(b"")
    with pytest.raises(OpenSearchNodeError, match="pytorch-engine-0.30.0.jar"):
        install_pytorch_runtime(home, runtime_jars)


def test_starting_with_ml_refuses_a_running_node_without_it(tmp_path):
    plain = LocalOpenSearch(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", NODE_MAIN_CLASS],
                            start_new_session=True)
    try:
        plain.run_dir.mkdir(parents=True)
        plain.state_file.write_text(json.dumps({"pid": proc.pid, "url": "http://127.0.0.1:1", "home": str(plain.home)}))
        with pytest.raises(NodeStartError, match="has no ml-commons.*--ml"):
            LocalOpenSearch(tmp_path, ml=True).start(timeout=5)
    finally:
        proc.kill()
        proc.wait()


def test_register_checks_the_zip_before_any_request(tmp_path):
    with pytest.raises(MLCommonsError, match="nothing.zip does not exist"):
        register_model_zip(None, tmp_path / "nothing.zip", name="never")
    zip_path = tmp_path / "m.zip"
    zip_path.write_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="chunk_bytes"):
        register_model_zip(None, zip_path, name="never", chunk_bytes=20_000_000)
    assert model_zip_facts(zip_path) == (1000, hashlib.sha256(b"x" * 1000).hexdigest())


class _Throttled:
    """A client whose transport refuses `refusals` times (HTTP 429 by default: ml-commons' memory breaker), then
    answers `answer`."""

    def __init__(self, refusals: int, answer: dict, status: int = 429) -> None:
        self.transport, self.refusals, self.answer, self.status, self.calls = self, refusals, answer, status, []

    def perform_request(self, method, path, body=None):
        from opensearchpy import exceptions as ex

        self.calls.append((method, path))
        if len(self.calls) <= self.refusals:
            raise ex.TransportError(self.status, "circuit_breaking_exception",
                                    {"error": {"reason": "Memory Circuit Breaker is open, please check your resources!"}})
        return self.answer


def test_a_throttled_request_is_retried_after_growing_pauses(monkeypatch):
    pauses = []
    monkeypatch.setattr(ml_commons_client.time, "sleep", pauses.append)
    client = _Throttled(refusals=2, answer={"model_state": "DEPLOYED"})
    assert model_state(client, "m1") == "DEPLOYED"
    assert client.calls == [("GET", "/_plugins/_ml/models/m1")] * 3
    assert pauses == list(THROTTLED_PAUSES[:2]) and pauses[0] < pauses[1]


def test_a_request_throttled_past_every_retry_says_so(monkeypatch):
    pauses = []
    monkeypatch.setattr(ml_commons_client.time, "sleep", pauses.append)
    client = _Throttled(refusals=100, answer={})
    with pytest.raises(MLCommonsError, match=r"reading model m1 \(HTTP 429, 5 tries over 7.5 s\): Memory Circuit Breaker"):
        model_state(client, "m1")
    assert len(client.calls) == len(THROTTLED_PAUSES) + 1 and pauses == list(THROTTLED_PAUSES)


def test_other_refusals_are_not_retried(monkeypatch):
    monkeypatch.setattr(ml_commons_client.time, "sleep", lambda s: pytest.fail("a 400 was retried"))
    client = _Throttled(refusals=1, answer={"model_state": "DEPLOYED"}, status=400)
    with pytest.raises(MLCommonsError, match=r"\(HTTP 400\): Memory"):
        model_state(client, "m1")
    assert len(client.calls) == 1
