"""The lab network: per-rig namespaces, impairment profiles and shapers, traffic, TS checks, pcap.

Public face::

    from lab.network import open_link, Shaper, load_profile, TrafficGenerator, check_file

Modules: ``netns`` (topology), ``profile`` (impairment profiles), ``impair`` (engine, userspace
bridge, netem, Shaper), ``traffic`` and ``safety`` (generators and the lab-address rule), ``ts`` and
``ts_check`` (MPEG-TS format and TR 101 290 checks), ``pcap`` (recording), ``pytest_fixtures``.
"""

from lab.network.impair import Shaper
from lab.network.netns import NO_NETNS_REASON, RigLink, attach_link, cleanup_stale, netns_available, open_link
from lab.network.pcap import PcapRecorder
from lab.network.profile import Profile, ProfileError, list_profiles, load_profile, profile_params
from lab.network.safety import TrafficPolicy, UnsafeTraffic
from lab.network.traffic import SendStats, TrafficGenerator
from lab.network.ts_check import TsReport, check_bytes, check_file, check_multicast

__all__ = [
    "NO_NETNS_REASON",
    "PcapRecorder",
    "Profile",
    "ProfileError",
    "RigLink",
    "SendStats",
    "Shaper",
    "TrafficGenerator",
    "TrafficPolicy",
    "TsReport",
    "UnsafeTraffic",
    "attach_link",
    "check_bytes",
    "check_file",
    "check_multicast",
    "cleanup_stale",
    "list_profiles",
    "load_profile",
    "netns_available",
    "open_link",
    "profile_params",
]
