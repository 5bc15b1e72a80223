"""Children that die with their parent: a ``preexec_fn`` that ties a child process to the one starting it.

When pytest, ``stblab lab`` or ``stblab emulate`` is killed (SIGKILL leaves no handler a chance),
the emulators, peers and per-rig runs it started must not keep ports, state folders and CPU.
On Linux the child asks the kernel for SIGTERM when its parent goes (``PR_SET_PDEATHSIG``): it
then stops the way it does on ``kill PID`` (``stblab emulate`` stops its rigs, which stop their
servers). Elsewhere :func:`die_with_parent` is a no-op and launchers rely on their own cleanup.

Linux ties the signal to the *thread* that forked the child: start long-lived children from a
thread that outlives them (the main thread, a fixture, a ``with`` block), as every launcher here does.

Example::

    proc = subprocess.Popen(argv, preexec_fn=die_with_parent(), start_new_session=True)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()  # resolved before any fork: the child only calls it


def supported() -> bool:
    """True when children can be tied to their parent here (Linux with a usable libc)."""
    return _PRCTL is not None


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``sig`` when this process dies.

    A parent that died between the fork and the ``prctl`` call is caught as well (the child then
    signals itself), so no child outlives a parent killed while starting it.
    """
    parent = os.getpid()
    prctl = _PRCTL

    def preexec() -> None:  # runs in the child between fork and exec: no locks, no imports
        if prctl is None:
            return
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


__all__ = ["die_with_parent", "supported"]
