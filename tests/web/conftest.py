"""A started App with the web chat channel and a console, its web app, an HTTP client in process, and (for
WebSockets) the same web app served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from bot.app import App
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings, WebSettings
from bot.web import create_web_app, serve
from bot.web.auth import hash_password
from channels.memory import MemoryChannel
from channels.webchat import WebChatChannel
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import web as web_repo

PASSWORD = "correct horse battery"


@dataclass
class WebEnv:
    app: App
    web: object
    client: httpx.AsyncClient
    webchat: WebChatChannel
    console: MemoryChannel
    base_url: str = ""

    async def agent(self, name: str, *, role: str = "agent", tiers: list[str] | None = None,
                    password: str = PASSWORD) -> int:
        async with self.app.sessions() as s, s.begin():
            agent = await agents_repo.add_agent(s, name=name, role=role, addresses={"console": name.lower()},
                                                email=f"{name.lower()}@desk.example", tiers=tiers or [])
            await web_repo.set_password_hash(s, agent.id, hash_password(password))
            return agent.id

    async def login(
        self, name: str, password: str = PASSWORD, client: httpx.AsyncClient | None = None
    ) -> httpx.Response:
        client = client or self.client
        page = await client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return await client.post("/login", data={"email": f"{name.lower()}@desk.example", "password": password,
                                                 "csrf": token, "next": "/"})


def web_settings(db, tmp_path, **web) -> Settings:
    return Settings(
        database_url=db.url, database_schema=db.schema, state_dir=str(tmp_path / "state"),
        nlu=NluSettings(enabled=False), outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05),
        dispatch=DispatchSettings(batch_wait_ms=1.0), web=WebSettings(**{"max_message_chars": 500, **web}),
    )


@pytest.fixture
async def web_env(db, tmp_path, request) -> AsyncIterator[WebEnv]:
    extra = getattr(request, "param", {}) or {}
    settings = web_settings(db, tmp_path, **extra)
    webchat = WebChatChannel(max_message_chars=settings.web.max_message_chars)
    console = MemoryChannel("console")
    channels = [webchat, console]
    if settings.web.webhook_url:
        channels.append(MemoryChannel("webhook"))
    app = App(settings, channels=channels)
    await app.start()
    web = create_web_app(app)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://testserver")
    try:
        yield WebEnv(app, web, client, webchat, console)
    finally:
        await client.aclose()
        await app.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def live(web_env: WebEnv) -> AsyncIterator[WebEnv]:
    """The same app served by uvicorn on a free local port (for WebSocket clients and the browser)."""
    port = free_port()
    task = asyncio.create_task(serve(web_env.app, "127.0.0.1", port))
    web_env.base_url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as probe:
        for _ in range(100):
            try:
                if (await probe.get(f"{web_env.base_url}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        else:
            raise RuntimeError("uvicorn did not start")
    try:
        yield web_env
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
