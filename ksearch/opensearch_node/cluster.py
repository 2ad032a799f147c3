"""`LocalCluster`: a real multi-node OpenSearch cluster on loopback (``ksearch opensearch start --nodes N``).

Each member is a `LocalOpenSearch` with its own cache folder, ``<cache>/cluster/node-<i>`` (config, data, logs,
state; its home links to the cache's assembled installation), its own HTTP and transport ports, and
``discovery.seed_hosts`` naming every member's transport port. The list of members lives in
``<cache>/run/cluster.json``, so the settings find the cluster (all members' URLs, comma-separated) and
``ksearch opensearch stop`` stops it. `start` also brings back members that have died, which rejoin the cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ksearch.opensearch_node.errors import NodeStartError, OpenSearchNodeError
from ksearch.opensearch_node.java import find_java_home
from ksearch.opensearch_node.node import LocalOpenSearch
from ksearch.opensearch_node.ports import file_lock, reserve_port
from ksearch.opensearch_node.releases import get_release
from retrieval.backends.opensearch_state import cluster_state_file, default_cache_dir, read_state

CLUSTER_NAME = "ksearch-cluster"
START_ATTEMPTS = 2  # a start whose port was taken after all (BindException) is tried once more


@dataclass(frozen=True)
class ClusterPeers:
    """What one member's config says about its cluster: the cluster and node names, where to find the others."""

    cluster_name: str
    node_name: str
    seed_transport_ports: tuple[int, ...]
    initial_managers: tuple[str, ...]


@dataclass(frozen=True)
class MemberStatus:
    """One member as `LocalCluster.members_status` sees it."""

    name: str
    url: str | None  # None when it never started
    transport_port: int | None
    pid: int | None
    alive: bool


def _get_json(url: str, timeout: float = 5.0) -> dict | list | None:
    """The JSON answer of a GET, also of an HTTP error that carries one (health's 408); None when unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        with contextlib.suppress(Exception):
            return json.loads(e.read())
        return None
    except (urllib.error.URLError, OSError, ValueError):
        return None


class LocalCluster:
    """Starts, inspects and stops a cluster of `nodes` local OpenSearch nodes sharing one installation."""

    def __init__(self, nodes: int = 3, cache_dir: str | os.PathLike[str] | None = None, *, heap: str | None = None,
                 quiet: bool = False, version: str | None = None) -> None:
        """A cluster of `nodes` (2 or more) members under ``<cache_dir>/cluster`` of OpenSearch `version` (default:
        the default version); `heap` per member (default ``$KSEARCH_OPENSEARCH_HEAP`` or 512m)."""
        if nodes < 2:
            raise OpenSearchNodeError(f"a cluster needs 2 or more nodes, not {nodes} (one node: start without --nodes)")
        self.nodes = nodes
        self.release = get_release(version)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.heap = heap
        self.quiet = quiet
        self.installation = LocalOpenSearch(self.cache_dir, heap=heap, quiet=quiet, version=self.version)
        self.names = tuple(f"node-{i}" for i in range(nodes))
        self.members = [self._member(name, None) for name in self.names]

    @property
    def version(self) -> str:
        """The OpenSearch version of the members."""
        return self.release.version

    @property
    def root(self) -> Path:
        """The members' folders (``node-0``, ``node-1``, ...)."""
        return self.cache_dir / "cluster"

    @property
    def state_file(self) -> Path:
        """The cluster's record: version and the members' cache folders (read by the settings)."""
        return cluster_state_file(self.cache_dir)

    def _member(self, name: str, peers: ClusterPeers | None) -> LocalOpenSearch:
        return LocalOpenSearch(self.root / name, heap=self.heap, quiet=True, version=self.version, peers=peers)

    def _say(self, msg: str) -> None:
        self.installation._say(msg)

    # ---- state

    def _member_state(self, member: LocalOpenSearch) -> dict | None:
        return read_state(member.state_file)

    def _alive(self, member: LocalOpenSearch) -> bool:
        state = self._member_state(member)
        return bool(state) and member._pid_alive(int(state["pid"]))

    def recorded(self) -> dict | None:
        """The cluster's record (version, members) if one was started from this cache, else None."""
        return read_state(self.state_file)

    def urls(self) -> list[str]:
        """The HTTP URLs of the running members."""
        return [s["url"] for m in self.members if self._alive(m) and (s := self._member_state(m))]

    def members_status(self) -> list[MemberStatus]:
        """Each member: name, URL, transport port, pid and whether its process runs."""
        out = []
        for name, member in zip(self.names, self.members):
            s = self._member_state(member) or {}
            out.append(MemberStatus(name, s.get("url"), s.get("transport_port"), s.get("pid"), self._alive(member)))
        return out

    def pid(self, name: str) -> int:
        """The process id of member `name` (e.g. to kill it in a test)."""
        state = self._member_state(self.members[self.names.index(name)])
        if not state:
            raise OpenSearchNodeError(f"member {name} of the cluster under {self.root} has not started")
        return int(state["pid"])

    def health(self) -> dict | None:
        """``_cluster/health`` from the first running member that answers, else None."""
        for url in self.urls():
            health = _get_json(url + "/_cluster/health")
            if isinstance(health, dict) and "status" in health:
                return health
        return None

    def cat_nodes(self) -> list[dict]:
        """``_cat/nodes`` (name, HTTP address, heap, RAM, cluster manager) from a running member, [] when none answers."""
        for url in self.urls():
            rows = _get_json(url + "/_cat/nodes?format=json&h=name,http_address,heap.percent,heap.max,ram.current,"
                             "cluster_manager,node.role")
            if isinstance(rows, list):
                return sorted(rows, key=lambda r: r.get("name", ""))
        return []

    def status(self) -> str | None:
        """The running members' URLs, comma-separated, if one of them answers, else None."""
        urls = self.urls()
        return ",".join(urls) if urls and self.health() is not None else None

    # ---- start / stop

    def _check_cache_free(self) -> None:
        recorded = self.recorded()
        if recorded and self.urls():
            if recorded.get("version") != self.version:
                raise NodeStartError(f"the cluster running from {self.cache_dir} is OpenSearch {recorded.get('version')}, "
                                     f"not {self.version}: stop it (`ksearch opensearch stop`) first")
            if len(recorded.get("members", [])) != self.nodes:
                raise NodeStartError(f"the cluster running from {self.cache_dir} has {len(recorded['members'])} nodes, "
                                     f"not {self.nodes}: stop it (`ksearch opensearch stop`) first")
        if self.installation.status() is not None:
            raise NodeStartError(f"a single node runs from {self.cache_dir}: stop it (`ksearch opensearch stop`) "
                                 "first, or use another KSEARCH_CACHE_DIR")

    def _link_home(self, member: LocalOpenSearch) -> None:
        member.cache_dir.mkdir(parents=True, exist_ok=True)
        if not member.home.exists():
            with contextlib.suppress(FileNotFoundError):
                member.home.unlink()  # a dangling link
            os.symlink(self.installation.home, member.home, target_is_directory=True)

    def _wait_formed(self, launched: list[LocalOpenSearch], deadline: float) -> None:
        """Until every member runs and the cluster has all of them at yellow/green; NodeStartError otherwise."""
        want = f"wait_for_nodes={self.nodes}&wait_for_status=yellow&timeout=1s"
        while True:
            for member in launched:
                if not self._alive(member):
                    raise NodeStartError(f"cluster member {member.peers.node_name} (OpenSearch {self.version}) exited "
                                         "while starting", member.log_tail(), member.log_file)
            for url in self.urls():
                health = _get_json(f"{url}/_cluster/health?{want}")
                if isinstance(health, dict) and not health.get("timed_out", True) and health.get("status") in (
                        "green", "yellow"):
                    return
            if time.monotonic() > deadline:
                member = launched[0] if launched else self.members[0]
                raise NodeStartError(f"the {self.nodes}-node cluster did not form in time (health: {self.health()})",
                                     member.log_tail(), member.log_file)
            time.sleep(1.0)

    def _launch_missing(self, java_home: Path, deadline: float) -> None:
        """Launch every member that is not running (ports held until the cluster has formed) and wait for them."""
        dead = [i for i, m in enumerate(self.members) if not self._alive(m)]
        with ExitStack() as held:
            transport = {}
            for i, m in enumerate(self.members):
                state = self._member_state(m)
                transport[i] = (state["transport_port"] if i not in dead else
                                held.enter_context(reserve_port()).port)
            http = {i: held.enter_context(reserve_port()).port for i in dead}
            seeds = tuple(transport[i] for i in range(self.nodes))
            launched = []
            for i in dead:
                peers = ClusterPeers(CLUSTER_NAME, self.names[i], seeds, self.names)
                self.members[i] = member = self._member(self.names[i], peers)
                self._link_home(member)
                member.run_dir.mkdir(parents=True, exist_ok=True)
                self._say(f"Starting {self.names[i]} (OpenSearch {self.version}) on http://127.0.0.1:{http[i]}, "
                          f"transport {transport[i]} (log: {member.log_file})")
                member.spawn(http[i], transport[i], java_home)
                launched.append(member)
            try:
                self._wait_formed(launched, deadline)
            except NodeStartError:
                for member in launched:
                    self._kill_member(member)
                raise

    def start(self, timeout: float = 300) -> str:
        """Start the cluster in the background (or find it running, starting members that have died); return the
        members' URLs, comma-separated, once the cluster has all of them and is yellow/green."""
        deadline = time.monotonic() + timeout
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.cache_dir / "run" / ".cluster.lock"):
            self._check_cache_free()
            self.installation.ensure_installed()
            java_home = find_java_home(self.release)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"version": self.version, "cluster_name": CLUSTER_NAME,
                                       "members": [str(m.cache_dir) for m in self.members]}, indent=2) + "\n")
            os.replace(tmp, self.state_file)
            for attempt in range(START_ATTEMPTS):
                try:
                    self._launch_missing(java_home, deadline)
                    break
                except NodeStartError as e:
                    bind = any("BindException" in m.log_tail(200) for m in self.members)
                    if not bind or attempt + 1 == START_ATTEMPTS or time.monotonic() > deadline:
                        if not self.urls():
                            self.state_file.unlink(missing_ok=True)
                        raise e
            return ",".join(self.urls())

    def _kill_member(self, member: LocalOpenSearch, grace: float = 60) -> bool:
        state = self._member_state(member)
        running = bool(state) and member._pid_alive(int(state["pid"]))
        if running:
            member.kill(int(state["pid"]), grace=grace)
        member.state_file.unlink(missing_ok=True)
        return running

    def kill_member(self, name: str) -> None:
        """SIGKILL member `name` (no shutdown: as a crash or a pulled plug would), for fault tests."""
        os.kill(self.pid(name), signal.SIGKILL)

    def stop(self, timeout: float = 60) -> bool:
        """Stop every member (SIGTERM, SIGKILL after `timeout` s); return False if none was running."""
        with file_lock(self.cache_dir / "run" / ".cluster.lock"):
            stopped = [self._kill_member(m, timeout) for m in self.members]
            self.state_file.unlink(missing_ok=True)
            return any(stopped)


def recorded_cluster(cache_dir: Path | None = None, *, quiet: bool = False) -> LocalCluster | None:
    """The cluster recorded in the cache (`ksearch opensearch status` / `stop`), else None."""
    cache_dir = cache_dir or default_cache_dir()
    record = read_state(cluster_state_file(cache_dir))
    if not record or not isinstance(record.get("members"), list) or len(record["members"]) < 2:
        return None
    return LocalCluster(len(record["members"]), cache_dir, quiet=quiet, version=record.get("version"))
