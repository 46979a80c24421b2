"""Poison through the real polling channel: generated updates served by the loopback Bot API server, read by
`TelegramChannel` and stored by the real App on both databases. The channel must keep polling: every well-formed
message among the poison is stored, the last message after all of it arrives, and every update is confirmed."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from bot.app import App
from channels.telegram.updates import update_to_inbound
from crm_store.models import Contact
from tests.e2e.botapi_server import BotApiServer
from tests.e2e.polling import polling_channel, polling_settings
from tests.fuzz.nasty import collect, json_safe, json_value, mutated
from tests.fuzz.telegram_updates import TEMPLATES

POISON = 300
# The server numbers the updates itself (its own bookkeeping needs integer ids), so the bodies are broken below it.
BODIES = [{k: v for k, v in t.items() if k != "update_id"} for t in TEMPLATES]


KNOWN = [  # what the fuzzer found: each stopped a channel that retries until the database takes the message
    {"message": {"message_id": 1, "from": {"id": 42, "username": "nul\x00"}, "chat": {"id": 42}, "text": "a"}},
    {"message": {"message_id": 2, "from": {"id": 42}, "chat": {"id": "42\x00"}, "text": "b"}},
    {"message": {"message_id": 3, "from": {"id": 42}, "chat": {"id": 42}, "text": "\ud800 c", "date": 10**20}},
    {"callback_query": {"id": "cb\x00", "from": {"id": 42}, "data": "d"}},
    {"message": {"message_id": 4, "from": {"id": 42}, "chat": "42", "text": "e"}},
]


def poison_bodies(count: int) -> list[dict]:
    """Generated update bodies a server can send as JSON, each a dict (the update's own id is the server's)."""
    generated = collect(mutated(BODIES, json_value, most=2), count * 2)
    bodies = KNOWN + [b for b in generated if isinstance(b, dict) and json_safe(b)]
    bodies = [{k: v for k, v in b.items() if k != "update_id"} for b in bodies]
    assert len(bodies) >= count, len(bodies)
    return bodies[:count]


@pytest.fixture
async def polled(db):
    async with BotApiServer() as api:
        settings = polling_settings(db.url, db.schema)
        telegram = polling_channel(api)
        telegram.poll_backoff_s = 0.05
        app = App(settings, channels=[telegram])
        await app.start()
        try:
            yield app, api
        finally:
            await app.stop()


async def test_the_channel_keeps_polling_through_poison(polled):
    app, api = polled
    started = time.monotonic()
    ok = api.user(7777, "Ok")
    pushed = [api.push(body) for body in poison_bodies(POISON)]
    last = api.user_message(ok, "still there after all of that?")
    await api.wait_for(lambda: api._confirmed_below > last["update_id"], within=60)
    async with app.sessions() as s:
        stored = await s.scalar(select(Contact).where(Contact.external_id == f"m7777:{last['message']['message_id']}"))
    assert stored is not None and stored.text == "still there after all of that?"
    readable = {m.external_id for m in map(update_to_inbound, pushed) if m is not None}
    async with app.sessions() as s:
        stored_ids = set(await s.scalars(select(Contact.external_id).where(Contact.direction == "in")))
    print(f"telegram polling: {len(pushed)} generated updates through the channel, {len(readable)} distinct "
          f"readable messages, {time.monotonic() - started:.1f}s")
    assert len(pushed) >= POISON
    assert len(readable) >= 10
    assert readable <= stored_ids, sorted(readable - stored_ids)[:5]  # nothing readable was lost with the poison
