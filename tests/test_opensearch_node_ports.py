"""The local node's ports: held from before the node is launched until it answers, and a start whose port was taken
after all is tried again (on the same port when one was asked for). No node is started here."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ksearch.opensearch_node import LocalOpenSearch, NodeStartError, free_port, node
from ksearch.opensearch_node.ports import reserve_port


def _plain_bind_fails(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def test_a_held_port_keeps_other_binders_off_but_lets_a_reuse_address_server_listen():
    with reserve_port() as held:
        assert _plain_bind_fails(held.port)  # nobody else takes it...
        with socket.socket() as server:  # ...but a server binding with SO_REUSEADDR (OpenSearch, Tornado) still can
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", held.port))
            server.listen()
    assert not _plain_bind_fails(held.port)  # released


def test_an_explicit_port_briefly_taken_is_waited_for_and_one_kept_taken_is_refused():
    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        with pytest.raises(OSError):
            reserve_port(port, wait=0.5)
        threading.Timer(0.5, listener.close).start()
        with reserve_port(port, wait=5) as held:
            assert held.port == port


class _FakeNode(LocalOpenSearch):
    """`start` without Java: `spawn` records the ports (and whether they are held); the first launch hits a BindException."""

    def __init__(self, cache_dir, fail_first: bool = True) -> None:
        super().__init__(cache_dir=cache_dir, quiet=True)
        self.launches: list[tuple[int, int, bool]] = []
        self.fail_first = fail_first

    def ensure_installed(self):
        return self.home

    def spawn(self, http_port, transport_port, java_home):
        held = _plain_bind_fails(http_port) and _plain_bind_fails(transport_port)
        self.launches.append((http_port, transport_port, held))
        return {"pid": 0, "url": f"http://127.0.0.1:{http_port}"}

    def _wait_ready(self, state, deadline):
        if self.fail_first and len(self.launches) == 1:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self.log_file.write_text("java.net.BindException: Address already in use\n")
            raise NodeStartError("OpenSearch exited while starting")
        return state["url"]

    def kill(self, pid, grace):
        pass


@pytest.fixture
def no_java(monkeypatch):
    monkeypatch.setattr(node, "find_java_home", lambda *release: None)


@pytest.mark.parametrize("explicit", [True, False])
def test_a_start_whose_port_was_taken_is_tried_again(tmp_path, no_java, explicit):
    fake = _FakeNode(tmp_path)
    port = free_port() if explicit else None
    url = fake.start(port=port, timeout=30)
    assert len(fake.launches) == 2 and all(held for _, _, held in fake.launches)
    if explicit:
        assert [http for http, _, _ in fake.launches] == [port, port] and url == f"http://127.0.0.1:{port}"
    assert fake.started_here


def test_an_explicit_port_in_use_fails_with_a_clear_message(tmp_path, no_java, monkeypatch):
    monkeypatch.setattr(node, "PORT_WAIT", 0.3)
    fake = _FakeNode(tmp_path, fail_first=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        start = time.monotonic()
        with pytest.raises(NodeStartError, match="already in use"):
            fake.start(port=listener.getsockname()[1], timeout=30)
    assert time.monotonic() - start < 5 and fake.launches == []
