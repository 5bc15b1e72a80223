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


def answers(rig: Rig, timeout: float = 1.0) -> bool:
    """True when the rig's PDU accepts a TCP connection (for an emulated rig: its emulator runs)."""
    if rig.power is None:
        return False
    url = urlparse(rig.power.url)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


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
