"""The console's text path without real peers (tests/real_peers has them): terminal escapes split
across reads, control bytes refused, a big output kept whole past the expect buffer, and a
console server's "in use" refusal reported as such."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from driver_peers import ConsolePeer

from lab.drivers.console import ConsoleBusy, SerialConsole
from lab.drivers.console.ansi import AnsiFilter
from lab.drivers.console.port import busy_reason
from lab.drivers.console.shell import refuse_control_bytes
from lab.errors import InfraError, TestError

STREAM = "\x1b[?2004hbox# ls\r\n\x1b[?2004l\r\x1b[01;34mdir\x1b[0m  file\r\n\x1b]0;root@box: ~\x07\x1b[?2004hbox# "


def test_escape_sequences_are_removed_even_split_byte_by_byte() -> None:
    want = "box# ls\r\n\rdir  file\r\nbox# "
    assert AnsiFilter().feed(STREAM) == want
    f = AnsiFilter()
    assert "".join(f.feed(ch) for ch in STREAM) == want


def test_a_lone_escape_is_not_held_forever() -> None:
    f = AnsiFilter()
    out = f.feed("\x1b" + "x" * 300)
    assert out.endswith("x" * 200)


@pytest.mark.parametrize(("cmd", "name"), [("a\tb", "TAB"), ("a\x03", "Ctrl-C"), ("\x1b[A", "ESC"), ("x\x01", "0x01")])
def test_control_bytes_are_refused_by_name(cmd: str, name: str) -> None:
    with pytest.raises(TestError, match=re.escape(name)):
        refuse_control_bytes(cmd)
    refuse_control_bytes("printf 'a\\tb' | tr -d '\\033'")  # escapes written as text are fine


def test_busy_texts_of_ser2net() -> None:
    assert "console in use by another client" in (busy_reason(b"Port already in use\r\n") or "")
    assert "Port's device already in use" in (busy_reason(b"\xff\xfb\x03Port's device already in use\r\n") or "")
    assert busy_reason(b"U-Boot 2023.04\r\n") is None


def _shell(big: str) -> ConsolePeer:
    def on_line(line: str) -> bytes:
        m = re.match(r"echo (SB\w+); (.*); echo (SE\w+)\$\?$", line)
        if not m:
            return b"# "
        out = big if m.group(2) == "big" else ""
        return f"{m.group(1)}\r\n{out}{m.group(3)}0\r\n# ".encode()

    return ConsolePeer(on_line)


def test_a_line_end_cut_in_two_by_the_spill_stays_one(tmp_path: Path) -> None:
    from lab.drivers.console.spill import Spill

    spill = Spill(tmp_path, "t")
    spill.write("a\r")  # the buffer was cut between "\r" and "\n"
    assert spill.read_and_remove() + "\nb" == "a\r\nb"


def test_output_past_the_buffer_is_spilled_and_returned_whole(tmp_path: Path) -> None:
    big = "".join(f"line {i:07d} of the box's log\r\n" for i in range(100_000))  # 3.3 MB
    peer = _shell(big)
    con = SerialConsole(peer.url, rig_name="t", log_path=tmp_path / "c.log")
    with con:
        r = con.run("big", timeout=60)
        assert r.output == big.replace("\r\n", "\n")
        assert r.output_path is not None and r.output_path.parent == tmp_path
        assert r.output_path.read_text() == r.output
        assert con.dropped_chars == 0 and not list(tmp_path.glob("*.spill"))
        small = con.run("small")
        assert small.output == "" and small.output_path is None


@pytest.fixture
def busy_server() -> Iterator[int]:
    """A console server that turns every client away as ser2net does when the port is taken."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.sendall(b"Port already in use\r\n")
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(2)
    srv.close()


def test_a_console_in_use_is_an_infra_error_without_a_reconnect_loop(busy_server: int, tmp_path: Path) -> None:
    con = SerialConsole(f"socket://127.0.0.1:{busy_server}", rig_name="t", log_path=tmp_path / "c.log")
    con.open()
    t0 = time.monotonic()
    with pytest.raises(InfraError, match="console in use by another client") as exc:
        con.login(timeout=20)
    assert time.monotonic() - t0 < con.busy_grace + 2.5
    assert exc.value.rig == "t" and exc.value.instrument == "serial"
    con.close()
    assert ConsoleBusy.__mro__[1] is InfraError


def test_a_refusal_retried_at_open_still_lets_login_nudge_a_silent_box(tmp_path: Path) -> None:
    # ser2net still closing an earlier connection turns the first one away; the retry gets a box
    # that printed its login prompt before anyone listened. The refusal text is the server's, not
    # the box's: login() must still nudge it with a newline (it once waited out its whole timeout).
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(10)
    got: list[bytes] = []

    def serve() -> None:
        first, _ = srv.accept()
        first.sendall(b"Port's device already in use\r\n")
        first.close()
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(10)
            for reply in (b"box login: ", b"root@box:~# "):
                data = conn.recv(1024)  # silent until spoken to
                got.append(data)
                conn.sendall(reply)
            got.append(conn.recv(1024))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    con = SerialConsole(f"socket://127.0.0.1:{srv.getsockname()[1]}", rig_name="t", log_path=tmp_path / "c.log")
    try:
        con.open()
        con.login("root", timeout=10)
        assert got[:2] == [b"\n", b"root\n"] and con.received_bytes == len(b"box login: root@box:~# ")
    finally:
        con.close()
        t.join(5)
        srv.close()
