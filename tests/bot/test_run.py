"""`tierdesk run` as an operator runs it: it serves, answers health checks, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx


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
