"""IR driver against real sockets: an iTach and a lircd peer written here, and the emulated blasters."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import eventually

from lab.drivers.ir import IrRemote, ItachBlaster
from lab.errors import DeviceFault, InfraError, TestError
from lab.lircd import Decoded, Remote, load_remote, load_remotes
from lab.steps import STEPS, StepRecord

DATA = Path(__file__).parent.parent / "data" / "remotes"
RC1 = DATA / "stblab-rc1.lircd.conf"


# ----------------------------------------------------------------------------------- peers


@dataclass
class SendIr:
    ident: int
    freq: int
    repeat: int
    offset: int
    periods: list[int]
    at: float  # when the peer received it
    done: float = 0.0  # when the peer answered it (completeir or an error)

    def timings_us(self) -> list[int]:
        """What the LED sends, as the iTach documents it: all once, then REPEAT-1 times from OFFSET."""
        seq = self.periods + self.periods[self.offset - 1 :] * (self.repeat - 1)
        return [round(p * 1_000_000 / self.freq) for p in seq]


@dataclass
class ItachPeer:
    """A Global Caché iTach on a real TCP socket. ``mode``: ok, busy_once, err, silent, close, stale."""

    mode: str = "ok"
    sends: list[SendIr] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._busy_done = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"itach://127.0.0.1:{self.port}/1:1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            self.connections += 1
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with contextlib.suppress(OSError):
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\r" in buf:
                    raw, buf = buf.split(b"\r", 1)
                    reply = self._handle(raw.decode())
                    if self.sends and raw.startswith(b"sendir,"):
                        self.sends[-1].done = time.monotonic()
                    if reply == "CLOSE":
                        conn.close()
                        return
                    if reply:
                        conn.sendall(reply.encode())

    def _handle(self, line: str) -> str:
        self.lines.append(line)
        parts = line.split(",")
        if line == "getversion":
            return "710-1005-05\r"
        if parts[0] != "sendir":
            return "ERR_0:0,001\r"
        ident = int(parts[2])
        self.sends.append(
            SendIr(ident, int(parts[3]), int(parts[4]), int(parts[5]), [int(p) for p in parts[6:]], time.monotonic())
        )
        if self.mode == "err":
            return f"ERR_{parts[1]},009\r"
        if self.mode == "silent":
            return ""
        if self.mode == "close":
            return "CLOSE"
        if self.mode == "busy_once" and not self._busy_done:
            self._busy_done = True
            return f"busyIR,{parts[1]},{ident}\r"
        if self.mode == "stale":
            return f"completeir,{parts[1]},{ident + 1000}\rcompleteir,{parts[1]},{ident}\r"
        return f"completeir,{parts[1]},{ident}\r"

    def drop_clients(self) -> None:
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
                c.close()
        self._conns.clear()

    def close(self) -> None:
        self.drop_clients()
        self._srv.close()


@pytest.fixture
def itach() -> Iterator[ItachPeer]:
    peer = ItachPeer()
    yield peer
    peer.close()


class LircdPeer:
    """A lircd socket (TCP or unix) answering BEGIN/cmd/SUCCESS|ERROR/END, with broadcast noise."""

    def __init__(self, path: str | None = None, *, fail: str | None = None, keys: list[str] | None = None) -> None:
        self.commands: list[tuple[float, str]] = []
        self.fail = fail
        self.keys = keys if keys is not None else load_remote(RC1).keys
        if path:
            self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._srv.bind(path)
            self._srv.listen()
            self.url = path
        else:
            self._srv = socket.create_server(("127.0.0.1", 0))
            self.url = f"lirc://127.0.0.1:{self._srv.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with contextlib.suppress(OSError):
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    cmd = raw.decode().strip()
                    self.commands.append((time.monotonic(), cmd))
                    # what a busy lircd also writes to its clients: decoded keys and SIGHUP
                    noise = "0000000000f40bf0 00 KEY_UP other\nBEGIN\nSIGHUP\nEND\n"
                    if self.fail and cmd.startswith(self.fail):
                        reply = f'BEGIN\n{cmd}\nERROR\nDATA\n1\nunknown command: "{cmd.split()[-1]}"\nEND\n'
                    elif cmd == "VERSION":
                        reply = f"BEGIN\n{cmd}\nSUCCESS\nDATA\n1\n0.10.2\nEND\n"
                    elif cmd.startswith("LIST "):
                        keys = [f"{i:016x} {k}" for i, k in enumerate(self.keys)]
                        reply = (
                            f"BEGIN\n{cmd}\nSUCCESS\nDATA\n{len(keys)}\n" + "".join(k + "\n" for k in keys) + "END\n"
                        )
                    else:
                        reply = f"BEGIN\n{cmd}\nSUCCESS\nEND\n"
                    conn.sendall((noise + reply).encode())

    def close(self) -> None:
        self._srv.close()


def decode_all(remote: Remote, sends: list[SendIr]) -> list[Decoded]:
    out: list[Decoded] = []
    previous = None
    for s in sends:
        for d in remote.decode_all(s.timings_us(), previous=previous):
            out.append(d)
            previous = d.key
    return out


# ----------------------------------------------------------------------------------- iTach


def test_press_sends_sendir_in_carrier_periods_that_decode_to_the_key(itach: ItachPeer) -> None:
    rc = load_remote(RC1)
    with IrRemote(itach.url, RC1, rig_name="stb-x", inter_press_delay=0) as remote:
        remote.press("KEY_OK")
        remote.press("KEY_CHANNELUP")
    assert len(itach.sends) == 2
    first = itach.sends[0]
    assert (first.freq, first.repeat, first.offset) == (38000, 1, 1)
    assert len(first.periods) % 2 == 0  # on/off pairs, the last off is the lead-out gap
    assert first.periods[:2] == [342, 171]  # 9000 / 4500 us at 38 kHz
    assert itach.sends[1].ident != first.ident
    assert [d.key for d in decode_all(rc, itach.sends)] == ["KEY_OK", "KEY_CHANNELUP"]
    assert itach.lines[0].startswith(f"sendir,1:1,{first.ident},38000,1,1,342,171,")


def test_press_with_repeats_uses_the_itach_offset_for_the_repeat_frame(itach: ItachPeer) -> None:
    rc = load_remote(RC1)
    with IrRemote(itach.url, rc, inter_press_delay=0) as remote:
        remote.press("KEY_VOLUMEUP", repeat=3)
    (s,) = itach.sends
    assert s.repeat == 3
    assert s.periods[s.offset - 1 : s.offset + 1] == [342, 86]  # the NEC repeat code 9000/2250
    assert rc.decode_press(s.timings_us()) == Decoded("KEY_VOLUMEUP", 3, None)


def test_hold_sends_repeat_frames_for_the_time_asked_splitting_past_50_repeats(itach: ItachPeer) -> None:
    rc = load_remote(RC1)
    with IrRemote(itach.url, rc, inter_press_delay=0) as remote:
        remote.hold("KEY_RIGHT", 1.0)
        assert len(itach.sends) == 1
        assert 0.99 <= sum(itach.sends[0].timings_us()) / 1e6 <= 1.0 + 0.109
        remote.hold("KEY_LEFT", 7.0)
    long = itach.sends[1:]
    assert len(long) == 2 and long[0].repeat == 50 and long[1].offset == 1
    total = sum(sum(s.timings_us()) for s in long) / 1e6
    assert 7.0 <= total <= 7.109
    assert decode_all(rc, long) == [Decoded("KEY_LEFT", 50, None), Decoded("KEY_LEFT", long[1].repeat, None)]


def test_rc5_presses_flip_the_toggle_bit_so_the_box_sees_new_presses(itach: ItachPeer) -> None:
    mvp = load_remote(DATA / "hauppauge.lircd.conf", "Hauppauge_MVP")
    with IrRemote(itach.url, DATA / "hauppauge.lircd.conf", remote_name="Hauppauge_MVP", inter_press_delay=0) as r:
        r.press_many(["KEY_OK", "KEY_OK", "KEY_OK"])
    decoded = decode_all(mvp, itach.sends)
    assert [d.key for d in decoded] == ["KEY_OK"] * 3
    assert [d.toggle for d in decoded] == [0, 1, 0]


def test_itach_error_reply_is_an_infra_error_with_its_meaning(itach: ItachPeer) -> None:
    itach.mode = "err"
    with IrRemote(itach.url, RC1, rig_name="stb-x", inter_press_delay=0) as remote:
        with pytest.raises(InfraError) as info:
            remote.press("KEY_OK")
        assert info.value.instrument == "ir" and info.value.rig == "stb-x"
        assert "ERR_1:1,009" in str(info.value) and "invalid pulse data" in str(info.value)
        itach.mode = "ok"
        remote.press("KEY_OK")  # the connection is still good after an error reply
    assert itach.connections == 1


def test_busy_blaster_is_waited_out_and_stale_completions_ignored(itach: ItachPeer) -> None:
    itach.mode = "busy_once"
    with IrRemote(itach.url, RC1, inter_press_delay=0) as remote:
        remote.press("KEY_1")
        assert len(itach.sends) == 2  # sent again after busyIR
        itach.mode = "stale"
        remote.press("KEY_2")


def test_blaster_that_never_answers_times_out_as_infra_error(itach: ItachPeer) -> None:
    itach.mode = "silent"
    with IrRemote(itach.url, RC1, rig_name="stb-x", timeout=0.3) as remote:
        t0 = time.monotonic()
        with pytest.raises(InfraError, match="no answer"):
            remote.press("KEY_OK")
        assert time.monotonic() - t0 < 3


def test_blaster_dropping_the_connection_mid_command_is_infra_error(itach: ItachPeer) -> None:
    itach.mode = "close"
    with IrRemote(itach.url, RC1, rig_name="stb-x") as remote, pytest.raises(InfraError, match="closed") as info:
        remote.press("KEY_OK")
    assert info.value.instrument == "ir"


def test_idle_connection_closed_by_the_blaster_is_reopened_before_the_next_press(itach: ItachPeer) -> None:
    with IrRemote(itach.url, RC1, inter_press_delay=0) as remote:
        remote.press("KEY_1")
        itach.drop_clients()
        conn = remote._blaster._conn  # type: ignore[attr-defined]  # the driver's view of the socket
        eventually(conn._peer_closed, timeout=2, what="the blaster's close reaching the driver")
        remote.press("KEY_2")
    assert itach.connections == 2 and len(itach.sends) == 2


def test_unreachable_blaster_is_infra_error_naming_rig_and_instrument() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    remote = IrRemote(f"itach://127.0.0.1:{port}/1:1", RC1, rig_name="stb-q", timeout=1)
    with pytest.raises(InfraError, match="cannot connect") as info:
        remote.press("KEY_OK")
    assert (info.value.rig, info.value.instrument) == ("stb-q", "ir")


def test_a_missing_lircd_socket_leaves_no_socket_open(tmp_path: Path) -> None:
    remote = IrRemote(str(tmp_path / "no-lircd"), RC1, rig_name="stb-q", timeout=1)
    before = len(os.listdir("/proc/self/fd"))
    errors = []
    for _ in range(5):
        with pytest.raises(InfraError, match="cannot connect") as info:
            remote.press("KEY_OK")
        errors.append(info.value)  # kept alive, as a report keeps it
    assert len(os.listdir("/proc/self/fd")) == before


def test_unknown_key_is_test_error_with_close_names_and_nothing_is_sent(itach: ItachPeer) -> None:
    with IrRemote(itach.url, RC1) as remote:
        with pytest.raises(TestError, match="KEY_CHANNELUP") as info:
            remote.press("KEY_CHANELUP")
        assert "Did you mean" in str(info.value)
        with pytest.raises(TestError):
            remote.press_many(["KEY_1", "KEY_BOGUS", "KEY_2"])  # checked before the first press
        with pytest.raises(TestError):
            remote.press_many("KEY_1")
        with pytest.raises(TestError):
            remote.hold("KEY_OK", float("nan"))
    assert itach.sends == []


def test_inter_press_delay_spaces_consecutive_presses(itach: ItachPeer) -> None:
    # Times seen by the peer are late by however long the host took to pass the bytes on, so each
    # bound is one that load cannot break: a press arrives no earlier than the driver started it.
    t0 = time.monotonic()
    with IrRemote(itach.url, RC1, inter_press_delay=0.25) as remote:
        remote.press_many(["KEY_1", "KEY_2", "KEY_3"])
        remote.press("KEY_4")
    sends = itach.sends
    signal = sum(sends[0].timings_us()) / 1e6  # one NEC frame and its lead-out gap, ~0.11 s
    for k in range(1, 4):
        # the next press starts at least the delay after the previous one's signal ended...
        assert sends[k].at - t0 >= k * (signal + 0.25) - 0.002, (k, [s.at - t0 for s in sends])
        # ...and after the blaster said it was done with it
        assert sends[k].at - sends[k - 1].done >= 0.25, (k, sends[k].at - sends[k - 1].done)
    with IrRemote(itach.url, RC1, inter_press_delay=5.0) as remote:
        remote.press_many(["KEY_5", "KEY_6"], delay=0.0)
    assert sends[5].at - sends[4].done < 5.0  # delay=0 overrides the remote's 5 s delay


def test_press_until_counts_presses_and_fails_as_device_fault(itach: ItachPeer) -> None:
    with IrRemote(itach.url, RC1, rig_name="stb-x", inter_press_delay=0) as remote:
        n = remote.press_until("KEY_DOWN", lambda: len(itach.sends) >= 3, max_presses=5)
        assert n == 3
        with pytest.raises(DeviceFault, match="pressed KEY_DOWN 4 times") as info:
            remote.press_until("KEY_DOWN", lambda: False, max_presses=4)
        assert info.value.rig == "stb-x"
        with pytest.raises(TestError):
            remote.press_until("KEY_DOWN", lambda: True, max_presses=0)
    assert len(itach.sends) == 7


def test_every_action_is_a_logged_step(itach: ItachPeer) -> None:
    seen: list[StepRecord] = []
    undo = STEPS.subscribe(seen.append)
    try:
        with IrRemote(itach.url, RC1, rig_name="stb-s", inter_press_delay=0) as remote:
            remote.press("KEY_OK")
            with pytest.raises(TestError):
                remote.press("NOPE")
    finally:
        undo()
    mine = [r for r in seen if r.rig == "stb-s"]
    assert [(r.instrument, r.action, r.outcome) for r in mine] == [
        ("ir", "press", "ok"),
        ("ir", "press", "TestError"),
    ]
    assert "'KEY_OK'" in mine[0].args


def test_from_rig_reads_url_remote_and_delay(tmp_path: Path, itach: ItachPeer) -> None:
    from lab.rig import load_rigs

    (tmp_path / "rc.conf").write_bytes(RC1.read_bytes())
    rig_file = tmp_path / "rigs.yaml"
    rig_file.write_text(
        f"rigs:\n  - name: r1\n    model: M\n    ir: {{url: '{itach.url}', remote: rc.conf, inter_press_delay: 0.05}}\n"
    )
    rig = load_rigs(rig_file)["r1"]
    with IrRemote.from_rig(rig) as remote:
        assert remote.rig_name == "r1" and remote.inter_press_delay == 0.05
        assert remote.remote.name == "STBLAB_RC1"
        remote.press("KEY_MENU")
    assert len(itach.sends) == 1


def test_bad_remote_files_and_urls() -> None:
    with pytest.raises(TestError, match="6 remotes"):
        IrRemote("lirc://127.0.0.1:1", DATA / "hauppauge.lircd.conf")
    with pytest.raises(TestError, match="no remote named"):
        IrRemote("lirc://127.0.0.1:1", DATA / "hauppauge.lircd.conf", remote_name="nope")
    with pytest.raises(InfraError, match="cannot read remote file"):
        IrRemote("lirc://127.0.0.1:1", DATA / "missing.conf")
    with pytest.raises(TestError, match="unsupported scheme"):
        IrRemote("http://127.0.0.1:1", RC1)


def test_sendir_converts_timings_at_the_remote_frequency() -> None:
    assert ItachBlaster.to_periods([9000, 4500, 560, 1], 38000) == [342, 171, 21, 1]
    assert ItachBlaster.to_periods([889], 36000) == [32]


# ----------------------------------------------------------------------------------- lircd


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_lircd_send_once_hold_and_broadcast_noise(tmp_path: Path, transport: str) -> None:
    peer = LircdPeer(str(tmp_path / "lircd") if transport == "unix" else None)
    try:
        with IrRemote(peer.url, RC1, inter_press_delay=0) as remote:
            remote.press("KEY_OK")
            remote.press("KEY_UP", repeat=2)
            t0 = time.monotonic()
            remote.hold("KEY_RIGHT", 0.3)
            assert time.monotonic() - t0 >= 0.3
        cmds = [c for _, c in peer.commands]
        assert cmds == [
            "SEND_ONCE STBLAB_RC1 KEY_OK",
            "SEND_ONCE STBLAB_RC1 KEY_UP 2",
            "SEND_START STBLAB_RC1 KEY_RIGHT",
            "SEND_STOP STBLAB_RC1 KEY_RIGHT",
        ]
        assert peer.commands[3][0] - peer.commands[2][0] >= 0.3
    finally:
        peer.close()


def test_lircd_error_reply_is_infra_error_with_lircds_reason() -> None:
    peer = LircdPeer(fail="SEND_ONCE")
    try:
        with IrRemote(peer.url, RC1, rig_name="stb-l") as remote, pytest.raises(InfraError) as info:
            remote.press("KEY_OK")
        assert "unknown command" in str(info.value) and info.value.instrument == "ir"
    finally:
        peer.close()


# ----------------------------------------------------------------------------------- emulated blasters


def test_emulated_itach_and_lircd_boxes_receive_the_keys() -> None:
    ir_itach = pytest.importorskip("lab.emulator.ir_itach")
    ir_lircd = pytest.importorskip("lab.emulator.ir_lircd")
    got: list[str] = []
    lock = threading.Lock()

    def on_key(key: str) -> None:
        with lock:
            got.append(key)

    receiver = ir_lircd.IrReceiver(str(RC1), on_key)
    it = ir_itach.ItachServer("127.0.0.1", 0, None, receiver=receiver)
    li = ir_lircd.LircdServer("127.0.0.1", 0, str(RC1), receiver=receiver)
    it.start()
    li.start()
    try:
        with IrRemote(f"itach://127.0.0.1:{it.port}/1:1", RC1, inter_press_delay=0.05) as a:
            assert a.check().startswith("iTach 1:1 firmware ")
            a.press_many(["KEY_1", "KEY_2"])
        with IrRemote(f"lirc://127.0.0.1:{li.port}", RC1, inter_press_delay=0.05) as b:
            assert "with remote STBLAB_RC1 (32 keys)" in b.check()
            b.press("KEY_OK")
        eventually(lambda: len(got) >= 3, timeout=3, what="three keys on the box")
        assert got[:3] == ["KEY_1", "KEY_2", "KEY_OK"]
        with IrRemote(f"itach://127.0.0.1:{it.port}/1:1", RC1, inter_press_delay=0.05) as a:
            a.hold("KEY_VOLUMEUP", 1.0)
        # a held key auto-repeats on the box
        eventually(lambda: got.count("KEY_VOLUMEUP") >= 3, timeout=3, what="auto-repeats of the held key")
    finally:
        it.stop()
        li.stop()


def test_check_asks_the_blaster_before_any_press(itach: ItachPeer) -> None:
    with IrRemote(itach.url, RC1, rig_name="stb-x") as remote:
        assert remote.check() == "iTach 1:1 firmware 710-1005-05"
    assert itach.sends == []
    good = LircdPeer()
    stale = LircdPeer(keys=["KEY_OK", "KEY_POWER"])
    try:
        with IrRemote(good.url, RC1) as remote:
            assert remote.check() == "lircd 0.10.2 with remote STBLAB_RC1 (32 keys)"
        with IrRemote(stale.url, RC1, rig_name="stb-x") as remote, pytest.raises(InfraError) as info:
            remote.check()
        assert "lacks 30 key(s)" in str(info.value) and info.value.instrument == "ir"
    finally:
        good.close()
        stale.close()


def test_signal_too_long_for_an_itach_is_refused_before_sending(itach: ItachPeer) -> None:
    from lab.lircd import parse_remotes

    (philips,) = load_remotes(DATA / "Philips_RC4491-01B_raw.lircd.conf")
    with IrRemote(itach.url, philips, inter_press_delay=0) as remote:
        remote.press("Menu", repeat=20)  # repeats ride on the sendir offset: one frame pair sent
    long_raw = " ".join(["500 500"] * 300) + " 500"
    text = "begin remote\n name big\n flags RAW_CODES\n gap 50000\n begin raw_codes\n name A\n"
    (big,) = parse_remotes(text + long_raw + "\n end raw_codes\nend remote\n")
    with (
        IrRemote(itach.url, big, inter_press_delay=0) as remote,
        pytest.raises(TestError, match="301 on/off pairs is longer than an iTach sendir takes"),
    ):
        remote.press("A")
    assert len(itach.sends) == 1 and itach.sends[0].repeat == 20
