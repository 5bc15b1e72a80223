"""Decoding: pulse/space timings (µs) back into the key presses of a :class:`~lab.lircd.remote.Remote`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from lab.lircd.encode import Encoder
from lab.lircd.format import Decoded, LircdError


class Decoder(Encoder):
    """The decoding half of :class:`~lab.lircd.remote.Remote`: timings back into key presses.

    It builds on the encoder: a frame is matched against the frames the remote's own codes encode to.
    """

    def decode(self, timings: Iterable[int | float]) -> str | None:
        """The key these pulse/space timings carry, or None when they are not a code of this remote.

        Tolerance per duration is the remote's ``eps`` (percent) or ``aeps`` (µs), whichever is
        larger. Repeat frames after the first frame are accepted; a lone repeat frame gives None.
        """
        found = self.decode_all(timings)
        return found[0].key if found and found[0].key else None

    def decode_press(self, timings: Iterable[int | float], previous: str | None = None) -> Decoded | None:
        """Like :meth:`decode` but tells the repeat count and toggle; None for garbage.

        A burst of repeat frames alone is attributed to ``previous`` (the key still held) when given.
        """
        found = self.decode_all(timings, previous=previous)
        return found[0] if found else None

    def decode_all(self, timings: Iterable[int | float], previous: str | None = None) -> list[Decoded]:
        """Every key press in ``timings``: a full frame starts a press, repeat frames extend it.

        Frames that match nothing end the current press and are skipped (noise), as a receiver does.
        """
        values = _clean(timings)
        if values is None:
            return []
        self._build_templates()
        result: list[Decoded] = []
        current: str | None = previous
        cur_toggle: int | None = None
        repeats = 0
        started = False
        for frame in self._split_frames(values):
            hit = self._match_full(frame)
            if hit is not None:
                if started:
                    result.append(Decoded(current, repeats, cur_toggle))
                current, cur_toggle = hit
                repeats, started = 0, True
                # A full frame repeated while held (no separate repeat code): count it as a repeat.
                continue
            if self._match_repeat(frame, current):
                if not started:
                    started, repeats, cur_toggle = True, 0, None
                repeats += 1
                continue
            if started:
                result.append(Decoded(current, repeats, cur_toggle))
            started, current = False, None
        if started:
            result.append(Decoded(current, repeats, cur_toggle))
        return _merge_held(result, self.has_repeat_code)

    def _build_templates(self) -> None:
        if self._templates is not None:
            return
        templates: dict[int, list[tuple[str, int | None, tuple[int, ...]]]] = {}
        repeats: dict[str, tuple[int, ...]] = {}
        max_inner = 0
        for key in self.keys:
            try:
                variants: set[tuple[int | None, tuple[int, ...]]] = set()
                toggles: tuple[int | None, ...] = (0, 1) if (self.toggle_bit_mask or self.toggle_mask) else (None,)
                for t in toggles:
                    variants.add((t, tuple(self._frame_for(key, toggle=t, repeat=False))))
                rep = tuple(self._frame_for(key, toggle=None, repeat=True))
            except LircdError:
                continue
            seen: set[tuple[int, ...]] = set()
            for t, tpl in sorted(variants, key=lambda v: (v[0] is None, v[0] or 0)):
                if tpl in seen:
                    continue
                seen.add(tpl)
                templates.setdefault(len(tpl), []).append((key, t, tpl))
                max_inner = max(max_inner, max(tpl[1::2], default=0))
            repeats[key] = rep
            max_inner = max(max_inner, max(rep[1::2], default=0))
        self._templates = templates
        self._repeat_templates = repeats
        self._split = int(max_inner * (1 + self.eps / 100) + self.aeps)
        # the same templates as arrays per frame length, for one vectorised comparison per frame
        self._arrays = {}
        for length, items in templates.items():
            want = np.array([tpl for _, _, tpl in items], dtype=np.float64)
            allowed = np.maximum(np.maximum(want * (self.eps / 100), self.aeps), 1.0)
            self._arrays[length] = (want, allowed)

    def _split_frames(self, values: list[int]) -> list[list[int]]:
        frames: list[list[int]] = []
        cur: list[int] = []
        for i, v in enumerate(values):
            if i % 2 == 1 and v > self._split:
                frames.append(cur)
                cur = []
            else:
                cur.append(v)
        if cur:
            frames.append(cur)
        return [f for f in frames if f]

    def _close(self, got: Sequence[int], want: Sequence[int]) -> bool:
        if len(got) != len(want):
            return False
        eps, aeps = self.eps / 100, self.aeps
        return all(abs(g - w) <= max(w * eps, aeps) for g, w in zip(got, want, strict=True))

    def _match_full(self, frame: list[int]) -> tuple[str, int | None] | None:
        """The key (and toggle) whose frame is nearest to ``frame`` within tolerance, or None."""
        assert self._templates is not None
        arrays = self._arrays.get(len(frame))
        if arrays is None:
            return None
        want, allowed = arrays
        dev = np.abs(want - np.asarray(frame, dtype=np.float64)) / allowed
        ok = (dev <= 1.0).all(axis=1)
        if not ok.any():
            return None
        score = np.where(ok, dev.sum(axis=1), np.inf)
        key, toggle, _ = self._templates[len(frame)][int(np.argmin(score))]
        return key, toggle

    def _match_repeat(self, frame: list[int], current: str | None) -> bool:
        assert self._repeat_templates is not None
        if current is not None and current in self._repeat_templates:
            return self._close(frame, self._repeat_templates[current])
        if self.has_repeat_code and self._repeat_templates:
            return self._close(frame, next(iter(self._repeat_templates.values())))
        return False


def _clean(timings: Iterable[int | float]) -> list[int] | None:
    try:
        values = [int(round(float(v))) for v in timings]
    except (TypeError, ValueError, OverflowError):
        return None
    if not values or any(v <= 0 for v in values):
        return None
    if len(values) % 2 == 0:
        values.pop()  # the trailing gap is silence, not part of a frame
    return values


def _merge_held(found: list[Decoded], has_repeat_code: bool) -> list[Decoded]:
    """Without a repeat code a held key re-sends its full frame; fold those into one press."""
    if has_repeat_code:
        return found
    merged: list[Decoded] = []
    for d in found:
        if (
            merged
            and d.key is not None
            and merged[-1].key == d.key
            and (d.toggle is None or d.toggle == merged[-1].toggle)
        ):
            prev = merged[-1]
            merged[-1] = Decoded(prev.key, prev.repeats + 1 + d.repeats, prev.toggle)
        else:
            merged.append(d)
    return merged
