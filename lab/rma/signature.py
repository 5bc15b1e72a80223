"""Signatures: a fault's title and the hash filing keys on, and the normalisation titles go through.

A :class:`Fingerprint` is what :mod:`lab.rma.fingerprint` makes of a console log or a failed check;
its :class:`Signature` s (primary title, then alternative titles) are what filing looks faults up
by. Titles are normalised (:func:`normalise`) so that two hits of one bug read the same.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

ALGORITHM_VERSION = 3


@dataclass(frozen=True)
class Signature:
    """One title and its hash under one algorithm version (``role`` is primary or alternative)."""

    title: str
    hash: str
    algorithm_version: int
    role: str = "primary"


@dataclass(frozen=True)
class Fingerprint:
    """What filing keys on: the kind of failure, its title, alternative titles and their hashes."""

    kind: str
    title: str
    alternatives: tuple[str, ...] = ()
    algorithm_version: int = ALGORITHM_VERSION
    frames: tuple[str, ...] = field(default=(), compare=False)
    corrupted: bool = False
    guilty: str | None = field(default=None, compare=False)
    evidence: str = ""

    @property
    def key_title(self) -> str:
        """What the primary hash is taken over: the title, marked when the report is corrupted.

        A report cut off before its stack keeps its title for people, but never shares a hash
        with a complete report (``general protection fault`` alone says nothing of which bug), nor
        with a corrupted one whose remaining lines read differently (``evidence``, normalised).
        """
        if not self.corrupted:
            return self.title
        digest = hashlib.sha256(self.evidence.encode()).hexdigest()[:12]
        return f"{self.title} (corrupted report {digest})"

    @property
    def signatures(self) -> list[Signature]:
        """Primary signature first, then one per alternative title."""
        v = self.algorithm_version
        out = [Signature(self.key_title, title_hash(self.key_title, v), v)]
        for alt in self.alternatives:
            out.append(Signature(alt, title_hash(alt, v), v, "alternative"))
        return out

    @property
    def hash(self) -> str:
        """Hash of the primary title (the fault's fingerprint)."""
        return title_hash(self.key_title, self.algorithm_version)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what ``stblab rma title --json`` prints)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "guilty_frame": self.guilty,
            "corrupted": self.corrupted,
            "alternatives": list(self.alternatives),
            "fingerprint": self.hash,
            "algorithm_version": self.algorithm_version,
            "signatures": [{"title": s.title, "hash": s.hash, "role": s.role} for s in self.signatures],
        }


def title_hash(title: str, algorithm_version: int = ALGORITHM_VERSION) -> str:
    """sha256 over the algorithm version and the title: the same title under another version differs."""
    return hashlib.sha256(f"stblab-fp/{algorithm_version}\n{title}".encode()).hexdigest()


# --- normalisation ---------------------------------------------------------------------------

_TS = re.compile(r"^\s*(?:<\d+>)?\[\s*\d+\.\d+\]\s?")  # [   12.345678] kernel timestamps
_SYSLOG_TS = re.compile(r"^(?:\d{4}-\d\d-\d\dT\S+|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\s+(?:\S+\s+)?")
_HEX = re.compile(r"\b(?:0x)?[0-9a-fA-F]{8,}\b|\b0x[0-9a-fA-F]+\b")
_NUM = re.compile(r"(?<!\w)\d+")  # a number on its own, not the digits of an identifier (mt7601u)
_OFFSET = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+", re.I)
_WS = re.compile(r"\s+")
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_MAX_TITLE = 300


def strip_line(line: str) -> str:
    """A console line without its kernel/syslog timestamp, colour codes and control characters."""
    line = _ANSI.sub("", line)
    line = _CTRL.sub("", line)
    line = _TS.sub("", line)
    return _SYSLOG_TS.sub("", line).strip()


def normalise(text: str) -> str:
    """Replace what changes between two hits of one bug: offsets, addresses, numbers, spacing.

    >>> normalise("CPU#1 stuck for 22s! at 0xffff0000c0de1234 pid 77")
    'CPU#N stuck for Ns! at ADDR pid N'
    """
    text = _OFFSET.sub("", text)
    text = _HEX.sub("ADDR", text)
    text = _NUM.sub("N", text)
    text = _WS.sub(" ", text).strip()
    return text[:_MAX_TITLE]


def _retag(fp: Fingerprint, version: int) -> Fingerprint:
    return Fingerprint(fp.kind, fp.title, fp.alternatives, version, fp.frames, fp.corrupted, fp.guilty, fp.evidence)
