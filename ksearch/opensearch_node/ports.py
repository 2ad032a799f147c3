"""Ports and locks of the local node.

A port number handed to another process can be taken by someone else before that process binds it. So the
node's ports are *held* instead (`reserve_port`): bound here with SO_REUSEADDR and not listening, which keeps
every other bind (an OS-chosen port included) off them, while the node, which binds with SO_REUSEADDR as
OpenSearch does by default, can still bind and listen on them; the reservation is released once the node is up.
`free_port` only says which port is free *now*: use it for a URL nothing serves, or with a binder that retries.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import socket
import time
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"


class PortReservation:
    """A TCP port on 127.0.0.1 bound by this process (SO_REUSEADDR, not listening) until `release`."""

    def __init__(self, port: int = 0) -> None:
        """Hold `port` (0: one the OS picks); `OSError` (EADDRINUSE) when something else has it."""
        self._sock: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((HOST, port))
        except OSError:
            self._sock.close()
            raise
        self.port = int(self._sock.getsockname()[1])

    def release(self) -> None:
        """Let the port go (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "PortReservation":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def reserve_port(port: int | None = None, *, wait: float = 0.0) -> PortReservation:
    """Hold `port` (None: a free one), retrying EADDRINUSE for up to `wait` seconds (a port a probe or a stopping
    process holds briefly); `OSError` when it stays taken."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return PortReservation(port or 0)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is bound to right now (another process may take it before you bind
    it: servers started on it must retry, or hold it with `reserve_port` instead)."""
    with reserve_port() as held:
        return held.port


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` (created if needed), across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
