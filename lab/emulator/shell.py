"""The box's busybox-like shell: one command set for the serial console and SSH.

Supports command lists (``a; b``, ``a && b``, ``a || b``), single and double quotes, ``$?``,
``2>&1`` and ``> FILE`` / ``>> FILE`` redirection (``/dev/null`` too). Commands: see docs/wire.md.
Output goes to a callback as it is produced, so long commands (``sleep``, ``fwupdate``) stream.

Example::

    sh = Shell(box)
    status = sh.run("fw version; echo $?", out=print)
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lab.emulator.box import Box

Out = Callable[[str], None]

_SPLIT = re.compile(r"(&&|\|\||;)")


def split_list(line: str) -> list[tuple[str, str]]:
    """Split a command line into ``[(operator, command)]`` honouring quotes; operator of the first is ``;``."""
    parts: list[tuple[str, str]] = []
    buf: list[str] = []
    op = ";"
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"' and i + 1 < len(line):
                buf.append(line[i + 1])
                i += 1
        elif ch in "'\"":
            quote = ch
            buf.append(ch)
        elif ch == "\\" and i + 1 < len(line):
            buf.append(line[i : i + 2])
            i += 1
        elif line.startswith("&&", i) or line.startswith("||", i) or ch == ";":
            tok = line[i : i + 2] if ch in "&|" else ";"
            parts.append((op, "".join(buf).strip()))
            buf = []
            op = tok
            i += len(tok) - 1
        else:
            buf.append(ch)
        i += 1
    if quote:
        raise ValueError("unterminated quoted string")
    parts.append((op, "".join(buf).strip()))
    return [(o, c) for o, c in parts if c]


def split_pipe(cmd: str) -> list[str]:
    """Split one command on unquoted ``|`` into pipeline stages."""
    stages: list[str] = []
    buf: list[str] = []
    quote = ""
    for ch in cmd:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "|":
            stages.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    stages.append("".join(buf).strip())
    return stages


class Cancelled(Exception):
    """The command was interrupted (Ctrl-C, session closed, power lost)."""


class Shell:
    """A shell session on the box (one per console login or SSH channel)."""

    def __init__(self, box: Box, *, transport: str = "console") -> None:
        self.box = box
        self.transport = transport
        self.status = 0
        self.cwd = "/root"
        self.stdin: str | None = None  # output of the previous pipeline stage

    # -- entry point ---------------------------------------------------------------------------

    def run(self, line: str, out: Out, cancelled: Callable[[], bool] = lambda: False) -> int:
        """Run one command line; returns its exit status (also kept for ``$?``)."""
        try:
            items = split_list(line)
        except ValueError as exc:
            out(f"-sh: syntax error: {exc}\n")
            self.status = 2
            return 2
        for op, cmd in items:
            if op == "&&" and self.status != 0:
                continue
            if op == "||" and self.status == 0:
                continue
            if cancelled():
                self.status = 130
                break
            try:
                self.status = self._simple(cmd, out, cancelled)
            except Cancelled:
                self.status = 130
                break
        return self.status

    def _simple(self, cmd: str, out: Out, cancelled: Callable[[], bool]) -> int:
        cmd = re.sub(r"\$\?|\$\{\?\}", str(self.status), cmd)
        stages = split_pipe(cmd)
        if len(stages) > 1:
            if any(not st for st in stages):
                out("-sh: syntax error: unexpected |\n")
                return 2
            status = 0
            self.stdin = None
            try:
                for i, stage in enumerate(stages):
                    last = i == len(stages) - 1
                    buf: list[str] = []
                    status = self._stage(stage, out if last else buf.append, cancelled)
                    self.stdin = None if last else "".join(buf)
            finally:
                self.stdin = None
            return status
        return self._stage(cmd, out, cancelled)

    def _stage(self, cmd: str, out: Out, cancelled: Callable[[], bool]) -> int:
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            out(f"-sh: syntax error: {exc}\n")
            return 2
        sink: list[str] | None = None
        target: str | None = None
        append = False
        clean: list[str] = []
        i = 0
        while i < len(argv):
            a = argv[i]
            if a in ("2>&1", "2>/dev/null"):
                pass
            elif a in (">", ">>", "1>") and i + 1 < len(argv):
                target, append = argv[i + 1], a == ">>"
                i += 1
            elif a.startswith(">>") or (a.startswith(">") and len(a) > 1):
                target, append = a.lstrip(">"), a.startswith(">>")
            else:
                clean.append(a)
            i += 1
        if not clean:
            return self.status
        if target is not None:
            sink = []
            real_out = out

            def out(text: str) -> None:
                sink.append(text)

        status = self._dispatch(clean, out, cancelled)
        if target == "/dev/kmsg" and sink is not None:  # a user-space message into the kernel log
            for line in "".join(sink).splitlines():
                self.box.kmsg(line)
            return status
        if target is not None and sink is not None and target != "/dev/null":
            path = self.box.fs_path(target)
            if path is None:
                real_out(f"-sh: can't create {target}: Read-only file system\n")
                return 1
            with open(path, "a" if append else "w", encoding="utf-8") as fh:
                fh.write("".join(sink))
        return status

    def _dispatch(self, argv: list[str], out: Out, cancelled: Callable[[], bool]) -> int:
        name, args = argv[0], argv[1:]
        if name == "fw" and args[:1] == ["version"]:
            return self._fw_version(out)
        fn = getattr(self, "cmd_" + name.replace("-", "_"), None) if re.fullmatch(r"[a-z0-9_-]+", name) else None
        if fn is None:
            out(f"-sh: {name}: not found\n")
            return 127
        return int(fn(args, out, cancelled) or 0)

    # -- commands ------------------------------------------------------------------------------

    def cmd_true(self, args: list[str], out: Out, cancelled: Any) -> int:
        return 0

    def cmd_false(self, args: list[str], out: Out, cancelled: Any) -> int:
        return 1

    def cmd_echo(self, args: list[str], out: Out, cancelled: Any) -> int:
        newline = True
        if args[:1] == ["-n"]:
            newline, args = False, args[1:]
        if args[:1] == ["-e"]:
            args = args[1:]
            args = [a.encode().decode("unicode_escape", errors="replace") for a in args]
        out(" ".join(args) + ("\n" if newline else ""))
        return 0

    def cmd_printf(self, args: list[str], out: Out, cancelled: Any) -> int:
        if not args:
            out("printf: usage: printf FORMAT [ARGUMENT]...\n")
            return 1
        fmt = args[0].encode().decode("unicode_escape", errors="replace")
        try:
            out(fmt % tuple(args[1:]) if "%" in fmt else fmt)
        except (TypeError, ValueError):
            out(fmt)
        return 0

    def cmd_uname(self, args: list[str], out: Out, cancelled: Any) -> int:
        b = self.box
        if "-a" in args:
            out(f"Linux {b.hostname} {b.kernel_release} #1 SMP PREEMPT {b.kernel_date} armv7l GNU/Linux\n")
        elif "-r" in args:
            out(b.kernel_release + "\n")
        elif "-n" in args:
            out(b.hostname + "\n")
        elif "-m" in args:
            out("armv7l\n")
        else:
            out("Linux\n")
        return 0

    def cmd_hostname(self, args: list[str], out: Out, cancelled: Any) -> int:
        out(self.box.hostname + "\n")
        return 0

    def cmd_uptime(self, args: list[str], out: Out, cancelled: Any) -> int:
        up = self.box.uptime()
        load = ", ".join(self.box.hogs.loadavg().split()[:3])
        out(f" {time.strftime('%H:%M:%S')} up {int(up // 60)} min,  load average: {load}\n")
        return 0

    def cmd_hog(self, args: list[str], out: Out, cancelled: Any) -> int:
        """Third-party app hogs (lab.emulator.box.hogs): ``hog cpu|mem|fds|crashloop ARG``, ``stop``, ``status``."""
        from lab.emulator.box.hogs import USAGE

        if args[:1] == ["stop"]:
            kinds = self.box.hogs.stop()
            out(f"hog: stopped {' '.join(kinds)}\n" if kinds else "hog: none running\n")
            return 0
        if args[:1] == ["status"] or not args:
            running = self.box.hogs.status()
            for h in running:
                out(f"{h.kind} pid={h.pid} restarts={h.restarts} {h.command()}\n")
            if not args:
                out(USAGE + "\n")
            return 0 if args else 2
        if len(args) > 2:
            out(USAGE + "\n")
            return 2
        try:
            out(self.box.hogs.start(args[0], args[1] if len(args) > 1 else None) + "\n")
        except ValueError as exc:
            out(f"{exc}\n{USAGE}\n")
            return 2
        return 0

    def _input_lines(self, files: list[str], out: Out) -> list[str] | None:
        if not files:
            return (self.stdin or "").splitlines()
        lines: list[str] = []
        for name in files:
            text = self.box.read_file(name)
            if text is None:
                out(f"{name}: No such file or directory\n")
                return None
            lines += text.splitlines()
        return lines

    def cmd_grep(self, args: list[str], out: Out, cancelled: Any) -> int:
        flags = {a for a in args if a.startswith("-") and len(a) > 1}
        rest = [a for a in args if a not in flags]
        if not rest:
            out("usage: grep [-ivc] PATTERN [FILE]...\n")
            return 2
        opts = "".join(f.lstrip("-") for f in flags)
        try:
            rx = re.compile(rest[0], re.IGNORECASE if "i" in opts else 0)
        except re.error as exc:
            out(f"grep: bad regex: {exc}\n")
            return 2
        lines = self._input_lines(rest[1:], out)
        if lines is None:
            return 2
        hits = [ln for ln in lines if bool(rx.search(ln)) != ("v" in opts)]
        if "c" in opts:
            out(f"{len(hits)}\n")
        else:
            for ln in hits:
                out(ln + "\n")
        return 0 if hits else 1

    def _count_arg(self, args: list[str]) -> tuple[int, list[str]]:
        n, files, i = 10, [], 0
        while i < len(args):
            a = args[i]
            if a == "-n" and i + 1 < len(args):
                n, i = int(args[i + 1]), i + 1
            elif re.fullmatch(r"-n?\d+", a):
                n = int(a.lstrip("-n"))
            else:
                files.append(a)
            i += 1
        return n, files

    def cmd_head(self, args: list[str], out: Out, cancelled: Any) -> int:
        n, files = self._count_arg(args)
        lines = self._input_lines(files, out)
        if lines is None:
            return 1
        for ln in lines[:n]:
            out(ln + "\n")
        return 0

    def cmd_tail(self, args: list[str], out: Out, cancelled: Any) -> int:
        n, files = self._count_arg(args)
        lines = self._input_lines(files, out)
        if lines is None:
            return 1
        for ln in lines[-n:] if n else []:
            out(ln + "\n")
        return 0

    def cmd_wc(self, args: list[str], out: Out, cancelled: Any) -> int:
        files = [a for a in args if not a.startswith("-")]
        lines = self._input_lines(files, out)
        if lines is None:
            return 1
        out(f"{len(lines)}\n")
        return 0

    def cmd_cat(self, args: list[str], out: Out, cancelled: Any) -> int:
        if not args and self.stdin is not None:
            out(self.stdin)
            return 0
        status = 0
        for name in args:
            text = self.box.read_file(name)
            if text is None:
                out(f"cat: can't open '{name}': No such file or directory\n")
                status = 1
            else:
                out(text)
        return status

    def cmd_ls(self, args: list[str], out: Out, cancelled: Any) -> int:
        long = any(a.startswith("-") and "l" in a for a in args)
        paths = [a for a in args if not a.startswith("-")] or [self.cwd]
        status = 0
        for p in paths:
            entries = self.box.list_dir(p)
            if entries is None:
                out(f"ls: {p}: No such file or directory\n")
                status = 1
                continue
            for name, size in entries:
                out(f"-rw-r--r--    1 root     root     {size:>8} {name}\n" if long else name + "\n")
        return status

    def cmd_sha256sum(self, args: list[str], out: Out, cancelled: Any) -> int:
        status = 0
        for name in args:
            path = self.box.fs_path(name)
            if path is None or not path.is_file():
                out(f"sha256sum: {name}: No such file or directory\n")
                status = 1
                continue
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            out(f"{h.hexdigest()}  {name}\n")
        return status

    def cmd_rm(self, args: list[str], out: Out, cancelled: Any) -> int:
        force = any(a.startswith("-") and "f" in a for a in args)
        status = 0
        for name in (a for a in args if not a.startswith("-")):
            path = self.box.fs_path(name)
            if path is None or not path.is_file():
                if not force:
                    out(f"rm: can't remove '{name}': No such file or directory\n")
                    status = 1
                continue
            path.unlink()
        return status

    def cmd_sleep(self, args: list[str], out: Out, cancelled: Callable[[], bool]) -> int:
        try:
            seconds = float(args[0]) if args else 0.0
        except ValueError:
            out(f"sleep: invalid number '{args[0]}'\n")
            return 1
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if cancelled():
                raise Cancelled
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return 0

    def cmd_ps(self, args: list[str], out: Out, cancelled: Any) -> int:
        out("  PID USER       VSZ STAT COMMAND\n")
        for pid, user, vsz, stat, command in self.box.processes():
            out(f"{pid:>5} {user:<8} {vsz:>5} {stat:<4} {command}\n")
        return 0

    def cmd_dmesg(self, args: list[str], out: Out, cancelled: Any) -> int:
        for line in self.box.kernel_log():
            out(line + "\n")
        return 0

    def cmd_free(self, args: list[str], out: Out, cancelled: Any) -> int:
        total, free = self.box.memory()
        out("              total        used        free\n")
        out(f"Mem:      {total:>9}   {total - free:>9}   {free:>9}\n")
        return 0

    def cmd_reboot(self, args: list[str], out: Out, cancelled: Any) -> int:
        self.box.request_reboot("reboot", delay=0.2)
        return 0

    def cmd_poweroff(self, args: list[str], out: Out, cancelled: Any) -> int:
        self.box.request_poweroff()
        return 0

    def _fw_version(self, out: Out) -> int:
        info = self.box.fw_info()
        out(f"version={info['version']} build={info['build_id']} slot={info['slot']}\n")
        return 0

    def cmd_fw(self, args: list[str], out: Out, cancelled: Any) -> int:
        if args[:1] == ["slots"]:
            out(json.dumps(self.box.diag()["slots"], sort_keys=True) + "\n")
            return 0
        out("usage: fw version | fw slots\n")
        return 1

    def cmd_diag(self, args: list[str], out: Out, cancelled: Any) -> int:
        data = self.box.diag()
        if "--json" in args:
            out(json.dumps(data, sort_keys=True) + "\n")
        else:
            for key, value in data.items():
                out(f"{key}: {value}\n")
        return 0

    def cmd_fwupdate(self, args: list[str], out: Out, cancelled: Any) -> int:
        files = [a for a in args if not a.startswith("-")]
        if len(files) != 1:
            out("usage: fwupdate FILE\n")
            return 2
        return self.box.fwupdate(files[0], out)

    def cmd_keys(self, args: list[str], out: Out, cancelled: Any) -> int:
        for key in self.box.recent_keys():
            out(key + "\n")
        return 0

    def cmd_tune(self, args: list[str], out: Out, cancelled: Any) -> int:
        if len(args) != 1 or not args[0].isdigit():
            out("usage: tune CHANNEL\n")
            return 2
        ok, text = self.box.tune(int(args[0]))
        out(text + "\n")
        return 0 if ok else 1

    def cmd_standby(self, args: list[str], out: Out, cancelled: Any) -> int:
        self.box.press_key("KEY_POWER")
        out(f"standby={'on' if self.box.in_standby() else 'off'}\n")
        return 0

    def cmd_exit(self, args: list[str], out: Out, cancelled: Any) -> int:
        raise SessionExit

    cmd_logout = cmd_exit

    def cmd_id(self, args: list[str], out: Out, cancelled: Any) -> int:
        out("uid=0(root) gid=0(root) groups=0(root)\n")
        return 0

    def cmd_whoami(self, args: list[str], out: Out, cancelled: Any) -> int:
        out("root\n")
        return 0

    def cmd_pwd(self, args: list[str], out: Out, cancelled: Any) -> int:
        out(self.cwd + "\n")
        return 0

    def cmd_date(self, args: list[str], out: Out, cancelled: Any) -> int:
        out(time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()) + "\n")
        return 0

    def cmd_help(self, args: list[str], out: Out, cancelled: Any) -> int:
        names = sorted(n[4:] for n in dir(self) if n.startswith("cmd_"))
        out("Built-in commands:\n" + " ".join(names) + "\n")
        return 0


class SessionExit(Exception):
    """``exit``: leave the shell (console: back to the login prompt; SSH: close the channel)."""


def as_path(text: str) -> Path:
    """A POSIX path object for box paths."""
    return Path(text)


__all__ = ["Cancelled", "SessionExit", "Shell", "split_list"]
