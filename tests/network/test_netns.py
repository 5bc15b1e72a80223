"""Per-rig namespaces: created from the rig's addresses, reachable, removed, and cleaned after a crash."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab.network.netns import (
    RigLink,
    attach_link,
    cleanup_stale,
    link_exists,
    namespaces,
    open_link,
)
from lab.rig import NetworkConfig

from .conftest import make_config, needs_netns


@needs_netns
def test_link_puts_box_in_namespace_and_lab_outside(link: RigLink, netconf: NetworkConfig) -> None:
    assert link.namespace in namespaces()
    assert all(link_exists(n) for n in (link.lab_if, link.box_peer, link.mid_if, link.bridge))  # type: ignore[arg-type]
    out = subprocess.run(["ip", "-n", link.namespace, "-br", "addr", "show", "eth0"], capture_output=True, text=True)
    assert netconf.box_address in out.stdout  # type: ignore[operator]
    # a UDP datagram from the lab side reaches a socket that lives in the box's namespace
    with link.in_box():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((link.box_ip, 0))
    rx.settimeout(3)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.sendto(b"hello box", rx.getsockname())
    data, addr = rx.recvfrom(100)
    assert data == b"hello box" and addr[0] == link.lab_ip
    # and the box side is not the root namespace: the root namespace has no such address
    root = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True).stdout
    assert link.box_ip not in root.split()
    rx.close()
    tx.close()


@needs_netns
def test_down_removes_everything(netconf: NetworkConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STBLAB_NETNS_STATE", str(tmp_path))
    link = open_link("r1", netconf)
    names = [link.lab_if, link.box_peer, link.mid_if, link.bridge]
    assert (tmp_path / f"{netconf.namespace}.json").exists()
    # someone else's view of the same rig attaches, and does not own it
    other = attach_link("r1", netconf)
    assert other is not None and other.lab_if == link.lab_if
    other.down()
    assert netconf.namespace in namespaces()
    link.down()
    assert netconf.namespace not in namespaces()
    assert not any(link_exists(n) for n in names if n)
    assert not (tmp_path / f"{netconf.namespace}.json").exists()


@needs_netns
def test_leftovers_of_a_killed_run_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_config("crash")
    monkeypatch.setenv("STBLAB_NETNS_STATE", str(tmp_path))
    script = textwrap.dedent(
        f"""
        import os, sys, time
        os.environ["STBLAB_NETNS_STATE"] = {str(tmp_path)!r}
        from lab.network.netns import create_link
        from lab.rig import NetworkConfig
        create_link("crashy", NetworkConfig.model_validate({cfg.model_dump()!r}))
        print("up", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        # while the owner lives, a cleanup leaves its namespace alone
        assert cleanup_stale() == []
        proc.send_signal(signal.SIGKILL)  # no atexit, no cleanup: a crash
        proc.wait(timeout=5)
        assert cfg.namespace in namespaces()
        assert cleanup_stale() == [cfg.namespace]
        assert cfg.namespace not in namespaces()
    finally:
        if proc.poll() is None:
            proc.kill()
        cleanup_stale(force=True)


def test_rig_without_namespace_is_loopback_only() -> None:
    link = open_link("plain", NetworkConfig(lab_addresses=["127.0.0.1/32"]))
    assert link.namespace is None and not link.shaping
    assert link.box_ip == link.lab_ip == "127.0.0.1"
    with link.in_box():  # a no-op, not an error
        pass
