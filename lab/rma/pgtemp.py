"""A private, throw-away PostgreSQL cluster for tests and benchmarks.

``initdb`` + ``pg_ctl`` into a temporary folder, listening on a free loopback port, trust auth.
PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` OS user
(created when missing) through ``runuser``.

Example::

    pg = TempPostgres()
    pg.init(); pg.start()
    url = pg.create_db()          # postgresql://postgres@127.0.0.1:PORT/t_...
    ...
    pg.cleanup()
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


def available() -> bool:
    """True when initdb and pg_ctl can be found."""
    return bool(_pg_bin("initdb") and _pg_bin("pg_ctl"))


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for cand in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(cand)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    """A throw-away PostgreSQL cluster owned by the ``postgres`` OS user (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed (see available())")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="stblab-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        if self._as_root:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
            shutil.chown(self.dir, "postgres", "postgres")
        res = self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed: {res.stderr}")

    def start(self) -> None:
        for _ in range(5):
            opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
            res = self._run(self.pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
            if res.returncode == 0:
                return
            self.port = _free_port()  # someone took the port: try another
        raise RuntimeError(f"pg_ctl start failed: {res.stderr} {(self.dir / 'log').read_text()[-2000:]}")

    def stop(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def create_db(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def cleanup(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
