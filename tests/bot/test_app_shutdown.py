"""Stopping the App: channels stop receiving first, the outbox then sends what is due, and whatever those last
sends opened again (a client, a session) is closed before the App returns."""

from __future__ import annotations

import asyncio

from bot.app import App
from bot.settings import NluSettings, Settings
from channels.memory import MemoryChannel


class ClientChannel(MemoryChannel):
    """Sends through a client it opens when it has none, as the Telegram, WhatsApp and webhook channels do, and
    closes it on stop. Its sends wait for the App to be stopping: they are the outbox's drain at shutdown."""

    def __init__(self) -> None:
        super().__init__("memory")
        self.client_open = False
        self.stopping = asyncio.Event()

    async def stop(self) -> None:
        self.client_open = False
        self.stopping.set()
        await super().stop()

    async def send(self, message):
        await self.stopping.wait()
        self.client_open = True
        return await super().send(message)


async def test_what_the_shutdown_drain_opened_is_closed_again(db):
    channel = ClientChannel()
    settings = Settings(database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False), channels=[])
    app = App(settings, channels=[channel])
    await app.start()
    await channel.receive("c1", "I need a person please")  # stored; its acknowledgement waits in the outbox
    await app.stop()
    assert [m.recipient for m in channel.sent] == ["c1"], "the acknowledgement went out during the stop"
    assert not channel.client_open, "the client the drain opened was left open"
