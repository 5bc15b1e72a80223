"""Title rules for the user-space crashes set-top boxes print: segfaults, Android tombstones, Java, ANRs.

* the kernel's line for a crashing process (x86 ``dvbplayer[812]: segfault at 0 ip ... in
  libavcodec.so.58[7f..+1e000]``, ``traps: ... general protection fault ...``, ARM/ARM64
  ``unhandled page fault``) -> ``segfault in dvbplayer (libavcodec.so)``;
* Android native crashes (``Fatal signal 11 (SIGSEGV)`` from libc, the tombstone ``*** *** ***``
  with ``backtrace: #00 pc ... libfoo.so (func+12)``) -> ``SIGSEGV in com.example.player: func (libfoo.so)``;
* Java ``FATAL EXCEPTION`` (and ``Exception in thread``) -> ``FATAL EXCEPTION in com.example.tv:
  java.lang.NullPointerException in com.example.tv.ChannelList.onBind`` (the root cause and its first
  frame in the app, framework frames skipped);
* ``ANR in com.example.tv`` with its reason.

:func:`classify` reads a header line; :func:`finish` reads the lines after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import islice

from lab.rma.crash.frames import skipped
from lab.rma.crash.report import Header


def library(path: str) -> str:
    """A library as titles name it, without path and version.

    ``/system/lib64/libfoo.so.1.2`` -> ``libfoo.so``, ``base.apk!libbar.so`` -> ``libbar.so``,
    ``libc-2.31.so`` -> ``libc.so``.
    """
    name = path.rsplit("!", 1)[-1].rstrip("]").rsplit("/", 1)[-1]
    name = re.sub(r"(\.so)(?:\.\d+)+$", r"\1", name)
    return re.sub(r"-\d+(?:\.\d+)+\.so$", ".so", name)


def _comm(name: str) -> str:
    return re.sub(r"/[\d:uH]+$", "", name.strip())


def _segv(comm: str, lib: str | None, what: str = "segfault") -> Header:
    comm = _comm(comm)
    lib = library(lib) if lib else None
    where = f" ({lib})" if lib and lib != comm else ""
    title = f"{what} in {comm}{where}"
    return Header("segfault", title, needs_func=False, final=title)


_SEGFAULT = re.compile(r"^(\S+?)\[\d+\]: segfault at \S+ ip \S+ sp \S+ error \S+(?: in ([^\[\s]+))?")
_TRAPS = re.compile(
    r"^traps: (\S+?)\[\d+\] (general protection fault|trap [\w ]+?|[\w ]+?) ip:\S+ sp:\S+ error:\S+"
    r"(?: in ([^\[\s]+))?"
)
_ARM_USER = re.compile(
    r"^(\S+?)\[\d+\]: unhandled (?:level \d+ )?[\w ]*?(?:fault|abort|exception)\b.*?(?:, in ([^\[\s]+)\[|$)"
)
_FATAL_SIGNAL = re.compile(r"^Fatal signal (\d+) \((SIG\w+)\).*? in tid \d+ \(([^)]*)\), pid \d+ \(([^)]*)\)")
_TOMBSTONE = re.compile(r"^\*\*\* \*\*\* \*\*\* \*\*\* \*\*\*")
_FATAL_EXCEPTION = re.compile(r"^FATAL EXCEPTION(?: IN SYSTEM PROCESS)?: (.+)$")
_JAVA_THREAD = re.compile(r'^Exception in thread "([^"]*)" ([\w.$]+)')
_ANR = re.compile(r"^ANR in ([\w.:$-]+)")


def classify(line: str) -> Header | None:
    """The header of the user-space crash ``line`` starts, or None."""
    c = line[:1]
    if c == "*":
        return Header("tombstone", "native crash") if _TOMBSTONE.match(line) else None
    if c == "F":
        m = _FATAL_SIGNAL.match(line)
        if m:
            return Header("tombstone", f"{m.group(2)} in {_process(m.group(4))}")
        if _FATAL_EXCEPTION.match(line):
            return Header("java", "FATAL EXCEPTION")
    if c == "E" and _JAVA_THREAD.match(line):
        return Header("java", "uncaught exception")
    if c == "A":
        m = _ANR.match(line)
        if m:
            return Header("anr", f"ANR in {m.group(1)}", needs_func=False)
    if c == "t":
        m = _TRAPS.match(line)
        if m:
            return _segv(m.group(1), m.group(3), f"trap: {m.group(2)}")
    m = _SEGFAULT.match(line)
    if m:
        return _segv(m.group(1), m.group(2))
    m = _ARM_USER.match(line)
    if m:
        return _segv(m.group(1), m.group(2))
    return None


def _process(name: str) -> str:
    """``/system/bin/mediaserver --flag`` -> ``mediaserver``; ``com.example.tv:remote`` stays."""
    name = name.strip().split(" ", 1)[0]
    return name.rsplit("/", 1)[-1] if name.startswith("/") else name


# --- native backtraces --------------------------------------------------------------------------

_NATIVE_FRAME = re.compile(r"^#\d+ pc [0-9a-fA-F]+\s+(\S+)(.*)$")
_TOMB_PID = re.compile(r"^pid: \d+, tid: \d+, name: .*?>>> (.+?) <<<")
_TOMB_SIGNAL = re.compile(r"^signal \d+ \((SIG\w+)\)")


def _native_func(rest: str) -> str | None:
    """``(android::Foo::bar(int)+12) (BuildId: ..)`` -> ``android::Foo::bar``."""
    rest = re.sub(r"\s*\(BuildId: \w+\)|\s*\(offset 0x[0-9a-f]+\)", "", rest).strip()
    if not (rest.startswith("(") and rest.endswith(")")):
        return None
    func = re.sub(r"\+\d+$", "", rest[1:-1]).replace("(anonymous namespace)", "{anon}")
    func = func.split("(", 1)[0].replace("{anon}", "(anonymous namespace)").strip()
    return func or None


def native_crash(lines: Iterable[str], header: Header) -> tuple[str, str | None, tuple[str, ...], bool]:
    """Title, guilty frame, alternatives and corrupted flag of a native crash (libc line or tombstone)."""
    sig = header.base.split(" ", 1)[0] if header.base.startswith("SIG") else None
    process = header.base.split(" in ", 1)[1] if " in " in header.base else None
    frame: tuple[str, str | None] | None = None
    first: tuple[str, str | None] | None = None
    for line in lines:
        if m := _TOMB_PID.match(line):
            process = _process(m.group(1))  # the full name; "Fatal signal" gives the 15-character comm
        elif sig is None and (m := _TOMB_SIGNAL.match(line)):
            sig = m.group(1)
        elif m := _NATIVE_FRAME.match(line):
            lib, func = library(m.group(1)), _native_func(m.group(2))
            first = first or (lib, func)
            if not (func and skipped(func)) and not lib.startswith("["):
                frame = (lib, func)
                break
        elif frame is None and first is not None and not line.startswith("#"):
            break  # the backtrace ended and every frame was the abort path
    frame = frame or first
    base = f"{sig or 'native crash'} in {process or 'unknown process'}"
    if frame is None:
        return base, None, (), True
    lib, func = frame
    title = f"{base}: {func} ({lib})" if func else f"{base} ({lib})"
    alt = f"{sig or 'native crash'} in {func} ({lib})" if func else f"{sig or 'native crash'} in {lib}"
    return title, func or lib, (alt,), process is None


# --- Java and ANR -------------------------------------------------------------------------------

_PROCESS = re.compile(r"^Process: ([\w.:$-]+)")
_EXCEPTION = re.compile(r"^(?:Caused by: )?((?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable|Failure)\w*)\b")
_AT = re.compile(r"^at ([\w$.<>-]+)\(")


def java_crash(lines: Iterable[str], header: Header, header_line: str) -> tuple[str, str | None, bool]:
    """Title, guilty frame and corrupted flag of a Java crash: root cause and its first app frame."""
    process = None
    m = _JAVA_THREAD.match(header_line)
    causes: list[tuple[str, list[str]]] = []
    if m:
        process = f'thread "{m.group(1)}"'
        causes.append((m.group(2), []))
    for line in lines:
        if process is None and (p := _PROCESS.match(line)):
            process = p.group(1)
        elif (not causes or line.startswith("Caused by: ")) and (e := _EXCEPTION.match(line)):
            causes.append((e.group(1), []))
        elif causes and (a := _AT.match(line)):
            causes[-1][1].append(a.group(1))
        elif causes and causes[-1][1] and line and not line.startswith(("...", "Suppressed")):
            break  # the stack trace ended
    if not causes:
        return f"{header.base} in {process or 'unknown process'}", None, True
    cls, frames = causes[-1]
    if not frames:  # "... 12 more": the root cause shares its frames with the exception around it
        frames = next((f for _, f in reversed(causes) if f), [])
    top = next((f for f in frames if not skipped(f)), frames[0] if frames else None)
    who = f"{header.base} in {process or 'unknown process'}"
    title = f"{who}: {cls} in {top}" if top else f"{who}: {cls}"
    return title, top, top is None


_REASON = re.compile(r"^Reason: (.+)$")


def anr(lines: Iterable[str], header: Header) -> str:
    """``ANR in PROCESS: REASON`` with the reason's variable details (windows, times, intents) removed."""
    for line in islice(lines, 20):
        m = _REASON.match(line)
        if m:
            reason = re.split(r" \(| \{|\. Wait queue|, |: ", m.group(1), maxsplit=1)[0].strip()
            return f"{header.base}: {reason}"
    return header.base
