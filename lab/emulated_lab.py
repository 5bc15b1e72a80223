"""Compatibility name: the launcher lives in :mod:`lab.emulator.launcher`."""

from lab.emulator.launcher import EMULATE_MODES, answers, ensure_emulated, url_answers

__all__ = ["EMULATE_MODES", "answers", "ensure_emulated", "url_answers"]
