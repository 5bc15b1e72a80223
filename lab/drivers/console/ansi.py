"""Terminal control sequences out of the expect stream (the console log keeps them raw).

A real shell on a console prints more than text: bash 5.1+ switches bracketed paste on and off
around every prompt (``ESC[?2004h`` ... ``ESC[?2004l``), prompts carry colours, ``ls`` and
``systemctl`` colour their output. Patterns and command output are about the text, so the
expect buffer receives it without ESC sequences (CSI, OSC, two-byte escapes) and without the
BEL and NUL bytes. A sequence split across two reads is held back until it is complete.
"""

from __future__ import annotations

import re

_SEQ = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor, modes (ESC[?2004h)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: window titles (ESC]0;title BEL)
    r"|\x1b[ -/]*[0-~]"  # two-byte escapes (ESC=, ESC>, ESC(B)
    r"|[\x00\x07]"  # NUL padding, BEL
)
# an escape sequence that may still be incomplete at the end of a chunk
_PARTIAL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[ -/]*)?\Z")
_MAX_HOLD = 256  # a lone ESC followed by this much is not a sequence: let it through


class AnsiFilter:
    """Removes terminal control sequences from a stream of text chunks."""

    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        """The text of ``text`` (with what was held back before), sequences removed."""
        text = self._held + text
        self._held = ""
        m = _PARTIAL.search(text)
        if m is not None and len(text) - m.start() < _MAX_HOLD:
            self._held = text[m.start() :]
            text = text[: m.start()]
        return _SEQ.sub("", text) if ("\x1b" in text or "\x00" in text or "\x07" in text) else text

    def reset(self) -> None:
        """Forget a held partial sequence (after a reconnect)."""
        self._held = ""


def strip_ansi(text: str) -> str:
    """``text`` without terminal control sequences (one-shot form of :class:`AnsiFilter`)."""
    return _SEQ.sub("", text)
