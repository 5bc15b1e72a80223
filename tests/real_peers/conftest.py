"""Fixtures running real third-party peers (see peer_programs.py); every test here is marked ``real_peer``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from peer_programs import ConsolePeers, SshdPeer, need, start_console, start_sshd

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.real_peer)


@pytest.fixture(scope="module")
def console_peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsolePeers]:
    """bash on a pty exported by ser2net 4 (raw TCP and RFC 2217), shared by a module's tests
    (each test opens and closes its own console connection)."""
    need("ser2net", "socat", "bash")
    peers = start_console(tmp_path_factory.mktemp("console"))
    yield peers
    peers.stop()


@pytest.fixture
def sshd_peer(tmp_path: Path) -> Iterator[SshdPeer]:
    """A real OpenSSH sshd on a loopback port with its own host key."""
    need("sshd", "ssh-keygen")
    if os.geteuid() != 0:
        pytest.skip("the sshd peer logs in as root with its own config and host key: run as root (as CI does)")
    peer = start_sshd(tmp_path / "sshd")
    yield peer
    peer.stop()
