"""The three outcomes stblab keeps apart.

* :class:`DeviceFault` -- the box misbehaved. A failed test; it can be filed in the RMA database.
* :class:`InfraError` -- the lab failed (an instrument did not answer). An error, never filed
  against the box; the rig is marked unhealthy for the rest of the session.
* :class:`TestError` -- the scenario itself is wrong (bad argument, unknown key, impossible request).

Example::

    raise InfraError("serial console did not answer", rig="stb-a", instrument="serial")
"""

from __future__ import annotations


class StblabError(Exception):
    """Base of every error stblab raises on purpose."""


class DeviceFault(StblabError, AssertionError):
    """The device under test misbehaved.

    ``excerpt`` carries the evidence text (console lines around a death string, the check that
    failed); ``symptom`` a short machine-friendly kind such as ``kernel-panic`` or ``black-screen``.
    It subclasses ``AssertionError`` so pytest reports it as a *failure*, not an error.
    """

    def __init__(
        self,
        message: str,
        *,
        rig: str | None = None,
        symptom: str | None = None,
        excerpt: str | None = None,
        evidence: dict[str, object] | None = None,
    ) -> None:
        self.rig = rig
        self.symptom = symptom
        self.excerpt = excerpt
        self.evidence = dict(evidence or {})
        prefix = f"[{rig}] " if rig else ""
        text = prefix + message
        if excerpt:
            text += "\n--- excerpt ---\n" + excerpt
        super().__init__(text)
        self.message = message


class InfraError(StblabError):
    """An instrument of the lab failed: never blamed on the device.

    Always names the rig and the instrument (``serial``, ``ssh``, ``ir``, ``power``, ``video``,
    ``network``, ``database``).
    """

    def __init__(self, message: str, *, rig: str | None = None, instrument: str | None = None) -> None:
        self.rig = rig
        self.instrument = instrument
        self.message = message
        where = ", ".join(p for p in (f"rig {rig}" if rig else "", instrument or "") if p)
        super().__init__(f"[{where}] {message}" if where else message)


class TestError(StblabError):
    """The scenario is wrong (bad arguments, unknown key name, impossible state request)."""

    __test__ = False  # not a pytest test class


class RigFileError(StblabError, ValueError):
    """A rig file is malformed. The message names the file, the rig, the key and the problem."""
