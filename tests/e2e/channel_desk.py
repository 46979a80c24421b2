"""What the WhatsApp and API-channel end-to-end tests share: the real App with Telegram (the desk, through the
loopback Bot API server) and the channel under test, its web app served by uvicorn on a loopback port, and the
contact log exported the way `tierdesk log export` writes it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bot.app import App
from bot.cli.log import _export
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings
from bot.web.app import serve
from channels.telegram import RateLimiter, TelegramChannel
from crm_store.repositories import agents as agents_repo
from tests.e2e.botapi_server import BotApiServer

FAST = RateLimiter(per_chat=1000, overall=1000, chat_burst=1000, overall_burst=1000)
ANA = 9001


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(db: Any, tmp_path: Path, **sections: Any) -> Settings:
    return Settings(
        database_url=db.url,
        database_schema=db.schema,
        state_dir=str(tmp_path / "state"),
        nlu=NluSettings(enabled=False),
        dispatch=DispatchSettings(batch_wait_ms=1.0),
        outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05, max_attempts=4),
        **sections,
    )


@contextlib.asynccontextmanager
async def running_desk(settings: Settings, channel: Any, api: BotApiServer, port: int) -> AsyncIterator[App]:
    """The App with Telegram and `channel`, agent Ana on Telegram, the web app on `port`."""
    telegram = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1, limiter=FAST)
    app = App(settings, channels=[telegram, channel])
    await app.start()
    async with app.sessions() as s, s.begin():
        await agents_repo.add_agent(s, name="Ana", role="agent", addresses={"telegram": str(ANA)})
    web = asyncio.create_task(serve(app, "127.0.0.1", port))
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.02)
        yield app
    finally:
        web.cancel()
        await asyncio.gather(web, return_exceptions=True)
        await app.stop()


async def agent_note(api: BotApiServer, pattern: str, within: float = 8.0) -> dict[str, Any]:
    """The first message to Ana in Telegram matching `pattern`."""
    rx = re.compile(pattern, re.S)
    return await api.wait_for(lambda: next((m for m in api.sent_to(ANA) if rx.search(m["text"])), None), within)


def ticket_of(message: dict[str, Any]) -> int:
    return int(re.search(r"T-(\d+)", message["text"]).group(1))


async def exported_log(settings: Settings, out: Path, channel: str) -> list[dict[str, Any]]:
    """The channel's contacts as `tierdesk log export --format jsonl --channel <channel>` writes them."""
    await _export(out, "jsonl", None, channel, None, True, settings=settings)
    text = await asyncio.to_thread(out.read_text, encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def repeated(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(direction, external id) of every contact logged more than once: empty means exactly once."""
    counts = Counter((r["direction"], r["external_id"]) for r in rows)
    return [key for key, n in counts.items() if n > 1]
