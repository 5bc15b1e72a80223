"""What a rig can do: its declared features plus the instruments its rig file wires up.

A test declares what it needs (``@pytest.mark.stb(features=["power"])``); a rig without it
skips the test at collection with the reason, instead of failing it at run time.
"""

from __future__ import annotations

from typing import Any

#: feature -> (rig file section that provides it, what is missing when it is absent)
INSTRUMENT_FEATURES: dict[str, tuple[str, str]] = {
    "power": ("power", "no power control (no 'power:' section: no PDU)"),
    "bootloader": ("power", "no power control to catch the bootloader (no 'power:' section)"),
    "ir": ("ir", "no IR blaster (no 'ir:' section)"),
    "hdmi": ("video", "no HDMI capture (no 'video:' section)"),
    "ssh": ("ssh", "no SSH (no 'ssh:' section)"),
    "iptv": ("network", "no lab network (no 'network:' section)"),
}


def rig_features(rig: Any, profile: Any = None) -> set[str]:
    """Features this rig has: those it declares that its instruments back, plus those its
    instruments and profile provide (``power``/``bootloader`` with a PDU, ``reboot`` with a PDU or a
    profile reboot command, ``standby`` when the profile has a standby command)."""
    have = {"console"} if getattr(rig, "serial", None) is not None else set()
    for feature, (section, _) in INSTRUMENT_FEATURES.items():
        if getattr(rig, section, None) is not None:
            have.add(feature)
    declared = set(getattr(rig, "features", []) or [])
    # a declared feature whose instrument is missing is not there (a rig file edited half-way)
    have |= {f for f in declared if f not in INSTRUMENT_FEATURES or f in have}
    if "power" in have or (profile is not None and profile.power.reboot):
        have.add("reboot")
    if profile is not None and profile.power.standby:
        have.add("standby")
    return have


def unmet(rig: Any, features: list[str] | tuple[str, ...], profile: Any = None) -> list[str]:
    """Why ``rig`` cannot run a test needing ``features``: one reason per missing feature (empty: it can)."""
    have = rig_features(rig, profile)
    reasons = []
    for feature in features:
        if feature in have:
            continue
        if feature in INSTRUMENT_FEATURES:
            reasons.append(f"{feature}: rig {rig.name} has {INSTRUMENT_FEATURES[feature][1]}")
        elif feature == "reboot":
            reasons.append(f"reboot: rig {rig.name} has no power control and its profile no reboot command")
        else:
            reasons.append(f"{feature}: rig {rig.name} does not declare it (features: {sorted(have)})")
    return reasons
