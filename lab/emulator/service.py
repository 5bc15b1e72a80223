"""The lifecycle every emulator server shares: bind, serve in a named thread, drop clients, stop.

The emulated rig's instruments (iTach and lircd blasters, HDMI capture, PDU, sshd) are network
servers with the same life: bind a port in :meth:`Service.start` (``OSError`` when it is taken),
serve in a named daemon thread, keep the client sockets it holds so :meth:`Service.stop` can cut
them at once (a real instrument losing power does not say goodbye), and release the port.
``stop()`` may be called any number of times; ``port`` and ``url`` say where it listens.

A server built on :mod:`socketserver` derives from :class:`SocketServerService` and only says how
to make its server; anything else derives from :class:`Service` and fills in ``_bind``/``_run``/
``_release``. Example::

    class EchoServer(SocketServerService):
        thread_name = "echo"

        def _make_server(self) -> socketserver.BaseServer:
            return _TcpServer((self.host, self.requested_port), _EchoHandler)

    with EchoServer("127.0.0.1", 0) as srv:
        socket.create_connection(("127.0.0.1", srv.port))
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any


class Service:
    """One emulator server (see module docstring). Subclasses fill in the three hooks."""

    #: Name of the serving thread (the port is appended), as ``ps -T`` and thread dumps show it.
    thread_name = "service"
    #: How long :meth:`stop` waits for the serving thread.
    join_timeout = 2.0

    def __init__(self, host: str | None, port: int) -> None:
        self.host = host
        self.requested_port = port
        self._bound = False
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.RLock()  # guards the client set; subclasses may re-enter it
        self._socks: set[socket.socket] = set()

    # -- hooks --------------------------------------------------------------------------------

    def _bind(self) -> None:
        """Bind the listening socket (``OSError`` when the address is in use)."""
        raise NotImplementedError

    def _run(self) -> None:
        """Serve until :meth:`_release` makes this return (runs in the service thread)."""
        raise NotImplementedError

    def _release(self) -> None:
        """Make :meth:`_run` return and close the listening socket."""
        raise NotImplementedError

    def _bound_port(self) -> int:
        """The port bound (only called while bound)."""
        return self.requested_port

    def _on_start(self) -> None:
        """After binding, before the service thread starts (e.g. make emitters, helper threads)."""

    def _on_stop(self) -> None:
        """First step of :meth:`stop`, before clients are cut (e.g. stop sending)."""

    def _after_stop(self) -> None:
        """Last step of :meth:`stop` (e.g. remove a unix socket file)."""

    def _client_gone(self, sock: socket.socket) -> None:
        """A client tracked with :meth:`_track` went away (e.g. release what it held)."""

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None

    def bind(self) -> None:
        """Bind now (``start`` binds when this was not called): for servers whose port must be known early."""
        if not self._bound:
            self._bind()
            self._bound = True

    def start(self) -> None:
        """Bind (``OSError`` when the port is in use) and start serving in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping.clear()
        self.bind()
        self._on_start()
        self._thread = threading.Thread(target=self._run, name=f"{self.thread_name}-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, cut every client and release the port; a no-op when not running."""
        if not self._bound:
            return
        self._stopping.set()
        self._on_stop()
        self.drop_clients()
        self._release()
        self._bound = False
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.join_timeout)
        self._after_stop()

    def close(self) -> None:
        """Same as :meth:`stop`."""
        self.stop()

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where and who ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (the requested one before :meth:`start`)."""
        return self._bound_port() if self._bound else self.requested_port

    @property
    def url(self) -> str:
        """The address as a rig file names it."""
        return f"tcp://{self.host}:{self.port}"

    @contextlib.contextmanager
    def _track(self, sock: socket.socket) -> Iterator[None]:
        """Hold ``sock`` as a client of this service for the ``with`` block (cut by :meth:`stop`)."""
        with self._lock:
            self._socks.add(sock)
        try:
            yield
        finally:
            with self._lock:
                self._socks.discard(sock)
            self._client_gone(sock)

    def drop_clients(self) -> None:
        """Shut down every tracked client socket (their handlers see EOF and end)."""
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class SocketServerService(Service):
    """A :class:`Service` over a :mod:`socketserver` server; ``server.service`` points back here."""

    #: How often the serving loop checks for stop(): each stop() waits up to this long, and a rig
    #: stops its servers one after another (0.2 s made every emulator take ~1 s to stop).
    poll_interval = 0.05

    def __init__(self, host: str | None, port: int) -> None:
        super().__init__(host, port)
        self._server: socketserver.BaseServer | None = None

    def _make_server(self) -> socketserver.BaseServer:
        """The bound server (``OSError`` when the address is in use)."""
        raise NotImplementedError

    def _bind(self) -> None:
        server = self._make_server()
        server.service = self  # type: ignore[attr-defined]
        self._server = server

    def _run(self) -> None:
        assert self._server is not None
        self._server.serve_forever(poll_interval=self.poll_interval)

    def _release(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            if self._thread is not None:  # shutdown() waits for serve_forever: only when it runs
                server.shutdown()
            server.server_close()

    def _bound_port(self) -> int:
        assert self._server is not None
        address = self._server.server_address
        return int(address[1]) if isinstance(address, tuple) else self.requested_port


__all__ = ["Service", "SocketServerService"]
