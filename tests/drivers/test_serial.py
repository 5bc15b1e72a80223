"""SerialConsole against a ser2net-like TCP peer and a real pty: expect, deaths, run, login, drops."""

from __future__ import annotations

import os
import pty
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lab.drivers.serial import ConsoleDeath, ExpectTimeout, SerialConsole, clean_output
from lab.errors import DeviceFault, InfraError
from lab.steps import STEPS, StepRecord

if TYPE_CHECKING:
    from driver_peers import ConsolePeer

PANIC = (
    b"[   42.000100] Unable to handle kernel NULL pointer dereference at virtual address 00000008\r\n"
    b"[   42.000200] Internal error: Oops: 96000005 [#1] PREEMPT SMP\r\n"
    b"[   42.000300] Call trace:\r\n"
    b"[   42.000400]  dvb_demux_feed+0x44/0x120\r\n"
    b"[   42.000500]  dmx_section_filter+0x1c/0x80\r\n"
    b"[   42.000600] Kernel panic - not syncing: Fatal exception\r\n"
)


@pytest.fixture
def con(console_peer: ConsolePeer, tmp_path: Path):
    c = SerialConsole(console_peer.url, rig_name="rig-t", log_path=tmp_path / "console.log")
    c.open()
    console_peer.wait_connected()
    yield c
    c.close()


def test_expect_returns_earliest_match_with_text_before(con: SerialConsole, console_peer: ConsolePeer) -> None:
    console_peer.send(b"U-Boot 2024.01\r\nstb login: ")
    m = con.expect([r"login: $", r"U-Boot \d+"], timeout=5)
    assert m.index == 1  # earlier in the stream wins over list order
    assert m.text == "U-Boot 2024"
    m = con.expect([rb"login: $"], timeout=5)  # bytes patterns work on the same stream
    assert m.index == 0 and m.before == ".01\r\nstb "


def test_expect_wakes_on_bytes_arriving_later(con: SerialConsole, console_peer: ConsolePeer) -> None:
    threading.Timer(0.2, console_peer.send, args=(b"Starting kernel ...\r\n",)).start()
    m = con.expect(re.compile(r"Starting (\w+)"), timeout=5)
    assert m.group(1) == "kernel"


def test_timeout_is_a_device_fault_with_tail_and_log_path(con: SerialConsole, console_peer: ConsolePeer) -> None:
    console_peer.send(b"line one\r\nline two\r\nstuck here")
    with pytest.raises(ExpectTimeout) as err:
        con.expect("login: ", timeout=0.4)
    exc = err.value
    assert isinstance(exc, DeviceFault) and not isinstance(exc, InfraError)
    assert "line two" in exc.tail and "stuck here" in exc.tail
    assert str(con.log_path) in str(exc)
    assert exc.rig == "rig-t" and exc.evidence["console_log"] == str(con.log_path)


def test_death_string_raises_from_waiting_expect_with_call_trace(con: SerialConsole, console_peer: ConsolePeer) -> None:
    def crash() -> None:
        console_peer.send(b"[   41.9] eth0: link up\r\n")
        console_peer.send(PANIC[:100])  # the Oops line arrives split across chunks
        time.sleep(0.05)
        console_peer.send(PANIC[100:])

    threading.Timer(0.1, crash).start()
    t0 = time.monotonic()
    with pytest.raises(ConsoleDeath) as err:
        con.expect("login: ", timeout=10)
    assert time.monotonic() - t0 < 5  # raised by the death, not by the 10 s timeout
    exc = err.value
    assert exc.symptom == "kernel-oops"  # the first death line wins
    assert "dvb_demux_feed+0x44/0x120" in exc.excerpt  # the call trace after the line
    assert "eth0: link up" in exc.excerpt  # and context before it
    assert [d.symptom for d in con.deaths] == ["kernel-oops", "kernel-panic"]
    # each event is raised once: the next call does not raise the panic line again
    console_peer.send(b"U-Boot 2024.01\r\n")
    con.expect("U-Boot", timeout=5)


def test_death_with_nobody_waiting_is_raised_by_the_next_call(con: SerialConsole, console_peer: ConsolePeer) -> None:
    console_peer.send(b"stb login: root\r\n[  9.1] app[231]: segfault at 0 ip 0000 sp 0000\r\n")
    time.sleep(0.3)
    # text printed before the death line still matches first
    assert con.expect("login: ", timeout=2).text == "login: "
    with pytest.raises(ConsoleDeath) as err:
        con.expect("never", timeout=2)
    assert err.value.symptom == "segfault"
    with pytest.raises(ExpectTimeout):  # remembered once, not forever
        con.expect("never", timeout=0.2)


def test_expecting_death_lets_a_test_provoke_a_crash(con: SerialConsole, console_peer: ConsolePeer) -> None:
    with con.expecting_death() as seen:
        console_peer.send(PANIC)
        con.expect("Kernel panic", timeout=5)
    assert [d.symptom for d in seen] == ["kernel-oops", "kernel-panic"]
    con.check_death()  # nothing pending afterwards


def test_custom_death_strings(console_peer: ConsolePeer, tmp_path: Path) -> None:
    with SerialConsole(console_peer.url, death_strings={"hdmi-crash": r"hdmi: fatal"}) as c:
        console_peer.send(b"Kernel panic - not syncing: x\r\nhdmi: fatal error\r\n")
        with pytest.raises(ConsoleDeath) as err:
            c.expect("nothing", timeout=5)
        assert err.value.symptom == "hdmi-crash"
        assert [d.symptom for d in c.deaths] == ["hdmi-crash"]


def test_a_death_string_that_is_no_regex_is_named() -> None:
    with pytest.raises(ValueError, match=r"death string 'Oops \(\[' .*not a regular expression"):
        SerialConsole("socket://127.0.0.1:1", death_strings=["Oops (["])


def test_binary_garbage_survives_and_the_log_keeps_raw_bytes(con: SerialConsole, console_peer: ConsolePeer) -> None:
    garbage = bytes(range(256)) * 4 + b"\xff\xfe\xc3(\xe2\x82"  # invalid UTF-8, truncated sequences
    console_peer.send(b"before ")
    console_peer.send(garbage)
    console_peer.send(b"\r\nstb login: ")
    m = con.expect(r"login: $", timeout=5)
    assert "\ufffd" in m.before  # undecodable bytes shown as replacement characters
    con.close()
    raw = Path(con.log_path).read_bytes()
    assert b"before " + garbage + b"\r\nstb login: " in raw


def test_mark_since_and_tail(con: SerialConsole, console_peer: ConsolePeer) -> None:
    console_peer.send(b"old line\r\n")
    con.expect("old line", timeout=5)
    mark = con.mark()
    console_peer.send(b"new line 1\r\nnew line 2\r\n")
    con.expect("new line 2", timeout=5)
    assert con.since(mark) == "new line 1\r\nnew line 2\r\n"
    assert con.tail(2) == "new line 1\nnew line 2"


def test_run_frames_output_and_exit_code(console_peer: ConsolePeer, mini_shell: type) -> None:
    shell = mini_shell(files={"/proc/version": "Linux version 5.15.0\nsecond line\n"})
    shell.kernel_noise = b"[   12.345678] usb 1-1: new high-speed USB device\r\n"
    console_peer.on_line = shell
    with SerialConsole(console_peer.url, rig_name="rig-t") as c:
        r = c.run("cat /proc/version")
        assert r.exit_code == 0 and bool(r)
        assert r.output == "Linux version 5.15.0\nsecond line\n"  # kernel line cut out, echo not in it
        r = c.run("false")
        assert r.exit_code == 1 and not r
        r = c.run("nosuchcmd --x")
        assert r.exit_code == 127 and "not found" in r.output
        r = c.run("printf abc")  # no trailing newline: the end marker follows on the same line
        assert r.output == "abc"


def test_run_timeout_interrupts_the_command(console_peer: ConsolePeer) -> None:
    console_peer.on_line = lambda line: b""  # a shell that never finishes anything
    with SerialConsole(console_peer.url, rig_name="rig-t") as c:
        with pytest.raises(ExpectTimeout) as err:
            c.run("sleep 100", timeout=0.5)
        assert "`sleep 100` did not finish" in str(err.value)
        console_peer.wait_input(rb"\x03")  # Ctrl-C sent to get the prompt back


def test_login_with_password(console_peer: ConsolePeer) -> None:
    prompt = "root@stb:~# "

    def box(line: str) -> bytes:
        if line == "":
            return b"\r\nstb login: "
        if line == "root":
            return b"Password: "
        if line == "s3cret":
            return prompt.encode()
        return b"\r\nLogin incorrect\r\nstb login: "

    console_peer.on_line = box
    console_peer.echo = False
    records: list[StepRecord] = []
    undo = STEPS.subscribe(records.append)
    try:
        with SerialConsole(console_peer.url, rig_name="rig-t") as c:
            console_peer.send(b"\r\nstb login: ")
            c.login("root", password="s3cret", timeout=10)
    finally:
        undo()
    assert b"s3cret\n" in console_peer.received
    login = [r for r in records if r.action == "login"]
    assert login and login[0].rig == "rig-t" and login[0].instrument == "serial" and login[0].outcome == "ok"
    assert "s3cret" not in login[0].args and "password=***" in login[0].args


def test_login_refused_is_an_infra_error(console_peer: ConsolePeer) -> None:
    console_peer.on_line = lambda line: b"Password: " if line == "root" else b"\r\nLogin incorrect\r\nstb login: "
    with SerialConsole(console_peer.url, rig_name="rig-t") as c:
        console_peer.send(b"stb login: ")
        with pytest.raises(InfraError) as err:
            c.login("root", password="wrong", timeout=10)
        assert err.value.instrument == "serial" and "refused" in str(err.value)


def test_login_password_is_keyword_only(con: SerialConsole) -> None:
    # the step log masks arguments by name: a password that worked by position was logged as is
    with pytest.raises(TypeError):
        con.login("root", "pos-s3cret", 1)  # type: ignore[misc]
    assert b"pos-s3cret" not in con.log.since_bytes(0)


def test_a_prompt_already_there_at_the_deadline_is_not_lost(con: SerialConsole, console_peer: ConsolePeer) -> None:
    # the last look at the deadline used to consume the match and then time out anyway
    def arrive(data: bytes) -> None:
        console_peer.send(data)
        end = time.monotonic() + 5
        while not con._text.endswith(data.decode()) and time.monotonic() < end:
            time.sleep(0.01)

    arrive(b"\r\nroot@stb:~# ")
    con.login(timeout=0)  # already at the shell prompt: no wait needed
    arrive(b"\r\n=> ")
    con.interrupt_bootloader(timeout=0)  # already at the bootloader prompt


def test_login_timeout_names_the_time_it_waited(con: SerialConsole) -> None:
    with pytest.raises(ExpectTimeout) as err:
        con.login(timeout=0.6)
    assert err.value.timeout == 0.6 and "within 0.6 s" in str(err.value)  # not the 0.0 s of its last look
    with pytest.raises(ExpectTimeout) as err:
        con.interrupt_bootloader(timeout=0.6)
    assert err.value.timeout == 0.6 and "within 0.6 s" in str(err.value)


def test_login_waits_for_a_boot_in_progress(console_peer: ConsolePeer, mini_shell: type) -> None:
    console_peer.on_line = mini_shell()
    with SerialConsole(console_peer.url) as c:

        def boot() -> None:
            for i in range(5):
                console_peer.send(f"[    {i}.000000] booting step {i}\r\n".encode())
                time.sleep(0.05)
            console_peer.send(b"\r\nstb login: ")

        threading.Thread(target=boot).start()
        c.login(timeout=10)
        assert console_peer.wait_input(rb"root\n")


def test_interrupt_bootloader_and_bootloader_run(console_peer: ConsolePeer) -> None:
    stopped = threading.Event()

    def uboot(line: str) -> bytes:
        stopped.set()
        if line == "printenv bootcmd":
            return b"bootcmd=run distro_bootcmd\r\n=> "
        if line and line.split()[0] not in ("printenv", "version"):
            return f"Unknown command '{line.split()[0]}' - try 'help'\r\n=> ".encode()
        return b"=> "

    console_peer.on_line = uboot

    def countdown() -> None:
        console_peer.send(b"U-Boot 2024.01 (stblab)\r\nHit any key to stop autoboot:  3")
        for n in (2, 1, 0):
            if stopped.wait(0.3):
                return
            console_peer.send(f"\b\b\b {n}".encode())
        console_peer.send(b"\r\nStarting kernel ...\r\n")

    with SerialConsole(console_peer.url, rig_name="rig-t") as c:
        threading.Thread(target=countdown).start()
        c.interrupt_bootloader(timeout=5)
        r = c.bootloader_run("printenv bootcmd")
        assert r.output == "bootcmd=run distro_bootcmd\n" and r.exit_code == 0
        r = c.bootloader_run("frobnicate")
        assert r.exit_code == 127


def test_bootloader_missed_is_an_infra_error(console_peer: ConsolePeer) -> None:
    # the countdown runs but our keys never reach the box (broken TX line): lab problem
    with SerialConsole(console_peer.url, rig_name="rig-t") as c:

        def boot() -> None:
            console_peer.send(b"Hit any key to stop autoboot:  1")
            time.sleep(0.3)
            console_peer.send(b"\r\nStarting kernel ...\r\n")

        threading.Thread(target=boot).start()
        with pytest.raises(InfraError, match="not interrupted"):
            c.interrupt_bootloader(timeout=5)


def test_char_delay_paces_writes(console_peer: ConsolePeer) -> None:
    with SerialConsole(console_peer.url, char_delay=0.02) as c:
        console_peer.wait_connected()
        c.write("abcdef")
        console_peer.wait_input(b"abcdef")
    gaps = [b - a for a, b in zip(console_peer.arrivals, console_peer.arrivals[1:], strict=False)]
    assert len(console_peer.arrivals) == 6 and min(gaps) >= 0.015


def test_reconnect_after_drop_keeps_one_log(console_peer: ConsolePeer, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    with SerialConsole(console_peer.url, rig_name="rig-t", log_path=log) as c:
        console_peer.send(b"first session\r\n")
        c.expect("first session", timeout=5)
        console_peer.drop()
        console_peer.wait_connected(2)
        console_peer.send(b"second session\r\n")
        c.expect("second session", timeout=5)
        c.sendline("hello")
        console_peer.wait_input(b"hello\n")
    text = log.read_text()
    assert text.index("first session") < text.index("connection lost") < text.index("reconnected")
    assert text.index("reconnected") < text.index("second session")


def test_instrument_gone_during_expect_is_infra_error_within_timeout(console_peer: ConsolePeer) -> None:
    with SerialConsole(console_peer.url, rig_name="rig-t", reconnect_delays=(0.1, 0.2, 0.3)) as c:
        console_peer.wait_connected()
        threading.Timer(0.3, console_peer.stop).start()
        t0 = time.monotonic()
        with pytest.raises(InfraError) as err:
            c.expect("login: ", timeout=8)
        assert time.monotonic() - t0 < 8
        assert err.value.rig == "rig-t" and err.value.instrument == "serial"
        with pytest.raises(InfraError):
            c.sendline("anything")


def test_drop_during_short_expect_is_not_blamed_on_the_box(console_peer: ConsolePeer) -> None:
    with SerialConsole(console_peer.url, rig_name="rig-t", reconnect_delays=(2.0,)) as c:
        console_peer.wait_connected()
        threading.Timer(0.1, console_peer.stop).start()
        with pytest.raises(InfraError) as err:
            c.expect("login: ", timeout=0.6)
        assert not isinstance(err.value, DeviceFault)


def test_open_refused_is_infra_error() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(InfraError) as err:
        SerialConsole(f"socket://127.0.0.1:{port}", rig_name="rig-x").open(timeout=0.3)
    assert err.value.instrument == "serial" and err.value.rig == "rig-x"


def test_pty_device_path(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    path = os.ttyname(slave)
    try:
        with SerialConsole(path, rig_name="rig-pty", log_path=tmp_path / "pty.log") as c:
            os.write(master, b"U-Boot on a tty\r\n=> ")
            c.expect(r"=> $", timeout=5)
            c.sendline("version")
            deadline = time.monotonic() + 5
            got = b""
            while b"version" not in got and time.monotonic() < deadline:
                got += os.read(master, 100)
            assert b"version" in got
    finally:
        os.close(master)
        os.close(slave)
    assert b"U-Boot on a tty" in (tmp_path / "pty.log").read_bytes()


def test_clean_output_removes_kernel_lines_wherever_they_start() -> None:
    text = "abc[   1.500000] eth0: up\r\ndef\r\n[ 2.0] x\r\nghi\r\n"
    assert clean_output(text) == "abcdef\nghi\n"


def test_bad_pattern_type_is_rejected(con: SerialConsole) -> None:
    with pytest.raises(TypeError):
        con.expect(42, timeout=0.1)  # type: ignore[arg-type]


def test_watchdog_reset_after_a_panic_is_the_same_incident(con: SerialConsole, console_peer: ConsolePeer) -> None:
    console_peer.send(PANIC)
    with pytest.raises(ConsoleDeath) as err:
        con.expect("login: ", timeout=5)
    assert err.value.symptom == "kernel-oops"
    # the watchdog resets the box a second later: part of the crash already reported
    console_peer.send(b"watchdog: watchdog0: watchdog did not stop! hardware reset\r\nU-Boot 2024.01\r\n")
    con.expect("U-Boot", timeout=5)
    assert [d.symptom for d in con.deaths][-1] == "watchdog-reset"


def test_clear_deaths_forgets_unreported_ones(con: SerialConsole, console_peer: ConsolePeer) -> None:
    console_peer.send(b"Out of memory: Killed process 412 (stb_app)\r\n")
    time.sleep(0.3)
    assert [d.symptom for d in con.clear_deaths()] == ["oom-kill"]
    console_peer.send(b"next test\r\n")
    con.expect("next test", timeout=5)


def test_unwritable_log_is_an_infra_error_not_a_timeout(console_peer: ConsolePeer, tmp_path: Path) -> None:
    con = SerialConsole(console_peer.url, rig_name="rig-t", log_path=tmp_path / "c.log")
    con.open()
    try:
        con.log._file.close()  # the log's disk went away under the reader
        console_peer.send(b"some output\r\n")
        with pytest.raises(InfraError, match="reader failed"):
            con.expect("never", timeout=5)
    finally:
        con.log._file = None
        con.close()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_reopening_a_dead_console_releases_the_old_port(console_peer: ConsolePeer, tmp_path: Path) -> None:
    con = SerialConsole(console_peer.url, rig_name="rig-t", log_path=tmp_path / "c.log")
    con.open()
    con.log._file.close()  # the log's disk went away: the console is dead, its port still open
    console_peer.send(b"some output\r\n")
    with pytest.raises(InfraError, match="reader failed"):
        con.expect("never", timeout=5)
    con.log._file = None
    dead = _fds()
    con.open()
    console_peer.wait_connected(2)  # send on the new connection, not the old one
    console_peer.send(b"back\r\n")
    con.expect("back", timeout=5)
    con.close()
    # the old port and wake pipe (3 fds) are released; the peer holds one more connection
    end = time.monotonic() + 3
    while _fds() > dead - 2 and time.monotonic() < end:  # a socket:// port closes in the background
        time.sleep(0.05)
    assert _fds() <= dead - 2


def test_close_while_reconnecting_leaves_no_port_open(console_peer: ConsolePeer) -> None:
    con = SerialConsole(console_peer.url, rig_name="rig-t")
    make_port = con._make_port
    connecting = threading.Event()

    def slow_make_port():  # a ser2net that takes long to accept again
        connecting.set()
        time.sleep(3.5)
        return make_port()

    con.open()
    console_peer.wait_connected()
    con._make_port = slow_make_port  # type: ignore[method-assign]
    console_peer.drop()
    assert connecting.wait(5)  # the reader is reconnecting
    con.close()  # gives up joining the reader after 3 s
    console_peer.wait_connected(2, timeout=5)  # the late connection arrives...
    time.sleep(0.5)
    assert con._state == "closed" and con._port is None  # ...and is not taken over
    assert not con._reader.is_alive()


def test_login_never_stops_the_autoboot_countdown(console_peer: ConsolePeer, mini_shell: type) -> None:
    console_peer.on_line = mini_shell()
    with SerialConsole(console_peer.url) as c:

        def boot() -> None:
            console_peer.send(b"U-Boot 2024.01\r\nHit any key to stop autoboot:  2")
            time.sleep(1.3)  # quieter than the nudge threshold, still counting down
            console_peer.send(b"\b\b\b 1")
            time.sleep(1.3)
            before_kernel = bytes(console_peer.received)
            console_peer.send(b"\b\b\b 0\r\nStarting kernel ...\r\n[    0.000000] Booting Linux\r\n\r\nstb login: ")
            typed.append(before_kernel)

        typed: list[bytes] = []
        threading.Thread(target=boot).start()
        c.login(timeout=10)
    assert typed == [b""]  # nothing was typed while the countdown ran


def test_login_after_a_power_on_does_not_type_into_a_bootloader_slow_to_start(console_peer: ConsolePeer) -> None:
    # A busy host: the box was just powered on (new_incident) and U-Boot prints its banner only
    # 2.5 s later. A newline typed into that silence would reach the countdown and stop the boot.
    with SerialConsole(console_peer.url) as c:
        c.new_incident()
        typed: list[bytes] = []

        def boot() -> None:
            time.sleep(2.5)  # the box's slow start (the peer's behaviour, not synchronisation)
            typed.append(bytes(console_peer.received))
            console_peer.send(b"U-Boot 2024.01\r\nHit any key to stop autoboot:  1")
            time.sleep(1.0)  # the countdown's second: a window in which nothing may be typed
            typed.append(bytes(console_peer.received))
            console_peer.send(b"\b\b\b 0\r\nStarting kernel ...\r\n\r\nstb login: ")

        console_peer.on_line = lambda line: b"root@stb:~# " if line == "root" else b""
        threading.Thread(target=boot).start()
        c.login("root", timeout=15)
    assert typed == [b"", b""]  # nothing before the banner, nothing during the countdown


def test_login_boots_a_box_left_idle_at_the_bootloader_prompt(console_peer: ConsolePeer, tmp_path: Path) -> None:
    # Line noise stopped the countdown: the box waits at "=> " and will never show a login prompt.
    def box(line: str) -> bytes:
        if line == "boot":
            return b"## Booting kernel from slot A\r\nStarting kernel ...\r\n\r\nstb login: "
        return b"root@stb:~# " if line == "root" else b"=> "

    console_peer.on_line = box
    log = tmp_path / "c.log"
    with SerialConsole(console_peer.url, log_path=log) as c:
        console_peer.send(b"U-Boot 2024.01\r\nHit any key to stop autoboot:  2\b\b\b 0 \r\n=> ")
        c.login("root", timeout=10)  # returns at the shell prompt
    assert bytes(console_peer.received).count(b"boot\n") == 1
    assert "login: the box sits at the bootloader prompt; typing 'boot'" in log.read_text()


def test_login_leaves_a_box_whose_boot_failed_at_the_bootloader_prompt(console_peer: ConsolePeer) -> None:
    # U-Boot ran its boot command, the image was bad, and it dropped to "=> ": the box's own state
    # (a bricked unit), which login must not paper over by typing "boot" until it happens to work.
    console_peer.on_line = lambda line: b"=> "
    with SerialConsole(console_peer.url) as c:
        console_peer.send(
            b"U-Boot 2024.01\r\nHit any key to stop autoboot:  0 \r\nLoading kernel from mmc 0:1 ...\r\n"
            b"Wrong Image Format for bootm command\r\nERROR: can't get kernel image!\r\n=> "
        )
        with pytest.raises(ExpectTimeout) as err:
            c.login("root", timeout=3)
    assert b"boot" not in bytes(console_peer.received)
    assert "Wrong Image Format" in err.value.tail


def test_match_split_across_chunks_after_a_flood(con: SerialConsole, console_peer: ConsolePeer) -> None:
    flood = b"".join(b"[%12.6f] noisy driver message %d\r\n" % (i / 100, i) for i in range(20000))  # ~900 KB
    console_peer.send(flood)
    console_peer.send(b"stb lo")
    time.sleep(0.1)
    console_peer.send(b"gin: ")
    m = con.expect(r"stb login: $", timeout=20)
    assert m.before.endswith("noisy driver message 19999\r\n")
    assert con.received_bytes == len(flood) + len(b"stb login: ")


def test_from_rig_takes_url_prompt_and_death_strings(console_peer: ConsolePeer, tmp_path: Path) -> None:
    from lab.rig import Rig, SerialConfig

    cfg = SerialConfig(url=console_peer.url, prompt=r"stb> $", death_strings=[r"BUG: scheduling while atomic"])
    rig = Rig(name="stb-r", model="M", serial=cfg)
    with SerialConsole.from_rig(rig, run_dir=tmp_path) as c:
        assert c.log_path == tmp_path / "stb-r.console.log" and c.prompt == r"stb> $"
        console_peer.send(b"Kernel panic - not syncing: not in this rig's list\r\nBUG: scheduling while atomic: x\r\n")
        with pytest.raises(ConsoleDeath) as err:
            c.expect(c.prompt, timeout=5)
        assert err.value.symptom == "bug-scheduling-while-atomic" and err.value.rig == "stb-r"


def test_reopen_appends_to_the_same_log_and_offsets_continue(console_peer: ConsolePeer, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    c = SerialConsole(console_peer.url, log_path=log)
    with c:
        console_peer.send(b"first boot\r\n")
        c.expect("first boot", timeout=5)
    size = log.stat().st_size
    with c:
        mark = c.mark()
        assert mark > size  # offsets continue after what the file already held (and the "opened" note)
        console_peer.wait_connected(2)
        console_peer.send(b"second boot\r\n")
        c.expect("second boot", timeout=5)
        assert c.since(mark).endswith("second boot\r\n") and "first boot" not in c.since(mark)
        assert "first boot" in c.since(0)  # read back from the file
    text = log.read_text()
    assert text.count("console opened") == 2 and text.index("first boot") < text.index("second boot")


def test_console_log_reads_old_evidence_back_from_the_file(tmp_path: Path) -> None:
    from lab.drivers.console_log import ConsoleLog

    log = ConsoleLog(tmp_path / "c.log", keep_bytes=1024)
    log.open()
    start = log.mark()
    log.append(b"panic evidence line\r\n")
    for i in range(200):
        log.append(b"filler %d\r\n" % i)
    assert log.since(start, start + 21) == "panic evidence line\r\n"  # beyond the memory window
    assert log.tail(1) == "filler 199"
    log.close()
    memory_only = ConsoleLog(None)
    memory_only.append(b"\xff\xfeok\n")
    assert memory_only.since(0) == "\ufffd\ufffdok\n" and memory_only.since_bytes(0) == b"\xff\xfeok\n"


def test_run_at_a_login_prompt_says_so(console_peer: ConsolePeer) -> None:
    console_peer.on_line = lambda line: b"Password: " if "echo" in line else b"\r\nstb login: "
    with SerialConsole(console_peer.url, rig_name="rig-t") as c:
        console_peer.send(b"\r\nstb login: ")
        with pytest.raises(ExpectTimeout, match="login prompt"):
            c.run("fw version", timeout=0.5)


def test_using_a_closed_console_is_a_test_error(console_peer: ConsolePeer) -> None:
    from lab.errors import TestError

    c = SerialConsole(console_peer.url, rig_name="rig-t")
    with pytest.raises(TestError, match="not open"):
        c.expect("x", timeout=0.1)
    with pytest.raises(TestError, match="not open"):
        c.sendline("x")


def test_interrupt_bootloader_when_already_at_the_prompt(console_peer: ConsolePeer) -> None:
    console_peer.on_line = lambda line: b"=> "
    with SerialConsole(console_peer.url) as c:
        console_peer.send(b"U-Boot 2024.01\r\n=> ")
        c.expect("=> ", timeout=5)  # that prompt is consumed; the box now prints nothing
        c.interrupt_bootloader(timeout=5)
        assert console_peer.wait_input(rb"^\r")  # it asked for a fresh prompt
        assert c.bootloader_run("version").exit_code == 0


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_death_watch_sees_the_same_crash_however_the_bytes_are_chunked(chunk: int) -> None:
    from lab.drivers.console_death import DeathWatch

    text = ("[ 1.0] booting\r\n" * 20 + PANIC.decode() + "[ 43.0] CPU0: stopping\r\n").replace("\r\n", "\n")
    watch = DeathWatch()
    for i in range(0, len(text), chunk):
        watch.feed(text[i : i + chunk], i, 0)
    assert [e.symptom for e in watch.events] == ["kernel-oops", "kernel-panic"]
    oops = watch.events[0]
    assert oops.before[-1].endswith("Unable to handle kernel NULL pointer dereference at virtual address 00000008")
    assert oops.after[0].endswith("Call trace:") and oops.after[-1].endswith("CPU0: stopping")
    assert text[oops.text_pos :].startswith("[   42.000200] Internal error: Oops")


def test_run_survives_kernel_messages_next_to_its_markers(console_peer: ConsolePeer) -> None:
    def shell(line: str) -> bytes:
        tags = re.findall(r"echo (S[BE]\w+)", line)
        if len(tags) != 2:
            return b"# "
        begin, end = tags
        return (
            f"{begin}[    3.100000] eth0: link up\r\n\r\nhello\r\n{end}[    3.200000] usb 1-1: new device\r\n0\r\n# "
        ).encode()

    console_peer.on_line = shell
    with SerialConsole(console_peer.url) as c:
        r = c.run("echo hello", timeout=5)
    assert (r.output, r.exit_code) == ("hello\n", 0)


def test_try_expect_returns_none_on_silence_but_still_raises_deaths(
    con: SerialConsole, console_peer: ConsolePeer
) -> None:
    assert con.try_expect("login: ", timeout=0.2) is None
    console_peer.send(b"stb login: ")
    m = con.try_expect("login: ", timeout=5)
    assert m is not None and m.text == "login: "
    console_peer.send(b"Kernel panic - not syncing: VFS\r\n")
    with pytest.raises(ConsoleDeath):
        con.try_expect("login: ", timeout=5)


def test_a_local_device_is_not_shared_by_two_sessions(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    path = os.ttyname(slave)
    try:
        with SerialConsole(path, rig_name="rig-pty"):
            with pytest.raises(InfraError, match="cannot open console") as err:
                SerialConsole(path, rig_name="rig-pty").open(timeout=0.3)
            assert err.value.instrument == "serial"
        with SerialConsole(path, rig_name="rig-pty"):  # free again once closed
            pass
    finally:
        os.close(master)
        os.close(slave)


def test_login_finds_the_prompt_under_kernel_chatter(console_peer: ConsolePeer, mini_shell: type) -> None:
    console_peer.on_line = mini_shell()
    stop = threading.Event()

    def chatter() -> None:
        i = 0
        while not stop.wait(0.1):  # never quiet for a second: the prompt is always buried
            console_peer.send(f"[   {100 + i}.000000] stb_hdmi: HDCP 1.4 authenticated\r\n".encode())
            i += 1

    with SerialConsole(console_peer.url) as c:
        console_peer.send(b"root@stb:~# ")
        c.expect("# $", timeout=5)  # that prompt is gone; only chatter follows
        threading.Thread(target=chatter, daemon=True).start()
        try:
            c.login(timeout=15)
            assert c.run("echo ok").output == "ok\n"
        finally:
            stop.set()


@pytest.mark.parametrize(
    ("text", "phase"),
    [
        ("U-Boot 2023.04-stb1\r\nDRAM:  1 GiB\r\n", "bootloader"),
        ("\b\b\b 2", None),
        ("Hit any key to stop autoboot:  3", "bootloader"),
        ("Starting kernel ...\r\n\r\n[    0.000000] Booting Linux on physical CPU 0x0\r\n", "linux"),
        ("[   12.000000] eth0: link up\r\nU-Boot 2023.04 (after a watchdog reset)\r\n", "bootloader"),
        ("\r\nstb-a login: ", "linux"),
    ],
)
def test_boot_phase_from_the_last_marker(text: str, phase: str | None) -> None:
    from lab.drivers.serial import _boot_phase

    assert _boot_phase(text) == phase


def test_a_console_that_stops_reading_is_an_infra_error_not_a_hang() -> None:
    # a ser2net that accepts but no longer reads (or a UART held by flow control): bounded write
    import socket

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    url = f"socket://127.0.0.1:{srv.getsockname()[1]}"
    try:
        with SerialConsole(url, rig_name="rig-t", write_timeout=0.5) as c:
            conn, _ = srv.accept()  # never reads
            t0 = time.monotonic()
            with pytest.raises(InfraError) as err:
                c.write(b"x" * (32 << 20))
            assert time.monotonic() - t0 < 5 and err.value.instrument == "serial"
            conn.close()
    finally:
        srv.close()
