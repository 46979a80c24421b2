"""An App on the test database with in-memory channels; the bot is off unless a test plugs one in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from bot.app import App
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings
from channels.memory import MemoryChannel
from crm_store.repositories import agents as agents_repo


def settings_for(db, **overrides) -> Settings:
    base = dict(
        database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False),
        outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05), dispatch=DispatchSettings(batch_wait_ms=1.0),
    )
    base.update(overrides)
    return Settings(**base)


class Harness:
    def __init__(self, app: App, channels: dict[str, MemoryChannel]) -> None:
        self.app = app
        self.ch = channels

    async def agent(self, name: str = "Alice", role: str = "agent", console: str | None = None, **fields):
        async with self.app.writer_sessions() as s, s.begin():
            return await agents_repo.add_agent(
                s, name=name, role=role, addresses={"console": console or name.lower()}, **fields
            )

    async def settle(self) -> None:
        await self.app.outbox.drain()


@pytest.fixture
async def harness_factory(db) -> AsyncIterator[Callable[..., Harness]]:
    started: list[App] = []

    async def make(**overrides) -> Harness:
        channels = {n: MemoryChannel(n) for n in ("telegram", "email", "console", "webchat")}
        responder = overrides.pop("responder", None)
        app = App(settings_for(db, **overrides), channels=list(channels.values()), responder=responder)
        await app.start()
        started.append(app)
        return Harness(app, channels)

    yield make
    for app in started:
        await app.stop()


@pytest.fixture
async def h(harness_factory) -> Harness:
    return await harness_factory()
