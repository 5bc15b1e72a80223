"""What a rig's instruments look like as labgrid resources, both ways.

One exporter resource group per rig (the group is named after the rig), one resource per
instrument:

=============================  ==========================================================
rig section                    labgrid resource (params)
=============================  ==========================================================
``serial: socket://h:p``       ``NetworkSerialPort`` (host, port, protocol ``raw``, speed)
``serial: rfc2217://h:p``      ``NetworkSerialPort`` (host, port, protocol ``rfc2217``, speed)
``serial: /dev/ttyUSB0``       ``RawSerialPort`` (port, speed): the exporter runs ser2net for it
``ssh``                        ``NetworkService`` (address, port, username)
``power``                      ``NetworkPowerPort`` (model ``stblab``, host = PDU URL, index = outlet)
``video: http(s)://...``       ``HTTPVideoStream`` (url); other capture URLs ``StblabVideoStream`` (url)
``ir``                         ``StblabIRBlaster`` (url, remote_name): custom, exported as-is
=============================  ==========================================================

What is not an address (logins, key files, the IR remote file, picture size, trusted firmware
keys, features) comes from the model's facts (:mod:`lab.labgrid.models`), so a place plus its
model file make a complete rig. No labgrid import here: the resources are plain dataclasses.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from lab.rig import Rig

SERIAL_CLASSES = ("NetworkSerialPort", "RawSerialPort", "USBSerialPort")
POWER_MODEL = "stblab"  # stblab's NETIO-style JSON PDU API; labgrid drivers do not speak it


def groups_for_rig(rig: Rig) -> dict[str, dict[str, Any]]:
    """The exporter resources (class -> params) of one rig; what ``exporter-config`` writes."""
    out: dict[str, dict[str, Any]] = {}
    if rig.serial:
        url = rig.serial.url
        p = urlparse(url)
        if p.scheme in ("socket", "rfc2217"):
            out["NetworkSerialPort"] = {
                "host": p.hostname,
                "port": p.port,
                "protocol": "raw" if p.scheme == "socket" else "rfc2217",
                "speed": rig.serial.baudrate,
            }
        elif url.startswith("/"):
            out["RawSerialPort"] = {"port": url, "speed": rig.serial.baudrate}
    if rig.ssh:
        out["NetworkService"] = {"address": rig.ssh.host, "port": rig.ssh.port, "username": rig.ssh.user}
    if rig.power:
        out["NetworkPowerPort"] = {"model": POWER_MODEL, "host": rig.power.url, "index": rig.power.outlet}
    if rig.video:
        cls = "HTTPVideoStream" if urlparse(rig.video.url).scheme in ("http", "https") else "StblabVideoStream"
        out[cls] = {"url": rig.video.url}
    if rig.ir:
        ir: dict[str, Any] = {"url": rig.ir.url}
        if rig.ir.remote_name:
            ir["remote_name"] = rig.ir.remote_name
        out["StblabIRBlaster"] = ir
    return out


def sections_from_resources(place: str, resources: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Rig sections (only addresses) from a place's resources, given as ``(class, params)``.

    Raises ValueError naming the place and the resource when two resources claim one instrument
    or a resource lacks what the instrument needs.
    """
    out: dict[str, dict[str, Any]] = {}
    for cls, params in resources:
        try:
            found = _section(cls, params)
        except KeyError as exc:
            raise ValueError(f"place '{place}': resource {cls} lacks '{exc.args[0]}'") from exc
        except (TypeError, ValueError) as exc:
            raise ValueError(f"place '{place}': resource {cls}: {exc}") from exc
        if found is None:
            continue
        section, value = found
        if section in out:
            raise ValueError(f"place '{place}': two resources give its {section} (second: {cls})")
        out[section] = value
    return out


def _section(cls: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The rig section one resource gives (None for a class that is no instrument of ours)."""
    if cls in SERIAL_CLASSES:
        return "serial", _serial(cls, params)
    if cls == "NetworkService":
        return "ssh", {"host": params["address"], "port": int(params.get("port", 22)), "user": params["username"]}
    if cls == "NetworkPowerPort":
        return "power", {"url": params["host"], "outlet": int(params["index"])}
    if cls in ("HTTPVideoStream", "StblabVideoStream"):
        return "video", {"url": params["url"]}
    if cls == "StblabIRBlaster":
        ir = {"url": params["url"]}
        if params.get("remote_name"):
            ir["remote_name"] = params["remote_name"]
        return "ir", ir
    return None


def _serial(cls: str, params: dict[str, Any]) -> dict[str, Any]:
    """The serial section of a serial resource exported over the network (ser2net: raw or RFC 2217)."""
    if not (params.get("host") and params.get("port")):
        raise ValueError("not reachable over the network (no host/port published)")
    scheme = "socket" if params.get("protocol", "rfc2217") == "raw" else "rfc2217"
    serial: dict[str, Any] = {"url": f"{scheme}://{_host(params['host'])}:{int(params['port'])}"}
    if params.get("speed"):
        serial["baudrate"] = int(params["speed"])
    return serial


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


__all__ = ["POWER_MODEL", "SERIAL_CLASSES", "groups_for_rig", "sections_from_resources"]
