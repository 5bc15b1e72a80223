"""An emulated network PDU speaking the NETIO JSON API over HTTP (see docs/wire.md).

``GET /netio.json`` describes the outlets; ``POST /netio.json`` with
``{"Outputs": [{"ID": 1, "Action": 1}]}`` switches them (0 off, 1 on, 2 short off = power cycle,
3 short on, 4 toggle, 5 no change). One outlet drives the emulated box through ``on_change``.

Example::

    pdu = PduServer("127.0.0.1", 0, outlet=1, on_change=box.set_power, names={1: "stb-a"})
    pdu.start()
"""

from __future__ import annotations

import base64
import json
import socketserver
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lab.emulator.service import SocketServerService


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class PduServer(SocketServerService):
    """NETIO-style PDU with ``outlets`` outputs; ``outlet`` is the one wired to the box."""

    MODEL = "NETIO 4"
    thread_name = "pdu"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        outlet: int,
        on_change: Callable[[bool], None],
        outlets: int = 4,
        names: dict[int, str] | None = None,
        serial_number: str = "24A42C390000",
        auth: tuple[str, str] | None = None,
        initially_on: bool = False,
    ) -> None:
        self.outlet = outlet
        self.on_change = on_change
        self.count = max(outlets, outlet)
        self.names = names or {}
        self.serial_number = serial_number
        self.auth = auth
        self.state = {i: (initially_on if i == outlet else False) for i in range(1, self.count + 1)}
        self.delay_ms = {i: 2000 for i in self.state}
        super().__init__(host, port)
        self.bind()  # at construction, as before: OSError here names the port before anything starts

    def _make_server(self) -> socketserver.BaseServer:
        return _Server((self.host or "127.0.0.1", self.requested_port), self._handler())

    @property
    def url(self) -> str:
        """The PDU's HTTP address, as a rig file's ``power.url`` names it."""
        return f"http://{self.host}:{self.port}/"

    def document(self) -> dict[str, Any]:
        """The NETIO JSON document (Agent + Outputs)."""
        with self._lock:
            outputs = [
                {
                    "ID": i,
                    "Name": self.names.get(i, f"output_{i}"),
                    "State": int(self.state[i]),
                    "Action": 6,
                    "Delay": self.delay_ms[i],
                    "Current": 120 if self.state[i] and i == self.outlet else 0,
                    "PowerFactor": 0.9 if self.state[i] and i == self.outlet else 0,
                    "Load": 26 if self.state[i] and i == self.outlet else 0,
                    "Energy": 0,
                }
                for i in sorted(self.state)
            ]
        return {
            "Agent": {
                "Model": self.MODEL,
                "Version": "3.4.0",
                "JSONVer": "2.1",
                "DeviceName": "stblab-pdu",
                "SerialNumber": self.serial_number,
                "NumOutputs": self.count,
                "Uptime": int(time.monotonic()),
            },
            "GlobalMeasure": {"Voltage": 230.1, "Frequency": 50.0},
            "Outputs": outputs,
        }

    def _set(self, outlet: int, on: bool) -> None:
        # The box is told inside the lock: two requests racing must not leave the box powered
        # the other way from what the outlet reports.
        with self._lock:
            if self.state[outlet] == on:
                return
            self.state[outlet] = on
            if outlet == self.outlet:
                self.on_change(on)

    def apply(self, outlet: int, action: int, delay_ms: int | None = None) -> None:
        """Perform a NETIO action on an outlet; short off/on restore the state after ``Delay`` ms."""
        if delay_ms is not None:
            self.delay_ms[outlet] = delay_ms
        delay = self.delay_ms[outlet] / 1000.0
        if action == 0:
            self._set(outlet, False)
        elif action == 1:
            self._set(outlet, True)
        elif action in (2, 3):
            first = action == 3
            self._set(outlet, first)
            timer = threading.Timer(delay, self._set, (outlet, not first))
            timer.daemon = True
            timer.start()
        elif action == 4:
            with self._lock:
                self._set(outlet, not self.state[outlet])

    def parse_outputs(self, raw: bytes) -> list[tuple[int, int, int | None]]:
        """The ``(outlet, action, delay_ms)`` of a POST body, in order; ValueError, KeyError or
        TypeError (the handler answers 400 with it) when the body is not a valid request."""
        body = json.loads(raw or b"null")
        outputs = body["Outputs"]
        if not isinstance(outputs, list):
            raise ValueError("'Outputs' must be a list")
        todo: list[tuple[int, int, int | None]] = []
        for item in outputs:
            oid, action = int(item["ID"]), int(item.get("Action", 5))
            if oid not in self.state:
                raise ValueError(f"unknown output ID {oid}")
            if action not in range(0, 7):
                raise ValueError(f"unknown action {action}")
            delay = item.get("Delay")
            todo.append((oid, action, int(delay) if delay is not None else None))
        return todo

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(_NetioHandler):
            pdu = server

        return Handler


class _NetioHandler(BaseHTTPRequestHandler):
    """NETIO's JSON API (GET/POST /netio.json) over the :class:`PduServer` in :attr:`pdu`."""

    pdu: PduServer
    server_version = "NETIO-HTTP/3.4"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="netio"')
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.pdu.auth is None:
            return True
        want = "Basic " + base64.b64encode(f"{self.pdu.auth[0]}:{self.pdu.auth[1]}".encode()).decode()
        if self.headers.get("Authorization") == want:
            return True
        self._send(401, {"error": "authentication required"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if not self._authorised():
            return
        if self.path.split("?")[0] != "/netio.json":
            self._send(404, {"error": f"no such resource: {self.path}"})
            return
        self._send(200, self.pdu.document())

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        if not self._authorised():
            return
        if self.path.split("?")[0] != "/netio.json":
            self._send(404, {"error": f"no such resource: {self.path}"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > 65536:
                raise ValueError("request too large")
            if length < 0:  # read(-1) would wait for the client to close
                raise ValueError("negative Content-Length")
            todo = self.pdu.parse_outputs(self.rfile.read(length))
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, {"error": f"bad request: {exc}"})
            return
        for oid, action, delay in todo:
            self.pdu.apply(oid, action, delay)
        self._send(200, self.pdu.document())


__all__ = ["PduServer"]
