"""Firmware images (signed format, build, verify) and version ordering."""

from lab.firmware.image import (
    FirmwareImage,
    ImageError,
    build_image,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    parse_image,
    read_image,
)
from lab.firmware.version import FirmwareVersion, version_key

__all__ = [
    "FirmwareImage",
    "FirmwareVersion",
    "ImageError",
    "build_image",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_image",
    "read_image",
    "version_key",
]
