"""The emulated box's IR receiver behind its two blasters, driven over plain sockets only:
a Global Caché iTach (``sendir`` timings in carrier periods) and a lircd socket (TCP and unix).

Timings come from the remote's real lircd.conf via :mod:`lab.lircd` (the format module, not a
driver); the box must decode them back into keys, ignore garbled ones and survive garbage.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import eventually

from lab.emulator.ir_itach import ItachServer
from lab.emulator.ir_lircd import IrReceiver, LircdServer
from lab.lircd import Remote, load_remote

ROOT = Path(__file__).resolve().parents[2]
RC1 = ROOT / "rigs" / "remotes" / "stblab-rc1.lircd.conf"
APPLE = ROOT / "tests" / "data" / "remotes" / "Apple_TV.lircd.conf"


class Keys:
    """The box side: collects keys the receiver decodes (called from the IR thread)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.cond = threading.Condition()

    def __call__(self, key: str) -> None:
        with self.cond:
            self.keys.append(key)
            self.cond.notify_all()

    def wait_for(self, n: int, timeout: float = 3.0) -> list[str]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.keys) >= n, timeout)
            return list(self.keys)


@pytest.fixture(scope="module")
def rc1() -> Remote:
    return load_remote(RC1)


@pytest.fixture
def keys() -> Keys:
    return Keys()


class Line:
    """A plain-socket client that reads replies ending in a terminator (\\r for iTach, \\n for lircd)."""

    def __init__(self, sock: socket.socket, end: bytes) -> None:
        self.sock = sock
        self.end = end
        self.buf = b""
        sock.settimeout(5)

    def send(self, text: str | bytes) -> None:
        self.sock.sendall(text if isinstance(text, bytes) else text.encode() + self.end)

    def read(self) -> str:
        while self.end not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(self.end, 1)
        return line.decode()

    def lircd(self, command: str) -> list[str]:
        self.send(command)
        out = [self.read()]
        while out[-1] != "END":
            out.append(self.read())
        return out


# --------------------------------------------------------------------------- iTach


@pytest.fixture
def itach(keys: Keys) -> Iterator[ItachServer]:
    with ItachServer("127.0.0.1", 0, RC1, keys) as server:
        yield server


@pytest.fixture
def tcp_itach(itach: ItachServer) -> Iterator[Line]:
    with socket.create_connection(("127.0.0.1", itach.port)) as s:
        yield Line(s, b"\r")


def sendir(timings_us: list[int], *, ident: int = 1, freq: int = 38000, repeat: int = 1, offset: int = 1,
           connector: str = "1:1") -> str:  # fmt: skip
    periods = [max(1, round(t * freq / 1e6)) for t in timings_us]
    return f"sendir,{connector},{ident},{freq},{repeat},{offset}," + ",".join(map(str, periods))


def test_itach_sendir_is_decoded_into_keys(rc1: Remote, keys: Keys, tcp_itach: Line) -> None:
    for i, key in enumerate(["KEY_1", "KEY_CHANNELUP", "KEY_OK"], start=1):
        tcp_itach.send(sendir(rc1.encode(key, trailing_gap=True), ident=i))
        assert tcp_itach.read() == f"completeir,1:1,{i}"
    assert keys.wait_for(3) == ["KEY_1", "KEY_CHANNELUP", "KEY_OK"]


def test_itach_carrier_frequency_is_honoured(rc1: Remote, keys: Keys, tcp_itach: Line) -> None:
    """Periods are counted at the carrier given; the same µs timings at 40 kHz decode too."""
    tcp_itach.send(sendir(rc1.encode("KEY_5", trailing_gap=True), freq=40000, ident=9))
    assert tcp_itach.read() == "completeir,1:1,9"
    assert keys.wait_for(1) == ["KEY_5"]
    # The 40 kHz periods read as if they were 38 kHz are 5 % too long: still inside eps 30 %.
    # Read at 20 kHz they are 90 % too long: noise.
    periods = sendir(rc1.encode("KEY_6", trailing_gap=True), freq=40000).split(",", 6)[6]
    tcp_itach.send(f"sendir,1:1,10,21000,1,1,{periods}")
    assert tcp_itach.read() == "completeir,1:1,10"
    # completeir is sent after the receiver has seen the last frame: the keys are final here.
    assert keys.keys == ["KEY_5"]


def test_itach_repeat_with_offset_is_a_held_key(rc1: Remote, keys: Keys, itach: ItachServer, tcp_itach: Line) -> None:
    """REPEAT re-sends from OFFSET (the NEC repeat frame): one press, then auto-repeat after 0.5 s."""
    timings = rc1.encode("KEY_VOLUMEUP", repeat=1, trailing_gap=True)
    offset = len(timings) - 3  # 1-based index of the repeat frame's first pulse (before it: gap)
    tcp_itach.send(sendir(timings, repeat=10, offset=offset, ident=3))
    assert tcp_itach.read() == "completeir,1:1,3"
    got = keys.wait_for(2)
    assert got[0] == "KEY_VOLUMEUP" and set(got) == {"KEY_VOLUMEUP"}
    events = list(itach.receiver.events)
    assert [e.repeat for e in events][:1] == [False] and all(e.repeat for e in events[1:])
    # Full frame, then 10 repeat frames (one in the sequence, nine more from REPEAT) every 108 ms:
    # ~1.2 s held; auto-repeat from 0.5 s -> the frames ending at 0.55, 0.66 ... 1.09 s: six.
    assert len(events) - 1 == 6, events


def test_itach_short_repeat_is_one_press_not_several(rc1: Remote, keys: Keys, tcp_itach: Line) -> None:
    timings = rc1.encode("KEY_CHANNELUP", repeat=1, trailing_gap=True)
    tcp_itach.send(sendir(timings, repeat=3, offset=len(timings) - 3, ident=4))
    assert tcp_itach.read() == "completeir,1:1,4"  # sent after the last frame: the keys are final
    assert keys.keys == ["KEY_CHANNELUP"]  # a normal tap with two repeat frames zaps once


def test_itach_stopir_stops_a_held_key(rc1: Remote, keys: Keys, itach: ItachServer, tcp_itach: Line) -> None:
    timings = rc1.encode("KEY_RIGHT", repeat=1, trailing_gap=True)
    tcp_itach.send(sendir(timings, repeat=50, offset=len(timings) - 3, ident=5))
    keys.wait_for(3, timeout=3)
    tcp_itach.send("stopir,1:1")
    assert tcp_itach.read() == "stopir,1:1"
    eventually(lambda: itach.emitters[1].busy is None, what="the emitter going quiet after stopir")
    n = len(keys.keys)
    time.sleep(0.4)  # a window in which nothing may arrive (asserting an absence, not waiting)
    assert len(keys.keys) == n, "keys kept coming after stopir"
    assert 3 <= n < 20
    # The connector is free again.
    tcp_itach.send(sendir(rc1.encode("KEY_OK", trailing_gap=True), ident=6))
    assert tcp_itach.read() == "completeir,1:1,6"


def test_itach_same_id_resent_extends_the_hold(rc1: Remote, keys: Keys, itach: ItachServer, tcp_itach: Line) -> None:
    """Resending the same sendir (same ID) while it plays continues the held key without a gap."""
    timings = rc1.encode("KEY_LEFT", repeat=1, trailing_gap=True)
    command = sendir(timings, repeat=4, offset=len(timings) - 3, ident=40)
    tcp_itach.send(command)
    keys.wait_for(1)  # the first frame has reached the box; ~0.5 s of repeat frames are still to come
    tcp_itach.send(command)  # still sending: extended, not busyIR
    assert [tcp_itach.read(), tcp_itach.read()] == ["completeir,1:1,40", "completeir,1:1,40"]
    events = list(itach.receiver.events)
    # One press held for ~0.8 s (1 + 3 + 4 repeat frames): auto-repeat started, never re-pressed.
    assert [e.repeat for e in events][0] is False and all(e.repeat for e in events[1:]) and len(events) >= 2


def test_itach_busy_connector_answers_busyir(rc1: Remote, keys: Keys, itach: ItachServer, tcp_itach: Line) -> None:
    timings = rc1.encode("KEY_DOWN", repeat=1, trailing_gap=True)
    tcp_itach.send(sendir(timings, repeat=8, offset=len(timings) - 3, ident=7))
    eventually(lambda: itach.emitters[1].busy is not None, what="connector 1:1 sending")
    with socket.create_connection(("127.0.0.1", itach.port)) as s:
        other = Line(s, b"\r")
        other.send(sendir(rc1.encode("KEY_UP", trailing_gap=True), ident=8))
        assert other.read() == "busyIR,1:1,8"
    assert tcp_itach.read() == "completeir,1:1,7"
    assert "KEY_UP" not in keys.keys


def test_itach_other_connectors_do_not_reach_the_box(rc1: Remote, keys: Keys, tcp_itach: Line) -> None:
    tcp_itach.send(sendir(rc1.encode("KEY_POWER", trailing_gap=True), connector="1:2", ident=11))
    assert tcp_itach.read() == "completeir,1:2,11"  # sent after the last frame: the keys are final
    assert keys.keys == []


def compress(periods: list[int]) -> str:
    """Global Caché compressed IR: a pair seen before (one of the first 15) becomes its letter."""
    table: list[tuple[int, int]] = []
    out: list[str] = []
    for i in range(0, len(periods), 2):
        pair = (periods[i], periods[i + 1])
        if pair in table:
            out.append(chr(ord("A") + table.index(pair)))
        else:
            if len(table) < 15:
                table.append(pair)
            out.append(f",{pair[0]},{pair[1]}")
    return "".join(out).lstrip(",")


def test_itach_compressed_ir_is_expanded(rc1: Remote, keys: Keys, tcp_itach: Line) -> None:
    periods = [max(1, round(t * 38000 / 1e6)) for t in rc1.encode("KEY_GREEN", trailing_gap=True)]
    body = compress(periods)
    assert len(body) < len(",".join(map(str, periods))) / 2  # really compressed (NEC bits repeat)
    tcp_itach.send(f"sendir,1:1,12,38000,1,1,{body}")
    assert tcp_itach.read() == "completeir,1:1,12"
    assert keys.wait_for(1) == ["KEY_GREEN"]
    tcp_itach.send("sendir,1:1,13,38000,1,1,342,171,21,21C")
    assert tcp_itach.read() == "ERR_1:1,022"  # C names no pair yet
    tcp_itach.send("sendir,1:1,14,38000,1,1,342,171,21A")
    assert tcp_itach.read() == "ERR_1:1,021"  # a symbol in the middle of a pair


def test_itach_device_queries(tcp_itach: Line) -> None:
    tcp_itach.send("getdevices")
    assert [tcp_itach.read() for _ in range(3)] == ["device,0,0 ETHERNET", "device,1,3 IR", "endlistdevices"]
    tcp_itach.send("getversion")
    assert tcp_itach.read() == "710-1005-05"
    tcp_itach.send("get_IR,1:1")
    assert tcp_itach.read() == "IR,1:1,IR"


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("sendir,1:1", "ERR_1:1,017"),
        ("sendir,2:1,1,38000,1,1,342,171", "ERR_2:1,002"),
        ("sendir,1:7,1,38000,1,1,342,171", "ERR_1:7,003"),
        ("sendir,1:1,abc,38000,1,1,342,171", "ERR_1:1,004"),
        ("sendir,1:1,1,1000,1,1,342,171", "ERR_1:1,005"),
        ("sendir,1:1,1,38000,0,1,342,171", "ERR_1:1,006"),
        ("sendir,1:1,1,38000,1,2,342,171", "ERR_1:1,007"),
        ("sendir,1:1,1,38000,1,1", "ERR_1:1,008"),
        ("sendir,1:1,1,38000,1,1,342,x", "ERR_1:1,009"),
        ("sendir,1:1,1,38000,1,1,342,171,21", "ERR_1:1,010"),
        ("sendir,1:1,1,38000,1,1," + ",".join(["21"] * 600), "ERR_1:1,020"),
        ("blink,1:1", "ERR_0:0,001"),
    ],
)
def test_itach_malformed_commands_get_the_device_error(command: str, reply: str, keys: Keys, tcp_itach: Line) -> None:
    tcp_itach.send(command)
    assert tcp_itach.read() == reply
    tcp_itach.send("getversion")  # still answering on the same connection
    assert tcp_itach.read() == "710-1005-05"
    assert keys.keys == []


def test_garbled_timings_are_ignored_like_noise(rc1: Remote, keys: Keys, itach: ItachServer, tcp_itach: Line) -> None:
    rng = random.Random(7)
    good = rc1.encode("KEY_MENU", trailing_gap=True)
    garbled = [
        [t * 2 for t in good],  # everything stretched beyond tolerance
        good[:21] + [good[-1]],  # truncated frame
        [rng.randint(200, 3000) for _ in range(67)] + [40000],  # random marks and spaces
        [g + (900 if i == 10 else 0) for i, g in enumerate(good)],  # one bit smeared
    ]
    for i, t in enumerate(garbled, start=20):
        tcp_itach.send(sendir(t, ident=i))
        assert tcp_itach.read() == f"completeir,1:1,{i}"  # the blaster sent it fine...
    assert keys.keys == []  # ...but the box saw no key
    assert itach.receiver.noise >= len(garbled)
    tcp_itach.send(sendir(good, ident=30))
    assert tcp_itach.read() == "completeir,1:1,30"
    assert keys.wait_for(1) == ["KEY_MENU"]


def test_itach_survives_garbage_bytes(rc1: Remote, keys: Keys, itach: ItachServer) -> None:
    rng = random.Random(1234)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", itach.port)) as s:
            s.sendall(bytes(rng.randrange(256) for _ in range(3000)) + b"\r")
            s.sendall(b"\x00" * 20000)  # no terminator: buffer overflow
            s.settimeout(2)
            data = b""
            with contextlib.suppress(OSError):
                while b"ERR_0:0,015" not in data and (chunk := s.recv(4096)):
                    data += chunk
            assert b"ERR_0:0,015" in data
    with socket.create_connection(("127.0.0.1", itach.port)) as s:
        line = Line(s, b"\r")
        line.send(sendir(rc1.encode("KEY_EPG", trailing_gap=True), ident=2))
        assert line.read() == "completeir,1:1,2"
    assert keys.wait_for(1) == ["KEY_EPG"]


# --------------------------------------------------------------------------- lircd


@pytest.fixture
def lircd(keys: Keys) -> Iterator[LircdServer]:
    # lircd knows two remotes; the box only understands its own (STBLAB_RC1).
    from lab.lircd import load_remotes

    with LircdServer("127.0.0.1", 0, load_remotes(RC1) + load_remotes(APPLE), keys, receiver_remotes=RC1) as server:
        yield server


@pytest.fixture
def tcp_lircd(lircd: LircdServer) -> Iterator[Line]:
    with socket.create_connection(("127.0.0.1", lircd.port)) as s:
        yield Line(s, b"\n")


def test_lircd_send_once_goes_through_timings_to_keys(keys: Keys, lircd: LircdServer, tcp_lircd: Line) -> None:
    for key in ("KEY_3", "KEY_CHANNELDOWN", "KEY_BACK"):
        assert tcp_lircd.lircd(f"SEND_ONCE STBLAB_RC1 {key}") == [
            "BEGIN",
            f"SEND_ONCE STBLAB_RC1 {key}",
            "SUCCESS",
            "END",
        ]
    assert keys.wait_for(3) == ["KEY_3", "KEY_CHANNELDOWN", "KEY_BACK"]
    assert lircd.receiver.frames == 3 and lircd.receiver.noise == 0


def test_lircd_list_and_version(tcp_lircd: Line) -> None:
    assert tcp_lircd.lircd("VERSION") == ["BEGIN", "VERSION", "SUCCESS", "DATA", "1", "0.10.2", "END"]
    assert tcp_lircd.lircd("LIST") == ["BEGIN", "LIST", "SUCCESS", "DATA", "2", "STBLAB_RC1", "Apple_TV", "END"]
    listing = tcp_lircd.lircd("LIST STBLAB_RC1")
    assert listing[:5] == ["BEGIN", "LIST STBLAB_RC1", "SUCCESS", "DATA", "32"]
    assert listing[5] == "00000000000010ef KEY_POWER" and listing[-1] == "END"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("SEND_ONCE NO_SUCH_REMOTE KEY_OK", 'unknown remote: "NO_SUCH_REMOTE"'),
        ("SEND_ONCE STBLAB_RC1 KEY_NOPE", 'unknown command: "KEY_NOPE"'),
        ("SEND_ONCE STBLAB_RC1", "bad send packet"),
        ("SEND_ONCE STBLAB_RC1 KEY_OK many", 'invalid repeat count: "many"'),
        ("SEND_STOP STBLAB_RC1 KEY_OK", "not repeating"),
        ("LIST NOPE", 'unknown remote: "NOPE"'),
        ("FROBNICATE", 'unknown directive: "FROBNICATE"'),
    ],
)
def test_lircd_errors_are_lircd_error_packets(command: str, message: str, keys: Keys, tcp_lircd: Line) -> None:
    assert tcp_lircd.lircd(command) == ["BEGIN", command, "ERROR", "DATA", "1", message, "END"]
    assert keys.keys == []


def test_lircd_send_start_stop_is_a_held_key(keys: Keys, lircd: LircdServer, tcp_lircd: Line) -> None:
    assert tcp_lircd.lircd("SEND_START STBLAB_RC1 KEY_CHANNELUP")[2] == "SUCCESS"
    assert tcp_lircd.lircd("SEND_ONCE STBLAB_RC1 KEY_OK")[2:] == ["ERROR", "DATA", "1", "busy: repeating", "END"]
    assert len(keys.wait_for(4, timeout=5)) >= 4  # press, then auto-repeats after 0.5 s
    assert tcp_lircd.lircd("SEND_STOP STBLAB_RC1 KEY_CHANNELUP")[2] == "SUCCESS"
    assert lircd.emitter is not None
    eventually(lambda: lircd.emitter.busy is None, what="the emitter going quiet after SEND_STOP")
    n = len(keys.keys)
    time.sleep(0.3)  # a window in which nothing may arrive (asserting an absence, not waiting)
    assert len(keys.keys) == n  # stopped means stopped
    events = list(lircd.receiver.events)
    assert [e.key for e in events] == ["KEY_CHANNELUP"] * n
    assert not events[0].repeat and all(e.repeat for e in events[1:])
    assert events[1].time - events[0].time == pytest.approx(0.5, abs=0.11)  # the repeat delay
    # Free again for the next press.
    assert tcp_lircd.lircd("SEND_ONCE STBLAB_RC1 KEY_OK")[2] == "SUCCESS"
    assert keys.wait_for(n + 1)[-1] == "KEY_OK"


def test_lircd_client_gone_releases_a_held_key(keys: Keys, lircd: LircdServer) -> None:
    """A test that dies while holding a key must not leave the box seeing it held for a minute."""
    with socket.create_connection(("127.0.0.1", lircd.port)) as s:
        assert Line(s, b"\n").lircd("SEND_START STBLAB_RC1 KEY_VOLUMEDOWN")[2] == "SUCCESS"
        keys.wait_for(1)
    assert lircd.emitter is not None
    eventually(lambda: lircd.emitter.busy is None, what="the held key released when its client left")
    n = len(keys.keys)
    time.sleep(0.5)  # a window in which nothing may arrive (asserting an absence, not waiting)
    assert len(keys.keys) == n and n >= 1
    with socket.create_connection(("127.0.0.1", lircd.port)) as s:
        assert Line(s, b"\n").lircd("SEND_ONCE STBLAB_RC1 KEY_OK")[2] == "SUCCESS"  # not busy any more


def test_lircd_count_sends_repeat_frames_of_one_press(keys: Keys, lircd: LircdServer, tcp_lircd: Line) -> None:
    assert tcp_lircd.lircd("SEND_ONCE STBLAB_RC1 KEY_2 2")[2] == "SUCCESS"
    assert keys.keys == ["KEY_2"]  # two repeat frames (~220 ms) stay under the repeat delay
    assert lircd.receiver.frames == 3
    assert tcp_lircd.lircd("SEND_ONCE STBLAB_RC1 KEY_2 7")[2] == "SUCCESS"
    assert keys.keys[1] == "KEY_2" and len(keys.keys) >= 3  # 7 repeats (~760 ms) auto-repeat


def test_lircd_other_remote_is_sent_but_the_box_ignores_it(keys: Keys, lircd: LircdServer, tcp_lircd: Line) -> None:
    """lircd happily sends an Apple TV code; the STB's receiver does not know it: noise."""
    assert tcp_lircd.lircd("SEND_ONCE Apple_TV KEY_OK")[2] == "SUCCESS"
    assert keys.keys == []
    assert lircd.receiver.noise == 1


def test_lircd_survives_garbage(keys: Keys, lircd: LircdServer) -> None:
    rng = random.Random(99)
    with socket.create_connection(("127.0.0.1", lircd.port)) as s:
        line = Line(s, b"\n")
        line.send(bytes(rng.randrange(1, 256) for _ in range(2000)).replace(b"\n", b" ") + b"\n")
        garbage_reply = [line.read()]
        while garbage_reply[-1] != "END":
            garbage_reply.append(line.read())
        assert garbage_reply[0] == "BEGIN" and garbage_reply[2] == "ERROR"
        assert line.lircd("VERSION") == ["BEGIN", "VERSION", "SUCCESS", "DATA", "1", "0.10.2", "END"]
        line.send(b"A" * 10000 + b"\n")  # over-long line: one error packet, then business as usual
        assert line.read() == "BEGIN"
        while line.read() != "END":
            pass
        assert line.lircd("VERSION")[-2] == "0.10.2"
    with socket.create_connection(("127.0.0.1", lircd.port)) as s:
        assert Line(s, b"\n").lircd("SEND_ONCE STBLAB_RC1 KEY_INFO")[2] == "SUCCESS"
    assert keys.wait_for(1) == ["KEY_INFO"]


def test_lircd_on_a_unix_socket(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "lircd.sock"
    server = LircdServer.from_url(str(path), RC1, keys)
    server.start()
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
            assert Line(s, b"\n").lircd("SEND_ONCE STBLAB_RC1 KEY_HOME")[2] == "SUCCESS"
        assert keys.wait_for(1) == ["KEY_HOME"]
        with pytest.raises(OSError, match="is in use"):  # a second lircd on a live socket says so
            LircdServer.from_url(str(path), RC1, keys).start()
        assert path.is_socket()  # and leaves the first one's socket alone
    finally:
        server.stop()
    assert not path.exists()
    with socket.socket(socket.AF_UNIX) as stale:  # a socket file nobody listens on is taken over
        stale.bind(str(path))
    with LircdServer.from_url(str(path), RC1, keys):
        assert path.is_socket()


def test_both_blasters_share_one_receiver(rc1: Remote, keys: Keys) -> None:
    """An iTach and a lircd pointed at the same box: one receiver, one key log."""
    rx = IrReceiver(RC1, keys)
    with ItachServer("127.0.0.1", 0, None, receiver=rx) as it, LircdServer("127.0.0.1", 0, RC1, receiver=rx) as li:
        with socket.create_connection(("127.0.0.1", it.port)) as s:
            line = Line(s, b"\r")
            line.send(sendir(rc1.encode("KEY_RED", trailing_gap=True)))
            assert line.read() == "completeir,1:1,1"
        with socket.create_connection(("127.0.0.1", li.port)) as s:
            assert Line(s, b"\n").lircd("SEND_ONCE STBLAB_RC1 KEY_BLUE")[2] == "SUCCESS"
    assert keys.wait_for(2) == ["KEY_RED", "KEY_BLUE"]


def test_port_in_use_is_a_clear_error(itach: ItachServer, lircd: LircdServer) -> None:
    with pytest.raises(OSError):
        ItachServer("127.0.0.1", itach.port, RC1).start()
    with pytest.raises(OSError):
        LircdServer("127.0.0.1", lircd.port, RC1).start()


# --------------------------------------------------------------------------- toggle-bit remotes

MCE = ROOT / "tests" / "data" / "remotes" / "mceusb.lircd.conf"
HAUPPAUGE = ROOT / "tests" / "data" / "remotes" / "hauppauge.lircd.conf"


def test_rc6_box_behind_lircd_sees_each_press_and_holds(keys: Keys) -> None:
    """RC-6 has no repeat code: a held key resends its full frame with the same toggle bit, and
    lircd flips the toggle for every new press, so the box tells a re-press from a hold."""
    from lab.lircd import load_remotes

    mce = [r for r in load_remotes(MCE) if r.name == "mceusb"]
    with LircdServer("127.0.0.1", 0, mce, keys) as server, socket.create_connection(("127.0.0.1", server.port)) as s:
        line = Line(s, b"\n")
        for _ in range(2):
            assert line.lircd("SEND_ONCE mceusb KEY_BLUE")[2] == "SUCCESS"
        assert keys.wait_for(2) == ["KEY_BLUE", "KEY_BLUE"]  # two presses, not one held key
        events = list(server.receiver.events)
        assert [e.repeat for e in events] == [False, False]
        assert line.lircd("SEND_ONCE mceusb KEY_YELLOW 8")[2] == "SUCCESS"  # ~0.9 s held
        held = list(server.receiver.events)[2:]
        assert held[0].key == "KEY_YELLOW" and not held[0].repeat
        assert len(held) >= 2 and all(e.repeat and e.key == "KEY_YELLOW" for e in held[1:])


def test_rc5_box_behind_itach_tells_presses_from_holds(keys: Keys) -> None:
    from lab.lircd import load_remotes

    mvp = next(r for r in load_remotes(HAUPPAUGE) if r.name == "Hauppauge_MVP")
    with ItachServer("127.0.0.1", 0, [mvp], keys) as server, socket.create_connection(("127.0.0.1", server.port)) as s:
        line = Line(s, b"\r")
        for ident, toggle in ((1, 0), (2, 1)):  # a person pressing twice: the toggle flips
            line.send(sendir(mvp.encode("KEY_1", toggle=toggle, trailing_gap=True), freq=36000, ident=ident))
            assert line.read() == f"completeir,1:1,{ident}"
        assert keys.wait_for(2) == ["KEY_1", "KEY_1"]
        time.sleep(0.3)  # a pause between presses, as a person makes (longer than the hold timeout)
        # Held: the same frame (same toggle) repeated by the iTach for ~1.2 s.
        line.send(sendir(mvp.encode("KEY_2", toggle=0, trailing_gap=True), freq=36000, repeat=11, ident=3))
        assert line.read() == "completeir,1:1,3"
        events = list(server.receiver.events)[2:]
        assert events[0].key == "KEY_2" and not events[0].repeat
        assert len(events) >= 3 and all(e.repeat for e in events[1:])
