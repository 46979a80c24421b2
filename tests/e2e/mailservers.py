"""Real mail servers for tests: a throw-away dovecot (IMAP) on a loopback port, and an aiosmtpd relay that
records what we send and can be scripted to answer 4xx/5xx.

Dovecot runs from a generated config in a temporary folder (no SSL, one passwd-file user, Maildir). Run as root,
its mail processes drop to `nobody`, which therefore owns the mail folder; run as a normal user, everything
runs as that user. A missing dovecot skips the test, or fails it with TIERDESK_REQUIRE_SERVICES=1.

Usage: import the fixtures into a test module (`from tests.e2e.mailservers import dovecot_fixture  # noqa: F401`)
and ask for them by name (`dovecot`, `smtp_relay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

import aioimaplib
import pytest
from aiosmtpd.controller import Controller

try:  # the shared conftest is "tests.conftest" when tests/ is a package, plain "conftest" otherwise
    from tests.conftest import need_service
except ImportError:
    from conftest import need_service

USER = "support"
PASSWORD = "s3cret-test"


def _die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGTERM when the test process dies, so a killed run leaks no server."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"dovecot did not listen on {port} within {within}s")


_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = tierdesk-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{root}/mail/%u
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    """A running throw-away dovecot; `host`, `port`, `user`, `password` are what a client needs."""

    root: Path
    port: int
    proc: subprocess.Popen | None = None
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD

    @classmethod
    def start(cls) -> Dovecot:
        binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
        if binary is None:
            need_service("dovecot", "the dovecot binary is not installed (Debian package dovecot-imapd)")
        # Not under pytest's tmp_path: as root, that folder is private and the mail user could not reach it.
        root = Path(tempfile.mkdtemp(prefix="tierdesk-dovecot-"))
        root.chmod(0o755)
        if os.geteuid() == 0:
            account = pwd.getpwnam("nobody")
            uid, gid, user, group = account.pw_uid, account.pw_gid, "nobody", grp.getgrgid(account.pw_gid).gr_name
        else:
            uid, gid = os.getuid(), os.getgid()
            user, group = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
        (root / "mail").mkdir()
        os.chown(root / "mail", uid, gid)
        (root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        port = free_port()
        conf = root / "dovecot.conf"
        conf.write_text(_CONF.format(root=root, port=port, user=user, group=group, uid=uid, gid=gid))
        server = cls(root=root, port=port)
        server.proc = subprocess.Popen(
            [binary, "-c", str(conf), "-F"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            _wait_port(port, server.proc)
        except RuntimeError as exc:
            log = server.log()
            server.stop()
            need_service("dovecot", f"{exc}; log: {log[-2000:]}")
        return server

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def settings(self, **overrides) -> dict:
        """Keyword arguments for `EmailChannel` reading this server's INBOX."""
        values = {
            "imap_host": self.host,
            "imap_port": self.port,
            "imap_ssl": False,
            "imap_user": self.user,
            "imap_password": self.password,
            "imap_poll_s": 0.3,
        }
        values.update(overrides)
        return values

    async def client(self) -> aioimaplib.IMAP4:
        imap = aioimaplib.IMAP4(host=self.host, port=self.port, timeout=10)
        await imap.wait_hello_from_server()
        await imap.login(self.user, self.password)
        await imap.select("INBOX")
        return imap

    async def append(self, raw: bytes, mailbox: str = "INBOX") -> None:
        imap = await self.client()
        try:
            response = await imap.append(raw, mailbox=mailbox)
            assert response.result == "OK", response
        finally:
            await imap.logout()

    async def flags(self, mailbox: str = "INBOX") -> dict[str, set[str]]:
        """Message-ID → flags of every message in the mailbox (the last one wins for repeated ids)."""
        return dict(await self.messages(mailbox))

    async def messages(self, mailbox: str = "INBOX") -> list[tuple[str, set[str]]]:
        """(Message-ID, flags) of every message in the mailbox, in UID order."""
        imap = await self.client()
        try:
            await imap.select(mailbox)
            response = await imap.uid("fetch", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        finally:
            await imap.logout()
        out: list[tuple[str, set[str]]] = []
        lines = response.lines
        for i, line in enumerate(lines):
            if isinstance(line, bytes) and b"FETCH" in line and i + 1 < len(lines):
                flags = set(re.search(rb"FLAGS \(([^)]*)\)", line).group(1).decode().split())
                header = email.message_from_bytes(bytes(lines[i + 1]), policy=policy.compat32)
                out.append((str(header.get("Message-ID", "")).strip(), flags))
        return out


@pytest.fixture(name="dovecot")
def dovecot_fixture() -> Iterator[Dovecot]:
    server = Dovecot.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RecordingRelay:
    """An SMTP relay (aiosmtpd handler) that records every accepted mail; `answers` scripts the next replies."""

    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    """Replies to DATA, used first-in first-out before the default "250 OK" (e.g. "451 4.3.0 busy")."""

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.answers:
            answer = self.answers.pop(0)
            if not answer.startswith("2"):
                return answer
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.received.append(email.message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 OK"

    async def wait_for(self, count: int, within: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + within
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"relay got {len(self.received)} mails, expected {count}")
            await asyncio.sleep(0.02)
        return self.received


@dataclass
class SmtpRelay:
    host: str
    port: int
    handler: RecordingRelay

    def settings(self, **overrides) -> dict:
        values = {"smtp_host": self.host, "smtp_port": self.port, "smtp_starttls": False, "smtp_tls": False}
        values.update(overrides)
        return values


@pytest.fixture(name="smtp_relay")
async def smtp_relay_fixture() -> AsyncIterator[SmtpRelay]:
    handler = RecordingRelay()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpRelay("127.0.0.1", port, handler)
    finally:
        controller.stop()
