"""The emulated PDU on its own: garbage requests and concurrent switching."""

from __future__ import annotations

import socket
import threading
import time

from lab.emulator.pdu import PduServer


def _pdu(on_change) -> PduServer:
    pdu = PduServer("127.0.0.1", 0, outlet=1, on_change=on_change)
    pdu.start()
    return pdu


def test_negative_content_length_is_a_bad_request_not_a_hang():
    pdu = _pdu(lambda on: None)
    try:
        with socket.create_connection(("127.0.0.1", pdu.port), timeout=3) as s:
            s.sendall(b"POST /netio.json HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}")
            reply = s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 400")
    finally:
        pdu.stop()


def test_concurrent_switching_leaves_the_box_as_the_outlet_says():
    calls: list[bool] = []
    first = threading.Event()
    release = threading.Event()

    def on_change(on: bool) -> None:
        if not first.is_set():
            first.set()
            release.wait(5)  # the box is slow to take this change
        calls.append(on)

    pdu = PduServer("127.0.0.1", 0, outlet=1, on_change=on_change, initially_on=True)
    pdu.start()
    try:
        off = threading.Thread(target=pdu.apply, args=(1, 0))
        off.start()
        assert first.wait(5)
        on = threading.Thread(target=pdu.apply, args=(1, 1))
        on.start()
        time.sleep(0.2)  # lets the second request queue behind the first; the assertion holds either way
        release.set()
        off.join(5)
        on.join(5)
        assert calls[-1] == pdu.state[1]
    finally:
        pdu.stop()
