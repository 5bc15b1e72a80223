"""Firmware versions: the type lives in :mod:`lab.firmware_version` (below the rig file, whose
emulated section checks versions); importable from here as before."""

from lab.firmware_version import FirmwareVersion, version_key

__all__ = ["FirmwareVersion", "version_key"]
