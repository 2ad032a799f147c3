"""Where `ksearch opensearch start` records its node, read without the node manager's imports.

The settings read this on every start-up (`KSEARCH_OPENSEARCH_URL` falls back to the recorded node), so it
imports nothing beyond the standard library's basics and never touches the network.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

CACHE_DIR_ENV = "KSEARCH_CACHE_DIR"
NODE_MAIN_CLASS = "org.opensearch.bootstrap.OpenSearch"


def default_cache_dir() -> Path:
    """``$KSEARCH_CACHE_DIR`` or ``~/.cache/ksearch/opensearch``."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ksearch" / "opensearch"


def state_file(cache_dir: Path) -> Path:
    """The JSON file (pid, port, url, log, home, ...) a started node leaves under its cache folder."""
    return cache_dir / "run" / "state.json"


def read_state(path: Path) -> dict | None:
    """The recorded state, or None when there is none (or it is unreadable)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def node_process_alive(pid: int, home: str | os.PathLike[str] | None) -> bool:
    """True when `pid` runs and is an OpenSearch node (so a reused pid of a finished node does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OverflowError, ValueError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust kill(0)
    if not cmdline:
        return True  # a process that is exiting (not yet a zombie) shows no command line: it is still there
    # bin/opensearch execs java with the node's home and main class on the command line
    return (home is not None and str(home).encode() in cmdline) or NODE_MAIN_CLASS.encode() in cmdline


def _alive_url(state: dict | None) -> str | None:
    """The state's URL when its process runs, else None."""
    if not state or not isinstance(state.get("url"), str):
        return None
    try:
        pid = int(state["pid"])
    except (KeyError, TypeError, ValueError):
        return None
    return state["url"] if node_process_alive(pid, state.get("home")) else None


def cluster_state_file(cache_dir: Path) -> Path:
    """The JSON file (version, members' cache folders) `ksearch opensearch start --nodes N` leaves under the cache."""
    return cache_dir / "run" / "cluster.json"


def running_cluster_urls(cache_dir: Path | None = None) -> list[str]:
    """The URLs of the members of the local cluster (`ksearch opensearch start --nodes N`) whose process runs."""
    cluster = read_state(cluster_state_file(cache_dir if cache_dir is not None else default_cache_dir()))
    members = cluster.get("members") if cluster else None
    if not isinstance(members, list):
        return []
    urls = (_alive_url(read_state(state_file(Path(m)))) for m in members if isinstance(m, str))
    return [u for u in urls if u]


def running_node_url(cache_dir: Path | None = None) -> str | None:
    """The URL of the node `ksearch opensearch start` runs from `cache_dir` (default cache), or of the local
    cluster's running members, comma-separated; None when none runs. Whether they answer yet is not checked (no
    network here)."""
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    return _alive_url(read_state(state_file(cache_dir))) or ",".join(running_cluster_urls(cache_dir)) or None
