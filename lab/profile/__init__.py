"""Box profiles: how each model of box is driven, as data (``rigs/models/<model>.yaml``).

Example::

    from lab.profile import find_profile, read_identity
    profile = find_profile("generic-linux")
    prov = read_identity(profile, lambda probe: console.run(probe.command, timeout=probe.timeout))
    prov.get("firmware_version")        # "6.1.0-18-amd64", or "unknown (`uname -r`: exited 127: ...)"
"""

from __future__ import annotations

from lab.profile.identify import ProbeFailed, Provenance, read_diagnostics, read_identity, read_probe
from lab.profile.load import SHIPPED, ProfileError, find_profile, load_profile, profile_for_rig
from lab.profile.model import BoxProfile, Diagnostic, FirmwareUpdate, Probe
from lab.profile.needs import rig_features, unmet
from lab.profile.parse import ParseError, key_values, parse

__all__ = [
    "SHIPPED",
    "BoxProfile",
    "Diagnostic",
    "FirmwareUpdate",
    "ParseError",
    "Probe",
    "ProbeFailed",
    "ProfileError",
    "Provenance",
    "find_profile",
    "key_values",
    "load_profile",
    "parse",
    "profile_for_rig",
    "read_diagnostics",
    "read_identity",
    "read_probe",
    "rig_features",
    "unmet",
]
