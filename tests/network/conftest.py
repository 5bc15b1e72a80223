"""Fixtures for the network tests: a private namespace per test, a small channel cache per session."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.emulator.headend import ChannelMap, EncodeSettings
from lab.network.netns import NO_NETNS_REASON, RigLink, cleanup_stale, create_link, netns_available
from lab.rig import NetworkConfig

_counter = itertools.count()

needs_netns = pytest.mark.skipif(not netns_available(), reason=NO_NETNS_REASON)

#: short, small channels so the session encodes them in about a second
TEST_SETTINGS = EncodeSettings(width=320, height=180, fps=25, seconds=4.0, bitrate=600_000, gop=12)


def make_config(tag: str | None = None) -> NetworkConfig:
    """A rig network with a subnet and namespace unique to this process and call (xdist-safe)."""
    n = next(_counter)
    pid = os.getpid()
    second = 100 + (pid // 250) % 100
    third = pid % 250
    fourth_net = n % 64
    # 10.<100..199>.<pid>.<n*4>/30 would be tight; use a /24 per call in 10.x.y with y rotating
    base = f"10.{second}.{(third + fourth_net * 7) % 250}"
    ns = f"stblab-t{pid}-{n}" if tag is None else f"stblab-{tag}-{pid}-{n}"
    return NetworkConfig(
        namespace=ns,
        box_address=f"{base}.2/24",
        lab_address=f"{base}.1/24",
        lab_addresses=[f"{base}.0/24", "239.1.1.0/24"],
    )


@pytest.fixture
def netconf() -> NetworkConfig:
    return make_config()


@pytest.fixture(scope="session", autouse=True)
def _remove_leftovers() -> None:
    """Namespaces of earlier test runs that were killed are removed first (their records say so)."""
    if netns_available():
        cleanup_stale()


@pytest.fixture
def link(netconf: NetworkConfig) -> Iterator[RigLink]:
    """A fresh rig link in its own namespace, removed after the test (recorded in the default state
    folder, so a run killed mid-test is cleaned by the next one)."""
    if not netns_available():
        pytest.skip(NO_NETNS_REASON)
    lk = create_link("rig-under-test", netconf)
    try:
        yield lk
    finally:
        lk.down()


@pytest.fixture(scope="session")
def channel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("headend-cache")


@pytest.fixture(scope="session")
def cmap() -> ChannelMap:
    return ChannelMap.default(count=3)
