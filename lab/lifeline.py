"""Children that die with their parent: a command line that ties a child process to the one starting it.

When pytest, ``stblab lab`` or ``stblab emulate`` is killed (SIGKILL leaves no handler a chance),
the emulators, peers and per-rig runs it started must not keep ports, state folders and CPU.
On Linux the child asks the kernel for SIGTERM when its parent goes (``PR_SET_PDEATHSIG``): it
then stops the way it does on ``kill PID`` (``stblab emulate`` stops its rigs, which stop their
servers). util-linux's ``setpriv --pdeathsig`` sets it and then execs the command (through a
one-line ``sh`` guard), so the pid is the command's own and no Python runs between fork and
exec (a ``preexec_fn`` would, and crashes children of processes with gRPC threads, such as a
labgrid client). Without ``setpriv`` (not Linux) the command line is unchanged and launchers
rely on their own cleanup.

Linux ties the signal to the *thread* that forked the child: start long-lived children from a
thread that outlives them (the main thread, a fixture, a ``with`` block), as every launcher here does.

Example::

    proc = subprocess.Popen(tied([sys.executable, "-m", "lab.cli", "emulate", rig_file]))
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Sequence

_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None
_SH = shutil.which("sh")


def supported() -> bool:
    """True when children can be tied to their parent here (Linux with util-linux's setpriv)."""
    return _SETPRIV is not None


def tied(argv: Sequence[str], sig: signal.Signals = signal.SIGTERM) -> list[str]:
    """``argv`` run so that it gets ``sig`` when the process starting it dies (unchanged where unsupported).

    A parent that dies before the death signal is set (between fork and ``prctl``) is caught too:
    a shell, run once it is set, checks the parent is still the caller, then execs ``argv``.
    """
    if _SETPRIV is None or _SH is None:
        return list(argv)
    name = sig.name.removeprefix("SIG")
    guard = f'[ "$PPID" = "{os.getpid()}" ] || kill -{name} $$; exec "$@"'
    return [_SETPRIV, "--pdeathsig", name, "--", _SH, "-c", guard, "stblab-tied", *argv]


__all__ = ["supported", "tied"]
