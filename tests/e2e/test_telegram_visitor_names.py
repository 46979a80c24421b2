"""A web chat visitor as a Telegram agent sees them, end to end (aiogram against the loopback Bot API server):
named "Visitor 4821" in the new-ticket notice, /queue, /take, the customer card and /history, never by the
visitor's id; the visitor's follow-up is forwarded by name and acknowledged to them once."""

from __future__ import annotations

import re

import pytest

from bot.app import App
from bot.assistant.texts import say
from channels.memory import MemoryChannel
from channels.webchat.channel import visitor_name
from crm_store.models import Ticket
from crm_store.repositories import agents as agents_repo
from tests.e2e.botapi_server import BotApiServer
from tests.e2e.polling import polling_channel, polling_settings

ANA = 9001
FIRST, SECOND = "v" + "1a" * 16, "v" + "2b" * 16


@pytest.fixture
async def desk(db):
    async with BotApiServer() as api:
        settings = polling_settings(db.url, db.schema)
        telegram = polling_channel(api)
        webchat = MemoryChannel("webchat")
        app = App(settings, channels=[telegram, webchat])
        await app.start()
        async with app.sessions() as s, s.begin():
            await agents_repo.add_agent(s, name="Ana", role="agent", capacity=1, addresses={"telegram": str(ANA)})
        try:
            yield app, api, webchat
        finally:
            await app.stop()


async def test_a_telegram_agent_sees_visitors_by_name_only(desk):
    app, api, webchat = desk
    ana = api.user(ANA, "Ana")

    async def answer(pattern: str, after: int = 0) -> dict:
        rx = re.compile(pattern, re.S)
        return await api.wait_for(
            lambda: next((m for m in api.sent_to(ANA)[after:] if rx.search(m["text"])), None), 8.0
        )

    async def ask(text: str, pattern: str) -> str:
        before = len(api.sent_to(ANA))
        api.user_message(ana, text)
        return (await answer(pattern, before))["text"]

    first, second = visitor_name(FIRST), visitor_name(SECOND)
    await webchat.receive(FIRST, "My order 31 never came")
    notice = await answer(r"New ticket T-\d+ .*order 31")
    tid = int(re.search(r"T-(\d+)", notice["text"]).group(1))
    assert f"From: {first}" in notice["text"]
    await webchat.receive(SECOND, "Where is parcel 77?")
    waiting = await answer(r"New ticket T-\d+ .*parcel 77.*Waiting in queue")
    other = int(re.search(r"T-(\d+)", waiting["text"]).group(1))
    assert f"From: {second}" in waiting["text"]

    queue = await ask("/queue", r"Waiting \(1\)")
    assert f"T-{other}" in queue and second in queue
    await webchat.receive(FIRST, "hello? anyone?")
    forwarded = await answer(rf"T-{tid} · .*hello\? anyone\?")
    assert forwarded["text"].startswith(f"T-{tid} · {first}:")
    async with app.sessions() as s:
        customer_id = (await s.get(Ticket, tid)).customer_id
    card = await ask(f"/customer C-{customer_id}", rf"C-{customer_id}\)")
    assert card.startswith(f"{first} (C-{customer_id})") and f"webchat:{first}" in card
    history = await ask(f"/history T-{tid}", r"History of")
    assert history.startswith(f"History of {first} (C-{customer_id})")
    taken = await ask(f"/take {other}", rf"T-{other} is yours|T-{other} is being handled")
    await app.outbox.drain()
    everything = [m["text"] for m in api.sent_to(ANA)]
    assert all(FIRST not in t and SECOND not in t for t in everything), "a visitor id reached the agent"
    assert taken
    assert webchat.sent_to(FIRST).count(say("followup_added", None, ticket=tid)) == 1
