"""PowerSwitch against a NETIO-style JSON PDU over real HTTP."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from lab.drivers.power import PowerSwitch
from lab.errors import InfraError

if TYPE_CHECKING:
    from driver_peers import PduPeer


def test_on_off_status(pdu_peer: PduPeer) -> None:
    pdu = PowerSwitch(pdu_peer.url, 2, rig_name="rig-p")
    pdu.on()
    assert pdu.status() is True
    assert pdu_peer.state.states == {1: 0, 2: 1, 3: 0, 4: 0}  # only our outlet
    pdu.off()
    assert pdu.status() is False
    assert pdu_peer.state.actions == [(2, 1), (2, 0)]


def test_cycle_by_pdu_delay_returns_when_back_on(pdu_peer: PduPeer) -> None:
    pdu = PowerSwitch(pdu_peer.url, 1)
    pdu.on()
    t0 = time.monotonic()
    pdu.cycle()
    assert time.monotonic() - t0 >= 0.25  # the PDU's 300 ms short-off happened before we returned
    assert pdu.status() is True
    assert pdu_peer.state.actions[-1] == (1, 2)


def test_cycle_with_own_off_time(pdu_peer: PduPeer) -> None:
    pdu = PowerSwitch(pdu_peer.url, 1)
    pdu.cycle(off_seconds=0.1)
    assert pdu_peer.state.actions == [(1, 0), (1, 1)] and pdu.status()


def test_unknown_outlet_is_infra_error(pdu_peer: PduPeer) -> None:
    with pytest.raises(InfraError) as err:
        PowerSwitch(pdu_peer.url, 9, rig_name="rig-p").on()
    assert err.value.instrument == "power" and err.value.rig == "rig-p"
    assert "unknown output ID 9" in str(err.value)


def test_http_error_and_refused_are_infra_errors(pdu_peer: PduPeer) -> None:
    pdu_peer.state.fail_with = 500
    with pytest.raises(InfraError, match="HTTP 500"):
        PowerSwitch(pdu_peer.url, 1).status()
    pdu_peer.stop()
    with pytest.raises(InfraError, match="no answer"):
        PowerSwitch(pdu_peer.url, 1, timeout=1).status()


def test_basic_auth_and_password_not_shown(pdu_peer: PduPeer) -> None:
    pdu_peer.state.user, pdu_peer.state.password = "admin", "pdu-s3cret"
    with pytest.raises(InfraError) as err:
        PowerSwitch(pdu_peer.url, 1, user="admin", password="wrong-pass").on()
    assert "HTTP 401" in str(err.value) and "wrong-pass" not in str(err.value)
    pdu = PowerSwitch(pdu_peer.url, 1, user="admin", password="pdu-s3cret")
    pdu.on()
    assert pdu.status() and "pdu-s3cret" not in repr(pdu)


def test_not_a_netio_pdu() -> None:  # an HTTP server that is not a NETIO PDU
    import socket
    import threading

    srv = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = srv.accept()
        conn.recv(1000)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>router login</html>")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    with pytest.raises(InfraError, match="not JSON"):
        PowerSwitch(f"http://127.0.0.1:{srv.getsockname()[1]}", 1).status()
    srv.close()


@pytest.mark.parametrize(
    "answer",
    [b"SSH-2.0-OpenSSH_9.2p1\r\n", b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"Outputs"'],
    ids=["not-http", "cut-off"],
)
def test_a_service_that_is_not_http_is_an_infra_error(answer: bytes) -> None:
    # a wrong port in the rig file (an sshd, a console) or a PDU that dies mid-answer
    import socket
    import threading

    srv = socket.create_server(("127.0.0.1", 0))

    def answer_once() -> None:
        conn, _ = srv.accept()
        conn.recv(1000)
        conn.sendall(answer)
        conn.close()

    threading.Thread(target=answer_once, daemon=True).start()
    try:
        with pytest.raises(InfraError) as err:
            PowerSwitch(f"http://127.0.0.1:{srv.getsockname()[1]}", 1, rig_name="rig-p", timeout=2).status()
        assert err.value.instrument == "power" and err.value.rig == "rig-p"
    finally:
        srv.close()


def test_from_rig(pdu_peer: PduPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.rig import PowerConfig, Rig

    pdu_peer.state.user, pdu_peer.state.password = "lab", "from-env"
    monkeypatch.setenv("PDU_PW", "from-env")
    rig = Rig(name="stb-z", model="M", power=PowerConfig(url=pdu_peer.url, outlet=3, user="lab", password_env="PDU_PW"))
    pdu = PowerSwitch.from_rig(rig)
    pdu.on()
    assert pdu.rig_name == "stb-z" and pdu_peer.state.states[3] == 1


def test_reading_without_a_meter_gives_none(pdu_peer: PduPeer) -> None:
    pdu = PowerSwitch(pdu_peer.url, 1)
    pdu.on()
    r = pdu.reading()
    assert r.on is True and r.current_ma is None and r.load_w is None
