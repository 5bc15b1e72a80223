"""Start the emulated rigs of a rig file when they are not running yet (for commands that need a box).

``stblab firmware gate`` and ``stblab warranty check`` work on real and emulated rigs alike; for
emulated rigs whose instruments do not answer, they start ``stblab emulate`` for the duration.

Example::

    with ensure_emulated(rig_file, [rigs["stb-a"]], mode="auto"):
        ...  # stb-a answers here
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

from lab.errors import InfraError
from lab.rig import Rig

EMULATE_MODES = ("auto", "always", "never")


def url_answers(url: str, timeout: float = 1.0) -> bool:
    """True when the TCP endpoint of an instrument URL (socket://, rfc2217://, http(s)://) accepts a connection."""
    p = urlparse(url)
    if p.scheme not in ("socket", "rfc2217", "http", "https") or not p.hostname:
        return False
    port = p.port or (443 if p.scheme == "https" else 80 if p.scheme == "http" else None)
    if port is None:
        return False
    try:
        with socket.create_connection((p.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def answers(rig: Rig, timeout: float = 1.0) -> bool:
    """True when the rig's console (else its PDU) accepts a TCP connection: for an emulated rig,
    its emulator runs."""
    url = rig.serial.url if rig.serial else rig.power.url if rig.power else None
    return bool(url) and url_answers(url, timeout)


@contextlib.contextmanager
def ensure_emulated(
    rig_file: Path, rigs: list[Rig], mode: str = "auto", echo: Callable[[str], object] = print
) -> Iterator[None]:
    """Run the emulator for the emulated ``rigs`` unless they already answer (``mode``: auto|always|never).

    An emulator that does not start is an :class:`InfraError` (instrument ``emulator``).
    """
    if mode not in EMULATE_MODES:
        raise ValueError(f"emulate mode must be auto, always or never, not {mode!r}")
    emulated = [r for r in rigs if r.emulated]
    if not emulated or mode == "never" or (mode == "auto" and all(answers(r) for r in emulated)):
        yield
        return
    from lab.emulator.testing import EmulatedLab, EmulatorFailed

    names = ", ".join(r.name for r in emulated)
    echo(f"starting the emulated lab for {names}")
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(EmulatedLab(rig_file, rigs=[r.name for r in emulated]))
        except EmulatorFailed as exc:  # the lab failing, never the box (and never exit 1 "new faults")
            raise InfraError(f"could not start the emulator: {exc}", rig=names, instrument="emulator") from exc
        yield
