"""Private PostgreSQL and Redis servers for fault tests: their own ports and data folders, so a test may stop,
kill -9 and restart them without touching the shared services.

API (plain classes, plus one pytest fixture each):

    pg = PostgresServer.create()      # initdb on a free port (as the `postgres` user when run as root)
    pg.start(); pg.url                # postgresql+asyncpg://postgres@127.0.0.1:<port>/postgres
    pg.stop()                         # pg_ctl stop -m fast (clean)
    pg.kill()                         # kill -9 of the postmaster (crash; start() runs recovery)
    pg.destroy()                      # stop and remove the data folder

    rd = RedisServer.create(aof=False)  # redis-server on a free port, nothing persisted unless aof=True
    rd.start(); rd.url                # redis://127.0.0.1:<port>/0
    rd.stop() / rd.kill()             # SHUTDOWN NOSAVE / kill -9
    rd.restart(empty=True)            # kill -9, wipe the data folder, start: what a non-persistent Redis does
    rd.destroy()

Fixtures `private_postgres` and `private_redis` yield a started server and destroy it after the test.
`free_port()` and `wait_port()` are exported for tests that start other processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "redis-server"


def _pg_bindir() -> Path | None:
    """Where initdb and pg_ctl live: TIERDESK_PG_BIN, else pg_config's answer, else Debian's versioned folder."""
    if os.environ.get("TIERDESK_PG_BIN"):
        return Path(os.environ["TIERDESK_PG_BIN"])
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if found and (Path(found) / "initdb").exists():
            return Path(found)
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
    )
    return versions[-1] if versions else None


PG_BIN = _pg_bindir()


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, *, up: bool = True, timeout: float = 20.0) -> None:
    """Wait until something accepts on `port` (or, with up=False, until nothing does)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not come {'up' if up else 'down'} within {timeout}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _as_service_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as `postgres` then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _bin(name: str) -> str:
    if PG_BIN is not None and (PG_BIN / name).exists():
        return str(PG_BIN / name)
    return shutil.which(name) or name


@dataclass
class PostgresServer:
    """One private PostgreSQL cluster: trust auth on 127.0.0.1:<port>, fsync off (tests, not durability)."""

    port: int
    data: Path
    root: Path

    @classmethod
    def create(cls) -> PostgresServer:
        root = Path(tempfile.mkdtemp(prefix="tierdesk-pg-"))
        data = root / "data"
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o755)
        subprocess.run(
            _as_service_user(
                [_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
        return cls(port=free_port(), data=data, root=root)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_service_user(
                [
                    _bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-l",
                    str(self.root / "log"),
                    "-w",
                    "-t",
                    "30",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        wait_port(self.port)

    def stop(self) -> None:
        subprocess.run(
            _as_service_user([_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]), capture_output=True
        )
        wait_port(self.port, up=False)

    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """kill -9 the postmaster and its backends (a crash; the next start() recovers)."""
        pid = self.pid()
        if pid is None:
            return
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        procs = [pid, *map(int, children)]
        for each in procs:
            try:
                os.kill(each, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(_alive(each) for each in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        for lock in self.root.glob(".s.PGSQL.*"):
            lock.unlink(missing_ok=True)

    def destroy(self) -> None:
        self.stop()
        if self.pid() is not None:
            self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RedisServer:
    """One private redis-server; with aof=True every write is appended and fsynced (appendfsync always)."""

    port: int
    root: Path
    aof: bool = False
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @classmethod
    def create(cls, *, aof: bool = False) -> RedisServer:
        return cls(port=free_port(), root=Path(tempfile.mkdtemp(prefix="tierdesk-redis-")), aof=aof)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--logfile",
            str(self.root / "log"),
        ]
        argv += ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        _wait_redis_loaded(self.port)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        self.proc.wait(10)
        self.proc = None
        wait_port(self.port, up=False)

    def kill(self) -> None:
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None
        wait_port(self.port, up=False)

    def restart(self, *, empty: bool = False) -> None:
        """kill -9 and start again; empty=True also wipes the data folder (a Redis without persistence)."""
        self.kill()
        if empty:
            for item in self.root.iterdir():
                if item.name != "log":
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
        self.start()

    def destroy(self) -> None:
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def _wait_redis_loaded(port: int, timeout: float = 20.0) -> None:
    """redis-server accepts before it finished loading the AOF; wait for PING to answer PONG."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"redis on {port} did not answer PING within {timeout}s")


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A started private PostgreSQL; removed after the test."""
    server = PostgresServer.create()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A started private Redis without persistence; removed after the test."""
    server = RedisServer.create()
    server.start()
    try:
        yield server
    finally:
        server.destroy()
