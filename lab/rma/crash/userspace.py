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
from collections.abc import Callable, Iterable
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
    r"^(?:traps: )?(\S+?)\[\d+\] (general protection(?: fault)?|trap [\w ]+?|[\w ]+?) ip:\S+ sp:\S+(?: error:\S+)?"
    r"(?: in ([^\[\s]+))?"
)
_MIPS_SIGNAL = re.compile(r"^do_page_fault\(\): sending (SIG\w+) to (\S+) for invalid (?:read|write) access")


def _trap(what: str) -> str:
    """``trap invalid opcode`` -> ``invalid opcode``; older kernels' ``general protection`` gets its ``fault``."""
    what = what.strip()
    what = what[5:] if what.startswith("trap ") else what
    return "general protection fault" if what == "general protection" else what


_ARM_USER = re.compile(
    r"^(\S+?)\[\d+\]: unhandled (?:level \d+ )?[\w ]*?(?:fault|abort|exception)\b.*?(?:, in ([^\[\s]+)\[|$)"
)
_FATAL_SIGNAL = re.compile(
    r"^Fatal signal (\d+) \((SIG\w+)\)"
    r"(?:.*? in tid \d+ \(([^)]*)\), pid \d+ \(([^)]*)\)|.*?, thread \d+ \(([^)]*)\))?"
)
_TOMBSTONE = re.compile(r"^\*\*\* \*\*\* \*\*\* \*\*\* \*\*\*")
_FATAL_EXCEPTION = re.compile(r"^FATAL EXCEPTION(?: IN SYSTEM PROCESS)?: (.+)$")
_JAVA_THREAD = re.compile(r'^Exception in thread "([^"]*)" ([\w.$]+)')
_ANR = re.compile(r"^ANR in ([\w.:$-]+)")
# Play Console / crash SDK form: "ANR Input dispatching timed out (...)" then the main thread's numbered frames
_ANR_REASON = re.compile(
    r"^ANR (Input dispatching timed out|Broadcast of Intent|executing service|ContentProvider not responding)"
)
_BARE_EXCEPTION = re.compile(r"^(?:Exception |Caused by:? )?(?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)(?::|$)")


def classify(line: str) -> Header | None:
    """The header of the user-space crash ``line`` starts, or None."""
    c = line[:1]
    if c == "*":
        return Header("tombstone", "native crash") if _TOMBSTONE.match(line) else None
    by_first = _BY_FIRST_CHAR.get(c)
    header = by_first(line) if by_first is not None else None
    return header or _bare_exception(line) or _kernel_line(line)


def _tombstone_pid(line: str) -> Header | None:
    # a tombstone without its "*** ***" line (xCrash, cut logs)
    return Header("tombstone", "native crash") if _TOMB_PID.match(line) else None


def _fatal(line: str) -> Header | None:
    m = _FATAL_SIGNAL.match(line)
    if m:
        # Android 5+ names the process; older ones only the thread; some print neither.
        who = m.group(4) or m.group(5)
        return Header("tombstone", f"{m.group(2)} in {_process(who) if who else 'unknown process'}")
    return Header("java", "FATAL EXCEPTION") if _FATAL_EXCEPTION.match(line) else None


def _java_thread(line: str) -> Header | None:
    return Header("java", "uncaught exception") if _JAVA_THREAD.match(line) else None


def _anr_line(line: str) -> Header | None:
    m = _ANR.match(line) or _ANR_REASON.match(line)
    if m is None:
        return None
    what = f"ANR in {m.group(1)}" if m.re is _ANR else f"ANR: {m.group(1)}"
    return Header("anr", what, needs_func=False)


def _mips_signal(line: str) -> Header | None:
    m = _MIPS_SIGNAL.match(line)
    # MIPS: the library is on the "epc = ... in libfoo.so[..]" line after it (the finder reads it)
    return Header("segfault", f"segfault in {_comm(m.group(2))}", needs_func=False) if m else None


# Headers recognised by their first character, checked before the others.
_BY_FIRST_CHAR: dict[str, Callable[[str], Header | None]] = {
    "p": _tombstone_pid,
    "F": _fatal,
    "E": _java_thread,
    "A": _anr_line,
    "d": _mips_signal,
}


def _bare_exception(line: str) -> Header | None:
    if _BARE_EXCEPTION.match(line):
        # A Java stack trace without its FATAL EXCEPTION line (a crash reporter's, or cut off): it names
        # the crash only when nothing better is in the log (handled exceptions print the same way).
        return Header("java", "Java exception", generic=True)
    return None


def _kernel_line(line: str) -> Header | None:
    """The kernel's line about a crashing process: a trap, a segfault, an ARM user fault."""
    if " ip:" in line:
        m = _TRAPS.match(line)
        if m:
            return _segv(m.group(1), m.group(3), f"trap: {_trap(m.group(2))}")
    m = _SEGFAULT.match(line) or _ARM_USER.match(line)
    return _segv(m.group(1), m.group(2)) if m else None


def _process(name: str) -> str:
    """``/system/bin/mediaserver --flag`` -> ``mediaserver``; ``com.example.tv:remote`` stays."""
    name = name.strip().split(" ", 1)[0]
    return name.rsplit("/", 1)[-1] if name.startswith("/") else name


# --- native backtraces --------------------------------------------------------------------------

_NATIVE_FRAME = re.compile(r"^#\d+\s+pc\s+(?:0x)?[0-9a-fA-F]+\s+(\S+)(.*)$")
_TOMB_PID = re.compile(r"^pid: \d+, tid: \d+(?:, [\w ]+: .*?)*\s+>>> (.+?) <<<")
_TOMB_SIGNAL = re.compile(r"^signal \d+ \((SIG\w+)\)")


def _native_func(rest: str) -> str | None:
    """``(android::Foo::bar(int)+12) (BuildId: ..)`` -> ``android::Foo::bar``."""
    rest = re.sub(r"\s*\(BuildId: \w+\)|\s*\(offset 0x[0-9a-f]+\)", "", rest).strip().lstrip("-")
    if not (rest.startswith("(") and rest.endswith(")")):
        return None
    func = re.sub(r"\+\d+$", "", rest[1:-1]).replace("(anonymous namespace)", "{anon}")
    func = func.split("(", 1)[0].replace("{anon}", "(anonymous namespace)").strip()
    return func or None


def native_crash(lines: Iterable[str], header: Header) -> tuple[str, str | None, tuple[str, ...], bool]:
    """Title, guilty frame, alternatives and corrupted flag of a native crash (libc line or tombstone)."""
    sig = header.base.split(" ", 1)[0] if header.base.startswith("SIG") else None
    process = None  # the tombstone's ">>> name <<<" is better than the libc line's 15-character comm
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
            if not (func and skipped(func)) and not lib.startswith(("[", "<")):
                frame = (lib, func)
                break
        elif frame is None and first is not None and not line.startswith("#"):
            break  # the backtrace ended and every frame was the abort path
    if frame is not None and first is not None and first[0].startswith(("<", "[")) and first is not frame:
        # The PC was in no mapped library (a call through a bad pointer): the library that made the
        # call is named, but this is not the same crash as one inside that library.
        frame = (f"{frame[0]}, called into unknown code", frame[1])
    frame = frame or first
    if process is None and " in " in header.base and not header.base.endswith(" in unknown process"):
        process = header.base.split(" in ", 1)[1]
    base = f"{sig or 'native crash'} in {process or 'unknown process'}"
    if frame is None:
        return base, None, (), True
    lib, func = frame
    title = f"{base}: {func} ({lib})" if func else f"{base} ({lib})"
    alt = f"{sig or 'native crash'} in {func} ({lib})" if func else f"{sig or 'native crash'} in {lib}"
    return title, func or lib, (alt,), process is None


# --- Java and ANR -------------------------------------------------------------------------------

_PROCESS = re.compile(r"^Process: ([\w.:$-]+)")
_EXCEPTION = re.compile(
    r"^(?:Exception |Caused by:? )?((?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable|Failure)\w*)\b"
)
_AT = re.compile(r"^at ([\w$.<>-]+)(?: ?\(|$)")


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
        elif (not causes or line.startswith("Caused by")) and (e := _EXCEPTION.match(line)):
            causes.append((e.group(1), []))
        elif causes and (a := _AT.match(line)):
            causes[-1][1].append(a.group(1))
        elif causes and causes[-1][1] and line and not line.startswith(("...", "Suppressed")):
            break  # the stack trace ended
    who = f"{header.base} in {process}" if process else header.base
    if not causes:
        return who, None, True
    cls, frames = causes[-1]
    if not frames:  # "... 12 more": the root cause shares its frames with the exception around it
        frames = next((f for _, f in reversed(causes) if f), [])
    app = next((f for f in frames if not skipped(f)), None)
    top = app or (frames[0] if frames else None)
    title = f"{who}: {cls} in {top}" if top else f"{who}: {cls}"
    # Only framework frames (the trace was cut before its "Caused by"): nothing names the app's bug.
    return title, top, app is None


_REASON = re.compile(r"^Reason: (.+)$")


_NUMBERED_FRAME = re.compile(r"^\d+ ([\w$.<>-]+)\(")


def anr(lines: Iterable[str], header: Header) -> str:
    """``ANR in PROCESS: REASON`` with the reason's variable details (windows, times, intents) removed.

    A Play Console ANR (``ANR Input dispatching timed out``, the main thread's frames numbered after
    it) is named by its first frame in the app.
    """
    if header.base.startswith("ANR: "):
        for line in islice(lines, 40):
            m = _NUMBERED_FRAME.match(line)
            if m and not skipped(m.group(1)):
                return f"{header.base} in {m.group(1)}"
        return header.base
    for line in islice(lines, 20):
        m = _REASON.match(line)
        if m:
            reason = re.split(r" \(| \{|\. Wait queue|, |: ", m.group(1), maxsplit=1)[0].strip()
            return f"{header.base}: {reason}"
    return header.base
