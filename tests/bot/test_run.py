"""`tierdesk run` as an operator runs it: it serves, answers health checks, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from channels.base import ChannelTraits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_serves_health_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "TIERDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
        "TIERDESK_CHANNELS": '["webchat"]',
        "TIERDESK_WEB__PORT": str(port),
        "TIERDESK_NLU__ENABLED": "false",
        "TIERDESK_STATE_DIR": str(tmp_path / "state"),
    }
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "run"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                if health.status_code == 200 and ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        assert ready is not None and ready.status_code == 200, proc.stdout.read() if proc.poll() is not None else ""
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopping: closing channels, draining the outbox" in out
    assert "Traceback" not in out


class SmsSettings:
    """A settings section of a channel the core has never heard of."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway


class SmsChannel(ChannelTraits):
    """A new channel: one class with its own `from_settings`, plus one registry line (added by the test)."""

    name = "sms"

    def __init__(self, gateway: str, *, receiving: bool) -> None:
        self.gateway, self.receiving = gateway, receiving

    @classmethod
    def from_settings(cls, section, *, send_only=False):
        return cls(section.gateway, receiving=not send_only)

    async def start(self, deliver) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, message) -> str:
        return "sms-1"


@pytest.fixture
def sms_registered(monkeypatch):
    from channels import base

    monkeypatch.setitem(base._KNOWN, "sms", base.Entry(f"{__name__}:SmsChannel"))
    base.traits_of.cache_clear()
    yield
    base.traits_of.cache_clear()


def test_runner_builds_every_configured_channel_by_its_own_class(sms_registered):
    from bot.runner import configured_channels
    from bot.settings import Settings, WebSettings

    class WithSms(Settings):
        sms: object = None

    settings = WithSms(channels=["sms", "webchat", "console"], sms=SmsSettings("http://127.0.0.1:9/gw"),
                       web=WebSettings(max_message_chars=777, webhook_url="http://127.0.0.1:9/h", webhook_secret="k"))
    built = configured_channels(settings)
    assert [(c.name, type(c).__name__) for c in built] == [
        ("sms", "SmsChannel"), ("webchat", "WebChatChannel"), ("console", "ConsoleChannel"),
        ("webhook", "WebhookChannel"),  # implied by its section's URL, not named in `channels`
    ]
    assert built[0].gateway == "http://127.0.0.1:9/gw" and built[0].receiving and built[1].max_message_chars == 777
    senders = configured_channels(settings, send_only=True)
    assert [c.name for c in senders] == ["sms", "webhook"] and not senders[0].receiving


def test_an_unknown_or_misconfigured_channel_stops_startup_with_its_reason():
    from bot.runner import configured_channels
    from bot.settings import Settings

    with pytest.raises(SystemExit, match="unknown channel 'pager'"):
        configured_channels(Settings(channels=["pager"]))
    with pytest.raises(SystemExit, match=r"'telegram' is configured but cannot start: .*TIERDESK_TELEGRAM__TOKEN"):
        configured_channels(Settings(channels=["telegram"]))


def test_the_core_holds_no_channel_branch():
    """No module of the core names a channel in its logic (the CLI, the demo and importers hold data only)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "bot"
    name = r"""["'](telegram|email|webchat|console)["']"""
    named = re.compile(rf"==\s*{name}|{name}\s*(in|==)|for wanted in \(")
    parts = ("core", "routing", "tickets", "desk")
    core = [p for p in root.rglob("*.py") if p.parts[-2] in parts or p.name == "runner.py"]
    found = [f"{p.relative_to(root)}:{i}" for p in core for i, line in enumerate(p.read_text().splitlines(), 1)
             if named.search(line)]
    assert found == []
    assert "SEND_ONLY_UNSUPPORTED" not in (root / "runner.py").read_text()
