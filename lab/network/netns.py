"""Per-rig network topology: the box in its own network namespace, linked to the lab by veth pairs.

::

    [ns <namespace>]            root namespace (the lab side)
      eth0 (box_address) ==veth== <b>   --link--   <m> ==veth== <l> (lab_address)
                                        (kernel bridge <k> when the link is clean,
                                         the userspace shaper when a profile is applied)

The box side ``eth0`` carries ``rig.network.box_address`` and a default route to the lab address;
the lab side ``<l>`` carries ``rig.network.lab_address``. The headend, the traffic generators and
the pcap recorder sit on ``<l>``; the shaper (lab.network.impair) forwards between ``<b>`` and ``<m>``.
Interface names derive from the namespace (``sl`` + 6 hex digits + role letter), so they are short,
unique per rig and recognisable.

Every namespace made here is recorded in a state file (``/run/stblab/netns/<ns>.json``, with the
owner pid); :func:`cleanup_stale` removes the leftovers of runs that died, and :meth:`RigLink.down`
(also called on exit) removes what this run made.

Without root (no CAP_NET_ADMIN) :func:`open_link` says so and returns a loopback-only link
(no namespace, no shaping); tests that need namespaces skip with :data:`NO_NETNS_REASON`.

Example::

    with open_link(rig) as link:        # creates, and removes on exit
        print(link.box_ip, link.lab_ip, link.lab_if)
        with link.in_box():             # this thread now lives in the box's namespace
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # ... and so does sock
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lab.errors import InfraError, TestError
from lab.rig import NetworkConfig, Rig

log = logging.getLogger("stblab.network")

PREFIX = "stblab-"
CLONE_NEWNET = 0x40000000
NO_NETNS_REASON = "network namespaces need root (CAP_NET_ADMIN) and the `ip` tool; running loopback-only, no shaping"


def state_dir() -> Path:
    """Where namespace records live (``$STBLAB_NETNS_STATE`` or /run/stblab/netns)."""
    return Path(os.environ.get("STBLAB_NETNS_STATE", "/run/stblab/netns"))


def netns_available() -> bool:
    """True when this process can create network namespaces (root and the ``ip`` tool)."""
    return os.geteuid() == 0 and shutil.which("ip") is not None and Path("/proc/self/ns/net").exists()


def _ip(*args: str, check: bool = True, rig: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if check and proc.returncode != 0:
        raise InfraError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}", rig=rig, instrument="network")
    return proc


def namespaces() -> list[str]:
    """Names of the network namespaces that exist (``ip netns list``)."""
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(namespace: str | None) -> Iterator[None]:
    """Run the block with the *calling thread* inside ``namespace`` (None = stay where we are).

    Sockets created in the block belong to that namespace for their whole life, whichever thread
    uses them later; that is how a receiver in the root process joins multicast on the box's link.
    """
    if namespace is None:
        yield
        return
    path = Path("/run/netns") / namespace
    if not path.exists():
        raise InfraError(f"network namespace '{namespace}' does not exist", instrument="network")
    own = os.open(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


_OFFLOADS = (
    "tx-checksum-ip-generic",
    "tx-generic-segmentation",
    "tx-tcp-segmentation",
    "tx-tcp6-segmentation",
    "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation",
    "tx-udp-segmentation",
    "rx-gro",
    "rx-gro-list",
    "rx-udp-gro-forwarding",
)


def disable_offloads(ifname: str, namespace: str | None = None) -> None:
    """Turn off checksum and segmentation offloads so a userspace bridge sees finished, MTU-sized
    frames (a veth otherwise hands AF_PACKET partial checksums and 64 KiB super-packets)."""
    from pyroute2 import Ethtool

    with in_netns(namespace):
        eth = Ethtool()
        try:
            feats = eth.get_features(ifname)
            for name in _OFFLOADS:
                if name in feats.features:
                    feats.features[name].enable = False
            eth.set_features(ifname, feats)
        finally:
            eth.close()


def _no_ipv6(ifname: str) -> None:
    """No IPv6 on the rig's link: the lab is IPv4, and ND/MLD chatter would only add noise."""
    with contextlib.suppress(OSError):
        Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").write_text("1")


def _names(namespace: str) -> dict[str, str]:
    tag = hashlib.sha1(namespace.encode()).hexdigest()[:6]
    return {"box_peer": f"sl{tag}b", "mid": f"sl{tag}m", "lab": f"sl{tag}l", "bridge": f"sl{tag}k"}


@dataclass
class RigLink:
    """A rig's link as built: names, addresses, and whether it lives in a namespace.

    ``namespace`` None means loopback-only (no root): ``box_ip`` and ``lab_ip`` are then 127.0.0.1
    and ``shaping`` is False.
    """

    rig_name: str
    namespace: str | None
    box_ip: str
    lab_ip: str
    prefixlen: int = 24
    box_if: str = "eth0"
    box_peer: str | None = None
    mid_if: str | None = None
    lab_if: str | None = None
    bridge: str | None = None
    config: NetworkConfig = field(default_factory=NetworkConfig)
    _owned: bool = False

    @property
    def shaping(self) -> bool:
        """True when the link can be impaired (it lives in a namespace with a bridgeable middle)."""
        return self.namespace is not None

    def in_box(self) -> contextlib.AbstractContextManager[None]:
        """Context manager: the calling thread enters the box's namespace (no-op when loopback-only)."""
        return in_netns(self.namespace)

    def bridge_up(self) -> None:
        """Join the two middle interfaces with the kernel bridge (the clean fast path)."""
        if not self.bridge:
            return
        for ifname in (self.box_peer, self.mid_if):
            _ip("link", "set", str(ifname), "master", self.bridge, rig=self.rig_name)

    def bridge_down(self) -> None:
        """Take the middle interfaces off the bridge so a userspace path can carry the traffic."""
        if not self.bridge:
            return
        for ifname in (self.box_peer, self.mid_if):
            _ip("link", "set", str(ifname), "nomaster", rig=self.rig_name)

    def as_record(self) -> dict[str, object]:
        return {
            "rig": self.rig_name,
            "namespace": self.namespace,
            "box_ip": self.box_ip,
            "lab_ip": self.lab_ip,
            "lab_if": self.lab_if,
            "box_peer": self.box_peer,
            "mid_if": self.mid_if,
            "bridge": self.bridge,
        }

    def down(self) -> None:
        """Remove what :func:`create_link` made (namespace, veths, bridge, state record)."""
        if not self._owned or self.namespace is None:
            return
        _remove(self.namespace, [n for n in (self.box_peer, self.mid_if, self.lab_if, self.bridge) if n])
        self._owned = False

    def __enter__(self) -> RigLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def _remove(namespace: str, links: list[str]) -> None:
    for name in links:
        if link_exists(name):
            _ip("link", "del", name, check=False)
    if namespace in namespaces():
        _ip("netns", "del", namespace, check=False)
    with contextlib.suppress(FileNotFoundError):
        (state_dir() / f"{namespace}.json").unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale(*, force: bool = False) -> list[str]:
    """Remove namespaces recorded by runs whose process is gone (all recorded ones with ``force``;
    links kept by ``stblab net up`` are recorded with pid 0 and need ``force``).

    Returns the namespaces removed. Only namespaces with a state record are touched.
    """
    removed: list[str] = []
    d = state_dir()
    if not d.is_dir() or not netns_available():
        return removed
    for rec_path in sorted(d.glob("*.json")):
        try:
            rec = json.loads(rec_path.read_text())
        except (OSError, ValueError):
            rec_path.unlink(missing_ok=True)
            continue
        pid = int(rec.get("pid") or 0)
        if not force and (pid == 0 or _pid_alive(pid)):
            continue  # a live run's link, or one kept on purpose by `stblab net up` (pid 0)
        _remove(rec["namespace"], list(rec.get("links", [])))
        removed.append(rec["namespace"])
        log.warning("removed leftover network namespace %s (run pid %s is gone)", rec["namespace"], rec.get("pid"))
    return removed


_LIVE: list[RigLink] = []


def _down_all() -> None:
    for link in list(_LIVE):
        with contextlib.suppress(Exception):
            link.down()


atexit.register(_down_all)


def loopback_link(rig_name: str, config: NetworkConfig | None = None) -> RigLink:
    """The fallback link: everything on 127.0.0.1, no namespace, no shaping."""
    return RigLink(rig_name, None, "127.0.0.1", "127.0.0.1", 8, "lo", config=config or NetworkConfig())


def create_link(rig_name: str, config: NetworkConfig) -> RigLink:
    """Build the rig's namespace and veth pairs from ``config`` (root only); replaces a stale one."""
    if not config.namespace or not config.box_address or not config.lab_address:
        raise TestError(f"rig {rig_name}: network needs namespace, box_address and lab_address to build a link")
    ns = config.namespace
    box = ipaddress.ip_interface(config.box_address)
    lab = ipaddress.ip_interface(config.lab_address)
    if box.network != lab.network:
        raise TestError(f"rig {rig_name}: box_address {box} and lab_address {lab} must share a subnet")
    names = _names(ns)
    # a leftover of a crashed run with the same name goes first
    _remove(ns, list(names.values()))
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{ns}.json").write_text(
        json.dumps({"namespace": ns, "rig": rig_name, "pid": os.getpid(), "links": list(names.values())})
    )
    link = RigLink(
        rig_name,
        ns,
        str(box.ip),
        str(lab.ip),
        box.network.prefixlen,
        "eth0",
        names["box_peer"],
        names["mid"],
        names["lab"],
        names["bridge"],
        config,
        True,
    )
    try:
        _ip("netns", "add", ns, rig=rig_name)
        _ip("link", "add", names["box_peer"], "type", "veth", "peer", "name", "slnew0", rig=rig_name)
        _ip("link", "set", "slnew0", "netns", ns, rig=rig_name)
        _ip("-n", ns, "link", "set", "slnew0", "name", "eth0", rig=rig_name)
        _ip("link", "add", names["lab"], "type", "veth", "peer", "name", names["mid"], rig=rig_name)
        _ip("link", "add", names["bridge"], "type", "bridge", rig=rig_name)
        _ip("link", "set", names["bridge"], "type", "bridge", "mcast_snooping", "0", "forward_delay", "0", rig=rig_name)
        _ip("addr", "add", str(lab), "dev", names["lab"], rig=rig_name)
        _ip("-n", ns, "addr", "add", str(box), "dev", "eth0", rig=rig_name)
        for name in (names["box_peer"], names["mid"], names["lab"], names["bridge"]):
            _ip("link", "set", name, "up", rig=rig_name)
        _ip("-n", ns, "link", "set", "lo", "up", rig=rig_name)
        _ip("-n", ns, "link", "set", "eth0", "up", rig=rig_name)
        _ip("-n", ns, "route", "add", "default", "via", str(lab.ip), rig=rig_name)
        for name in (names["box_peer"], names["mid"], names["lab"], names["bridge"]):
            _no_ipv6(name)
        _ip("netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1", check=False)
        for name in (names["box_peer"], names["mid"], names["lab"]):
            disable_offloads(name)
        disable_offloads("eth0", ns)
        link.bridge_up()
    except BaseException:
        link.down()
        raise
    _LIVE.append(link)
    log.info("rig %s: namespace %s up (box %s, lab %s on %s)", rig_name, ns, box.ip, lab.ip, names["lab"])
    return link


def attach_link(rig: Rig | str, config: NetworkConfig | None = None) -> RigLink | None:
    """The rig's link as someone else built it (the emulator, an earlier ``stblab net up``), or None.

    An attached link is not removed by :meth:`RigLink.down`: its owner removes it.
    """
    name = rig.name if isinstance(rig, Rig) else rig
    cfg = config or (rig.network if isinstance(rig, Rig) else None) or NetworkConfig()
    if not cfg.namespace or not cfg.box_address or not cfg.lab_address or not netns_available():
        return None
    names = _names(cfg.namespace)
    if cfg.namespace not in namespaces() or not all(link_exists(names[k]) for k in ("box_peer", "mid", "lab")):
        return None
    box = ipaddress.ip_interface(cfg.box_address)
    lab = ipaddress.ip_interface(cfg.lab_address)
    return RigLink(
        name,
        cfg.namespace,
        str(box.ip),
        str(lab.ip),
        box.network.prefixlen,
        "eth0",
        names["box_peer"],
        names["mid"],
        names["lab"],
        names["bridge"] if link_exists(names["bridge"]) else None,
        cfg,
        False,
    )


def open_link(rig: Rig | str, config: NetworkConfig | None = None, *, reuse: bool = True) -> RigLink:
    """The rig's link: a namespace when we can, else loopback-only (with a clear warning).

    ``rig`` is a :class:`lab.rig.Rig` or a rig name plus ``config``. With ``reuse`` (default) a link
    that a live owner already built (e.g. the emulator) is attached to instead of rebuilt.
    """
    name = rig.name if isinstance(rig, Rig) else rig
    cfg = config or (rig.network if isinstance(rig, Rig) else None) or NetworkConfig()
    if not cfg.namespace:
        return loopback_link(name, cfg)
    if not netns_available():
        log.warning("rig %s: %s", name, NO_NETNS_REASON)
        return loopback_link(name, cfg)
    cleanup_stale()
    if reuse:
        existing = attach_link(name, cfg)
        if existing is not None:
            return existing
    return create_link(name, cfg)


def netns_exec(namespace: str | None, argv: list[str]) -> list[str]:
    """``argv`` wrapped so it runs inside ``namespace`` (unchanged for None)."""
    return argv if namespace is None else ["ip", "netns", "exec", namespace, *argv]


__all__ = [
    "NO_NETNS_REASON",
    "attach_link",
    "PREFIX",
    "RigLink",
    "cleanup_stale",
    "create_link",
    "disable_offloads",
    "in_netns",
    "link_exists",
    "loopback_link",
    "namespaces",
    "netns_available",
    "netns_exec",
    "open_link",
    "state_dir",
]
