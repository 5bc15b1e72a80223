"""pytest side of the lab network: ``--net-profile``, the ``net_profile`` and ``net`` fixtures.

Registered by stblab's plugin (``pytest_plugins = ["lab.network.pytest_fixtures"]``). A lab
engineer runs any scenario under any profile with one option::

    pytest scenarios/network --net-profile lossy-2pct          # a name in rigs/profiles/ or a path

or pins profiles per test::

    @pytest.mark.parametrize("net_profile", ["clean", "burst-loss"], indirect=True)
    def test_zap(net, stb, remote, capture): ...

``net`` applies the profile to the rig's link for the test (and clears it after), records the
rig's link in a pcap (kept when the test fails, or always with ``--net-pcap always``), and puts
the profile record in the test's properties (``net_profile``, JSON) so JUnit, Allure and the RMA
filing carry it. ``net.traffic`` is the rig's traffic generator, ``net.shaper`` its shaper.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.errors import TestError
from lab.network.impair.shaper import Shaper
from lab.network.netns import RigLink, attach_link, loopback_link, open_link
from lab.network.pcap import PcapRecorder
from lab.network.profile import Profile, ProfileError, load_profile
from lab.network.traffic import TrafficGenerator

log = logging.getLogger("stblab.network")

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stblab-net", "stblab lab network")
    group.addoption(
        "--net-profile",
        dest="stblab_net_profile",
        metavar="NAME",
        default=None,
        help="impairment profile for the rig's link (name in rigs/profiles/ or a YAML path; default clean)",
    )
    group.addoption(
        "--net-pcap",
        dest="stblab_net_pcap",
        choices=("failure", "always", "never"),
        default="failure",
        help="record the rig's link and keep the pcap on failure (default), always, or never",
    )
    group.addoption(
        "--net-backend",
        dest="stblab_net_backend",
        choices=("auto", "netem", "userspace"),
        default="auto",
        help="impairment backend (auto: netem when the kernel has it, else the userspace bridge)",
    )


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("stblab_net_profile", None)
    if name:
        try:
            load_profile(name)  # validate before any rig is touched
        except ProfileError as exc:
            raise pytest.UsageError(f"--net-profile: {exc}") from exc


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    rep = outcome.get_result()
    item.stash.setdefault(_REPORTS, {})[rep.when] = rep


@pytest.fixture
def net_profile(request: pytest.FixtureRequest) -> Profile:
    """The profile of this test: an indirect parameter, else ``--net-profile``, else clean."""
    param = getattr(request, "param", None)
    if param is not None:
        return load_profile(param)
    name = request.config.getoption("stblab_net_profile", None)
    return load_profile(name) if name else Profile()


def _rig(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("rig")
    except (pytest.FixtureLookupError, TestError):  # no rig fixture, or no --rigs: loopback-only
        return None


@pytest.fixture
def rig_link(request: pytest.FixtureRequest) -> Iterator[RigLink]:
    """The rig's link for the test.

    An emulated rig's link is the emulator's (it put the box in the namespace): attached, never
    built here -- a namespace the box is not in would make shaping a fake. When there is none the
    link is loopback-only and applying a non-clean profile is an InfraError saying why. Rigs that
    are not emulated get their namespace built (and removed after the test).
    """
    rig = _rig(request)
    if rig is None or rig.network is None or not rig.network.namespace:
        yield loopback_link(getattr(rig, "name", "local"))
        return
    attached = attach_link(rig)
    if attached is not None:
        yield attached
        return
    if getattr(rig, "emulated", False):
        log.warning("rig %s: the emulator built no network link for the box; no shaping", rig.name)
        yield loopback_link(rig.name, rig.network)
        return
    link = open_link(rig)
    try:
        yield link
    finally:
        link.down()


class NetSession:
    """What a test gets from ``net``: the link, its shaper, a traffic generator and the pcap."""

    def __init__(self, link: RigLink, shaper: Shaper, profile: Profile) -> None:
        self.link = link
        self.shaper = shaper
        self.profile = profile
        self.pcap: PcapRecorder | None = None
        self._traffic: TrafficGenerator | None = None

    @property
    def traffic(self) -> TrafficGenerator:
        if self._traffic is None:
            self._traffic = TrafficGenerator(self.link)
        return self._traffic

    def apply(self, profile: Profile | str) -> Profile:
        """Switch profile mid-test (recorded: the last one applied is in the result)."""
        self.profile = self.shaper.apply(profile)
        return self.profile

    def record(self) -> dict[str, Any]:
        rec = self.shaper.record()
        rec["profile"] = self.profile.as_record()
        if self.pcap is not None:
            rec["pcap"] = str(self.pcap.path)
        return rec


@pytest.fixture
def net(
    request: pytest.FixtureRequest, rig_link: RigLink, net_profile: Profile, tmp_path: Path
) -> Iterator[NetSession]:
    """The rig's network for one test: profile applied, pcap running, profile recorded."""
    shaper = Shaper(rig_link, backend=request.config.getoption("stblab_net_backend", "auto"))
    session = NetSession(rig_link, shaper, net_profile)
    mode = request.config.getoption("stblab_net_pcap", "failure")
    if mode != "never" and rig_link.namespace is not None:
        try:
            run_dir = Path(request.getfixturevalue("run_dir"))
        except (pytest.FixtureLookupError, TestError):  # the stblab plugin without --rigs
            run_dir = tmp_path
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.nodeid)[-120:]
        session.pcap = PcapRecorder(rig_link, run_dir / rig_link.rig_name / f"{safe}.pcap").start()
    shaper.apply(net_profile)
    try:
        yield session
    finally:
        record = session.record()
        shaper.clear()
        record["counters"] = shaper.counters()
        if session.pcap is not None:
            session.pcap.stop()
        reports = request.node.stash.get(_REPORTS, {})
        failed = any(r.failed for r in reports.values())
        if session.pcap is not None and mode == "failure" and not failed:
            with contextlib.suppress(OSError):
                session.pcap.path.unlink()
            record.pop("pcap", None)
        request.node.user_properties.append(("net_profile", json.dumps(record, sort_keys=True)))
        if "pcap" in record:
            request.node.user_properties.append(("net_pcap", record["pcap"]))
            with contextlib.suppress(Exception):
                import allure

                allure.attach.file(record["pcap"], name="network.pcap", extension="pcap")


__all__ = ["NetSession", "net", "net_profile", "rig_link"]
