"""The console driver against real ser2net 4 exporting a pty on which socat runs a real bash.

Raw TCP and telnet/RFC 2217, login through a login prompt, exit codes, a 5 MB output, special
characters, control bytes refused, timeouts and Ctrl-C recovery, kernel lines interleaved with
output and prompt, terminal escape sequences, and a second client turned away by ser2net.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from peer_programs import ConsolePeers, need, start_console

from lab.drivers.console import ConsoleBusy, ExpectTimeout, SerialConsole
from lab.errors import InfraError, TestError


def _console(url: str, tmp_path: Path, name: str = "real", *, ask_prompt: bool = False) -> SerialConsole:
    """A console logged in to the peer's bash. ``ask_prompt``: press Enter first, so bash prints its
    prompt now instead of ``login()`` waiting 1 s of silence before it nudges (that wait and nudge
    are what test_login_through_a_login_prompt and the busy test go through)."""
    con = SerialConsole(url, rig_name=name, log_path=tmp_path / f"{name}.console.log")
    con.open()
    if ask_prompt:
        con.sendline("")
    con.login(timeout=10)
    return con


@pytest.fixture(params=["raw", "rfc2217"])
def con(request: pytest.FixtureRequest, console_peers: ConsolePeers, tmp_path: Path) -> SerialConsole:
    url = console_peers.raw_url if request.param == "raw" else console_peers.rfc2217_url
    c = _console(url, tmp_path, ask_prompt=True)
    request.addfinalizer(c.close)
    return c


def test_run_returns_output_and_exit_codes(con: SerialConsole) -> None:
    r = con.run("echo hello; uname -s")
    assert (r.output, r.exit_code) == ("hello\nLinux\n", 0)
    assert con.run("false").exit_code == 1
    assert con.run("sh -c 'exit 42'").exit_code == 42
    assert con.run("ls /nonexistent-stblab").exit_code == 2
    assert con.run("true").output == ""


def test_special_characters_reach_the_shell_as_typed(con: SerialConsole) -> None:
    text = 'a|b&c;d$e`f"g\\h *?[x] ~ ü€'
    r = con.run("printf '%s\\n' 'a|b&c;d$e`f\"g\\h *?[x] ~ ü€'")
    assert r.output == text + "\n"
    assert con.run("printf 'a\\tb\\n'").output == "a\tb\n"  # the escape, not the key


@pytest.mark.parametrize("key", ["\t", "\x03", "\x15", "\x1b", "\x04", "\x7f"])
def test_control_bytes_are_refused_not_typed(con: SerialConsole, key: str) -> None:
    mark = con.mark()
    with pytest.raises(TestError, match="would take it as a key"):
        con.run(f"printf '%s\\n' 'a{key}b'")
    assert "a" not in con.since(mark).replace("console", "")  # nothing was sent
    assert con.run("echo still-fine").output == "still-fine\n"


def test_five_megabytes_of_output_arrive_whole(con: SerialConsole) -> None:
    # raw TCP: 5.3 MB, five times the expect buffer. pyserial's RFC 2217 client queues each byte
    # on its own (~150 kB/s here), so over RFC 2217 1.6 MB (still past the buffer) keeps it fast.
    n = 700_000 if con.url.startswith("socket://") else 230_000
    r = con.run(f"seq 1 {n}", timeout=120)
    expected = "".join(f"{i}\n" for i in range(1, n + 1))
    assert (
        len(r.output) == len(expected)
        and hashlib.sha256(r.output.encode()).hexdigest() == hashlib.sha256(expected.encode()).hexdigest()
    )
    assert r.output_path is not None and r.output_path.read_text() == expected
    assert con.run("echo after").output == "after\n"


def test_timeout_interrupts_and_the_shell_recovers(con: SerialConsole) -> None:
    t0 = time.monotonic()
    with pytest.raises(ExpectTimeout, match="did not finish within 1.0 s"):
        con.run("sleep 30", timeout=1.0)
    assert time.monotonic() - t0 < 5
    r = con.run("echo back", timeout=10)
    assert r.output == "back\n"


def test_kernel_lines_interleaved_with_output_and_prompt_are_cut_out(con: SerialConsole) -> None:
    # A background writer prints kernel-style lines on the same tty while seq writes its output
    # and while the prompt comes back: run() output is exactly seq's.
    kmsg = "for i in $(seq 1 200); do printf '[ %d.%06d] usb 1-1: kmsg line %d\\n' $i $i $i; done"
    r = con.run(f"( ({kmsg}) & seq 1 20000; wait )", timeout=60)  # a subshell: no job-control notices
    assert r.output == "".join(f"{i}\n" for i in range(1, 20001))
    assert "[" in con.since(0)  # the kernel lines are in the console log
    dm = con.run(f"( ({kmsg}) & wait )", timeout=30, strip_kernel=False)
    assert dm.output.count("kmsg line") == 200


def test_terminal_escapes_stay_out_of_output(con: SerialConsole, tmp_path: Path) -> None:
    r = con.run("printf '\\033[01;32mgreen\\033[0m \\033]0;title\\007plain\\n'")
    assert r.output == "green plain\n"
    raw = Path(tmp_path / "real.console.log").read_bytes()
    assert b"\x1b[?2004h" in raw  # bash's bracketed paste around prompts: in the log, not in expect


def test_a_second_client_is_turned_away_as_busy(console_peers: ConsolePeers, tmp_path: Path) -> None:
    first = _console(console_peers.raw_url, tmp_path, "first")
    try:
        for url in (console_peers.raw_url, console_peers.rfc2217_url):
            second = SerialConsole(url, rig_name="second", log_path=tmp_path / "second.log")
            t0 = time.monotonic()
            with pytest.raises(InfraError, match="console in use by another client") as exc:
                second.open()
                second.login(timeout=10)
            second.close()
            assert time.monotonic() - t0 < 5, "no reconnect loop, no negotiation timeout"
            assert "already in use" in str(exc.value)
            assert isinstance(exc.value, ConsoleBusy) or "console connection dead" in str(exc.value)
        assert first.run("echo first-still-works").output == "first-still-works\n"
    finally:
        first.close()


def test_login_through_a_login_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need("ser2net", "socat", "bash")
    peers = start_console(tmp_path / "login", login=("lab", "s3cret-pw"))
    try:
        con = SerialConsole(peers.raw_url, rig_name="real", log_path=tmp_path / "l.log", login_user="lab")
        con.open()
        with pytest.raises(InfraError, match="asks a password"):
            con.login(timeout=10)
        con.close()
        con = SerialConsole(
            peers.raw_url, rig_name="real", log_path=tmp_path / "l2.log", login_user="lab", login_password="wrong"
        )
        con.open()
        with pytest.raises(InfraError, match="refused|failed"):
            con.login(timeout=15)
        con.close()
        con = SerialConsole(
            peers.raw_url, rig_name="real", log_path=tmp_path / "l3.log", login_user="lab", login_password="s3cret-pw"
        )
        con.open()
        con.login(timeout=15)
        assert con.run("echo in").output == "in\n"
        con.close()
        assert "s3cret-pw" not in (tmp_path / "l3.log").read_text()  # the tty did not echo it
    finally:
        peers.stop()


def test_rfc2217_without_modem_lines_says_to_add_ign_set_control(console_peers: ConsolePeers) -> None:
    url = console_peers.rfc2217_url.split("?")[0]
    con = SerialConsole(url, rig_name="real")
    with pytest.raises(InfraError, match=r"add \?ign_set_control to the URL"):
        con.open(timeout=10)
    con.close()
