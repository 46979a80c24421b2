"""A database outage under Telegram long polling in direct mode (a private PostgreSQL, stopped while a page of
updates from several chats arrives): nothing is lost or stored twice, each chat's messages are stored in the
order written, the page is confirmed to Telegram only once all of it is stored, and the failure is logged once
per page rather than once per update and retry."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import func, select

from bot.app import App
from crm_store.engine import upgrade
from crm_store.models import Contact
from tests.e2e.botapi_server import BotApiServer
from tests.e2e.polling import polling_channel, polling_settings
from tests.fault.test_intake_redis import until

pytestmark = pytest.mark.timeout(90)

CHATS, EACH, DOWN_S = 5, 4, 3.0


async def test_a_database_outage_under_polling_loses_nothing_and_keeps_each_chat_in_order(private_postgres, caplog):
    await upgrade(private_postgres.url)
    settings = polling_settings(private_postgres.url)
    caplog.set_level(logging.WARNING, logger="channels.telegram.pages")
    async with BotApiServer() as api:
        app = await App(settings, channels=[polling_channel(api)]).start()
        try:
            await asyncio.to_thread(private_postgres.stop)
            users = [api.user(7000 + c, f"Chat {c}") for c in range(CHATS)]
            for i in range(EACH):  # interleaved, as a burst arrives: one page
                for user in users:
                    api.user_message(user, f"{user['id']} message {i}")
            await asyncio.sleep(DOWN_S)
            assert api.unconfirmed == CHATS * EACH, "nothing confirmed to Telegram while nothing could be stored"
            await asyncio.to_thread(private_postgres.start)
            await until(lambda: _stored(app, CHATS * EACH), 60)
            async with app.sessions() as s:
                rows = (
                    await s.execute(
                        select(Contact.address, Contact.text).where(Contact.direction == "in").order_by(Contact.id)
                    )
                ).all()
            for user in users:
                assert [t for a, t in rows if a == str(user["id"])] == [
                    f"{user['id']} message {i}" for i in range(EACH)
                ]
            assert len(rows) == len(set(rows)) == CHATS * EACH
            await until(lambda: _confirmed(api), 10)  # the next getUpdates confirms the stored page
        finally:
            await app.stop()
    # every chat's first update failed, the rest waited behind it: one line for the page
    said = [r.getMessage() for r in caplog.records if r.name == "channels.telegram.pages"]
    assert len(said) == 1 and said[0].startswith(f"telegram: {CHATS * EACH} of {CHATS * EACH} updates not stored"), said


async def _stored(app: App, n: int) -> bool:
    try:
        async with app.sessions() as s:
            return await s.scalar(select(func.count()).select_from(Contact).where(Contact.direction == "in")) >= n
    except Exception:  # the database is still coming back
        return False


async def _confirmed(api: BotApiServer) -> bool:
    return api.unconfirmed == 0
