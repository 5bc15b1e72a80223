"""Make the v-*.log variants of the crash corpus: the same bug as it comes back from other boxes.

Each hand-written log with a crash (not the truncated ones) gets two variants, each renumbered
(other timestamps, addresses, offsets, PIDs, CPUs and source line numbers, as another box or
firmware build prints them) and carried in another way: a syslog or journal prefix, ``dmesg -T``
dates, printk caller prefixes (``[ T123]``), CRLF line ends with ANSI colour codes, a long boot log
around it, or quote markers from a bug thread. The variants keep their log's bug and title.

Run from the repository root after editing the hand-written logs or index.tsv's hand rows::

    python tests/data/crashes/variants.py

Deterministic: the same inputs give byte-identical files.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
INDEX = HERE / "index.tsv"
MARKER = "# --- variants (made by variants.py; do not edit below) ---"

_TS = re.compile(r"^\[\s*(\d+)\.(\d+)\]")
_HEX0X = re.compile(r"0x[0-9a-fA-F]+")
_HEXBARE = re.compile(r"\b[0-9a-f]{8,16}\b")
_PID = re.compile(r"(PID: |pid: |pid |tid: |tid |by task [^/\s]+/|Comm: \S+ PID: )(\d+)|(?<=[\w-])\[(\d{2,6})\]")
_CPU = re.compile(r"(CPU: |CPU#|cpu |CPU)(\d)\b")
_LINE = re.compile(r"(\.[ch]):(\d+)")


def renumber(text: str, rng: random.Random) -> str:
    """The same report as another box would print it: every changing number changed."""
    shift = rng.uniform(50, 90_000)
    scale = rng.uniform(0.9, 1.1)
    pid_map: dict[str, str] = {}

    def ts(m: re.Match[str]) -> str:
        t = float(f"{m.group(1)}.{m.group(2)}") * scale + shift
        return f"[{t:12.6f}]"

    def hex0x(m: re.Match[str]) -> str:
        n = len(m.group(0)) - 2
        return "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(n)).lstrip("0").rjust(n, "0")[-n:]

    def hexbare(m: re.Match[str]) -> str:
        s = m.group(0)
        keep = 4 if s.startswith(("ffff", "0000")) else 0  # kernel/user halves stay recognisable
        return s[:keep] + "".join(rng.choice("0123456789abcdef") for _ in range(len(s) - keep))

    def pid(m: re.Match[str]) -> str:
        old = m.group(2) or m.group(3)
        new = pid_map.setdefault(old, str(rng.randint(100, 32000)))
        return f"{m.group(1)}{new}" if m.group(2) else f"[{new}]"

    out = []
    for line in text.split("\n"):
        line = _TS.sub(ts, line)
        line = _HEX0X.sub(hex0x, line)
        line = _HEXBARE.sub(hexbare, line)
        line = _PID.sub(pid, line)
        line = _CPU.sub(lambda m: f"{m.group(1)}{rng.randint(0, 3)}", line)
        line = _LINE.sub(lambda m: f"{m.group(1)}:{max(1, int(m.group(2)) + rng.randint(-40, 40))}", line)
        out.append(line)
    return "\n".join(out)


def _lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def syslog(text: str, rng: random.Random) -> str:
    host = rng.choice(["stb-4k-07", "stb-arm-02", "lab-rig-11"])
    day = rng.randint(1, 28)
    return "".join(f"May {day:2d} 10:14:{i % 60:02d} {host} kernel: {x}\n" for i, x in enumerate(_lines(text)))


def journal(text: str, rng: random.Random) -> str:
    return "".join(
        f"2026-05-21T10:14:{i % 60:02d}.{rng.randint(0, 999999):06d}+0200 stb-4k kernel: {_TS.sub('', x).lstrip()}\n"
        for i, x in enumerate(_lines(text))
    )


def dmesg_t(text: str, rng: random.Random) -> str:
    stamp = f"[Thu May 21 10:14:{rng.randint(0, 59):02d} 2026]"
    return "".join(_TS.sub(stamp, x) + "\n" for x in _lines(text))


def caller(text: str, rng: random.Random) -> str:
    tag = f"[{'T' + str(rng.randint(2, 9999)):>6}]"
    return "".join((_TS.sub(lambda m: m.group(0) + tag, x) if _TS.match(x) else x) + "\n" for x in _lines(text))


def crlf_ansi(text: str, rng: random.Random) -> str:
    out = []
    for i, x in enumerate(_lines(text)):
        if i % 3 == 0:
            x = f"\x1b[1;31m{x}\x1b[0m"
        elif i % 5 == 0:
            x = "\x1b[2K" + x
        out.append(x + "\r\n")
    return "".join(out)


_NOISE = [
    "usb 1-1: new high-speed USB device number {n} using ehci-platform",
    "eth0: Link is Up - 1Gbps/Full - flow control rx/tx",
    "dvb_demux: feed 0x{n:x} started on adapter 0",
    "stb-app: channel {n} tuned, signal 78%",
    "EXT4-fs (mmcblk0p{n}): mounted filesystem with ordered data mode",
    "systemd[1]: Started Session {n} of user root.",
    "hdmi: sink EDID read, {n} modes",
]


def noise(text: str, rng: random.Random) -> str:
    m = _TS.search(text) or re.search(r"\[\s*(\d+)\.(\d+)\]", text)
    start = float(f"{m.group(1)}.{m.group(2)}") if m else 100.0
    before = "".join(
        f"[{start * i / 200:12.6f}] {rng.choice(_NOISE).format(n=rng.randint(1, 999))}\n" for i in range(200)
    )
    after = "".join(f"[{start + 5 + i:12.6f}] {rng.choice(_NOISE).format(n=rng.randint(1, 999))}\n" for i in range(40))
    return before + text + after


def quoted(text: str, rng: random.Random) -> str:
    return "Hello, our box crashed like this:\n\n" + "".join(f"> {x}\n" for x in _lines(text)) + "\nThanks\n"


KERNEL_STYLES: list[tuple[str, Callable[[str, random.Random], str]]] = [
    ("syslog", syslog),
    ("dmesgT", dmesg_t),
    ("caller", caller),
    ("crlf", crlf_ansi),
    ("journal", journal),
    ("noise", noise),
    ("quoted", quoted),
]
OTHER_STYLES = [("crlf", crlf_ansi), ("noise", noise), ("quoted", quoted), ("plain", lambda t, r: t)]


def main() -> None:
    head, _, _ = INDEX.read_text().partition(MARKER)
    rows = [r.split("\t") for r in head.splitlines() if r and not r.startswith("#")]
    for old in HERE.glob("v-*.log"):
        old.unlink()
    out = [MARKER]
    k = 0
    for name, bug, corrupted, title in rows:
        if bug == "-" or corrupted == "yes" or name.startswith(("quoted-", "syslog-", "dmesgT-")):
            continue
        text = (HERE / name).read_text()
        kernel = bool(_TS.search(text))
        styles = KERNEL_STYLES if kernel else OTHER_STYLES
        for j in range(2):
            style_name, style = styles[(k + j) % len(styles)]
            rng = random.Random(f"{name}:{j}")
            body = style(renumber(text, rng), rng)
            vname = f"v-{Path(name).stem}-{style_name}.log"
            (HERE / vname).write_bytes(body.encode())
            out.append("\t".join([vname, bug, corrupted, title]))
        k += 1
    INDEX.write_text(head.rstrip("\n") + "\n" + "\n".join(out) + "\n")
    print(f"{len(out) - 1} variants written")


if __name__ == "__main__":
    main()
