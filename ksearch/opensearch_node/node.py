"""`LocalOpenSearch`: one node's files, installation and process (start, readiness, stop) under a cache folder.

Each OpenSearch release (`releases`) is assembled in its own home, ``<cache>/opensearch-<version>[-ml]``, from the
shared downloads; one node at a time runs from a cache folder (its config and logs under ``<cache>/run``, its data in a
folder per major version, `data_dir`; `start` refuses while a node of another version runs there). The node runs detached in its own session; its state (pid,
ports, URL, log, version) lives in ``<cache>/run/state.json`` so another process (`ksearch opensearch stop`) can
find it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ksearch.opensearch_node import ml_commons
from ksearch.opensearch_node.artifacts import Artifact
from ksearch.opensearch_node.assembly import assemble, assembly_record
from ksearch.opensearch_node.downloads import download, download_all, stderr_console
from ksearch.opensearch_node.errors import NodeStartError, OpenSearchNodeError
from ksearch.opensearch_node.java import find_java_home, java_env_clean
from ksearch.opensearch_node.releases import get_release
from retrieval.backends.opensearch_state import (CACHE_DIR_ENV, default_cache_dir, node_process_alive, read_state,
                                                 state_file)
from ksearch.opensearch_node.ports import file_lock, reserve_port

if TYPE_CHECKING:
    from ksearch.opensearch_node.cluster import ClusterPeers

if TYPE_CHECKING:
    from rich.progress import Progress

HEAP_ENV = "KSEARCH_OPENSEARCH_HEAP"
DEFAULT_HEAP = "512m"
START_ATTEMPTS = 3  # a start whose port was taken after all (BindException) is tried again
PORT_WAIT = 5.0  # seconds an explicit port may stay briefly taken (a probe, a node shutting down) before start fails

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


class LocalOpenSearch:
    """Downloads, assembles, starts and stops a local single-node OpenSearch."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        heap: str | None = None,
        quiet: bool = False,
        ml: bool = False,
        version: str | None = None,
        peers: ClusterPeers | None = None,
    ) -> None:
        """Manage the node whose files live under ``cache_dir`` (default: ``default_cache_dir()``), of OpenSearch
        ``version`` (default: `releases.default_version`, ``$KSEARCH_OPENSEARCH_VERSION`` or 2.19.1); ``ml`` runs it
        with ml-commons (`ml_commons`: its own assembled home beside the plain one, same config, data and state);
        ``peers``: it is one member of a cluster (`cluster.LocalCluster`) instead of a single node."""
        self.release = get_release(version)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.heap = heap or os.environ.get(HEAP_ENV) or DEFAULT_HEAP
        self.quiet = quiet
        self.ml = ml
        self.peers = peers
        self._proc: subprocess.Popen[bytes] | None = None
        self.started_here = False  # True once start() has launched the node from this object

    # ---- paths

    @property
    def downloads_dir(self) -> Path:
        """Where the downloaded artifacts are kept (Maven layout)."""
        return self.cache_dir / "downloads"

    @property
    def home(self) -> Path:
        """The assembled OpenSearch home (``opensearch-<version>-ml`` with ml-commons)."""
        return self.cache_dir / f"opensearch-{self.version}{'-ml' if self.ml else ''}"

    @property
    def version(self) -> str:
        """The OpenSearch version this object assembles and starts."""
        return self.release.version

    @property
    def run_dir(self) -> Path:
        """Config, data, logs and state of the running node."""
        return self.cache_dir / "run"

    @property
    def data_dir(self) -> Path:
        """The node's indexes: one folder per major version (``run/data`` for 2.x, ``run/data-3`` for 3.x), since a
        2.x node cannot read what 3.x (Lucene 10) wrote; versions of one major upgrade in place."""
        major = self.release.major
        return self.run_dir / ("data" if major == 2 else f"data-{major}")

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
            stderr_console().print(msg, highlight=False, soft_wrap=True)

    # ---- installation

    def download(self, artifact: Artifact, progress: Progress | None = None) -> Path:
        """Download one artifact into the cache (verified with its .sha1), or reuse the cached file."""
        return download(artifact, self.downloads_dir, progress)

    def installed(self) -> dict[str, Any] | None:
        """The assembly record (modules, plugins) if the node is assembled, else None."""
        return assembly_record(self.home, self.version)

    def ensure_installed(self) -> Path:
        """Download and assemble OpenSearch with its modules and plugins (idempotent); return its home."""
        if self.installed() is not None:
            return self.home
        with file_lock(self.cache_dir / ".assemble.lock"):
            if self.installed() is not None:
                return self.home
            if self.ml and (reason := ml_commons.supported_here(self.release)):
                raise OpenSearchNodeError(reason)
            java_home = find_java_home(self.release)
            with_nori = (java_home / "bin" / "javac").is_file()
            artifacts = self.release.artifacts(with_nori)
            if self.ml:
                artifacts += ml_commons.ML_ARTIFACTS
            files = download_all(artifacts, self.downloads_dir, say=self._say, quiet=self.quiet,
                                 what=f"OpenSearch {self.version}")
            assemble(self.release, self.home, files, java_home, with_nori=with_nori, say=self._say, ml=self.ml)
            return self.home

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

    def _discovery_yaml(self) -> str:
        if self.peers is None:
            return "cluster.name: ksearch-local\nnode.name: ksearch-local\ndiscovery.type: single-node\n"
        p = self.peers
        return (f"cluster.name: {p.cluster_name}\n"
                f"node.name: {p.node_name}\n"
                f"discovery.seed_hosts: {json.dumps([f'127.0.0.1:{port}' for port in p.seed_transport_ports])}\n"
                f"cluster.initial_cluster_manager_nodes: {json.dumps(list(p.initial_managers))}\n")

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
                    *self.release.jvm_options,
                    *(_AS_ROOT_JVM_OPTIONS if _running_as_root() else []),
                    "",
                ]
            )
        )
        data, logs = self.data_dir, self.run_dir / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        (conf / "opensearch.yml").write_text(
            "# written by ksearch.opensearch_node on every start\n"
            + self._discovery_yaml() +
            "network.host: 127.0.0.1\n"
            f"http.port: {http_port}\n"
            f"transport.port: {transport_port}\n"
            f"path.data: {json.dumps(str(data))}\n"
            f"path.logs: {json.dumps(str(logs))}\n"
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
            "bootstrap.memory_lock: false\n"
            + (ml_commons.ml_settings_yaml() if self.ml else "")
        )

    def spawn(self, http_port: int, transport_port: int, java_home: Path) -> dict:
        """Write the config and launch the node detached on these ports (not waiting for it); return its state."""
        conf = self.run_dir / "config"
        self._write_config(conf, http_port, transport_port)
        env = java_env_clean()
        env.update(
            OPENSEARCH_PATH_CONF=str(conf),
            OPENSEARCH_JAVA_HOME=str(java_home),
            JAVA_HOME=str(java_home),
        )
        env.pop("OPENSEARCH_JAVA_OPTS", None)
        if self.ml:
            env.update(ml_commons.ml_environment(self.home))
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
            "version": self.version,
            "java_home": str(java_home),
            "ml": self.ml,
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
                    f"OpenSearch {state.get('version', self.version)} exited while starting", self.log_tail(),
                    self.log_file
                )
            if self._health(url) in ("green", "yellow"):
                return url
            if time.monotonic() > deadline:
                raise NodeStartError(
                    f"OpenSearch did not become ready at {url} in time", self.log_tail(), self.log_file
                )
            time.sleep(0.5)

    def start(self, port: int | None = None, timeout: float = 180) -> str:
        """Start the node in the background (or find it running); return its URL once yellow/green.

        Its ports are held (`reserve_port`) from before the node is launched until it answers, so no other process
        takes them meanwhile; should a port be taken all the same (BindException), the start is tried again, on
        the same `port` when one is given.
        """
        deadline = time.monotonic() + timeout
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.run_dir / ".start.lock"):
            state = self._read_state()
            if state and self._pid_alive(int(state["pid"])):
                if state.get("version", self.version) != self.version:
                    raise NodeStartError(
                        f"the node running from {self.cache_dir} ({state['url']}) is OpenSearch {state.get('version')}, "
                        f"not {self.version}: stop it (`ksearch opensearch stop`) first, or use another "
                        "KSEARCH_CACHE_DIR")
                if self.ml and not state.get("ml"):
                    raise NodeStartError(
                        f"the node running from {self.cache_dir} ({state['url']}) has no ml-commons: stop it "
                        "(`ksearch opensearch stop`) and start it again with --ml")
                return self._wait_ready(state, deadline)
            self.state_file.unlink(missing_ok=True)
            self.ensure_installed()
            java_home = find_java_home(self.release)
            for attempt in range(START_ATTEMPTS):
                try:
                    http = reserve_port(port, wait=PORT_WAIT if port is not None else 0.0)
                except OSError:
                    raise NodeStartError(f"port {port} on 127.0.0.1 is already in use") from None
                with http, reserve_port() as transport:
                    self._say(
                        f"Starting OpenSearch {self.version} on http://127.0.0.1:{http.port} (log: {self.log_file})"
                    )
                    state = self.spawn(http.port, transport.port, java_home)
                    try:
                        url = self._wait_ready(state, deadline)
                        self.started_here = True
                        return url
                    except NodeStartError:
                        self.kill(int(state["pid"]), grace=10)
                        self.state_file.unlink(missing_ok=True)
                        retry = "BindException" in self.log_tail(200) and time.monotonic() < deadline
                        if not retry or attempt + 1 == START_ATTEMPTS:
                            raise
            raise NodeStartError(f"OpenSearch did not start after {START_ATTEMPTS} attempts", self.log_tail(), self.log_file)

    def kill(self, pid: int, grace: float) -> None:
        """End the node process `pid` (its process group): SIGTERM, SIGKILL after `grace` s."""
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
        with file_lock(self.run_dir / ".start.lock"):
            state = self._read_state()
            if not state:
                return False
            pid = int(state["pid"])
            running = self._pid_alive(pid)
            if running:
                self.kill(pid, grace=timeout)
            self.state_file.unlink(missing_ok=True)
            return running
