"""A burst through the real Telegram channel (long polling against the loopback Bot API server): a page of
updates from many chats is stored as one dispatch batch, each chat's messages in the order written, and the
agents get one digest of the waiting tickets, whose Take button works."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.app import App
from crm_store.models import Contact, Ticket
from crm_store.repositories import agents as agents_repo
from tests.e2e.botapi_server import BotApiServer
from tests.e2e.polling import polling_channel, polling_settings

ANA, VIC = 9001, 9002
CUSTOMERS = list(range(5001, 5007))


@pytest.fixture
async def desk(db):
    async with BotApiServer() as api:
        settings = polling_settings(db.url, db.schema)
        telegram = polling_channel(api)
        app = App(settings, channels=[telegram])
        await app.start()
        async with app.sessions() as s, s.begin():
            for uid, name in ((ANA, "Ana"), (VIC, "Vic")):
                await agents_repo.add_agent(s, name=name, capacity=1, addresses={"telegram": str(uid)})
        try:
            yield app, api
        finally:
            await app.stop()


async def test_a_page_of_updates_is_one_batch_and_one_digest_per_agent(desk):
    app, api = desk
    batches = app.dispatcher.batches
    for uid in CUSTOMERS:  # all queued before the channel's long poll returns: one page
        user = api.user(uid, f"Customer {uid}")
        api.user_message(user, f"I need a person, order {uid}")
        api.user_message(user, f"second message of {uid}")
    for uid in CUSTOMERS:
        await api.wait_for(lambda uid=uid: any("ticket is T-" in t for t in api.texts_to(uid)), 10.0)
    assert app.dispatcher.batches - batches <= 2, "a chat's second message waits for its first: two batches"

    async with app.sessions() as s:
        rows = (
            await s.execute(select(Contact.address, Contact.text).where(Contact.direction == "in").order_by(Contact.id))
        ).all()
        tickets = list(await s.scalars(select(Ticket).order_by(Ticket.id)))
    for uid in CUSTOMERS:  # each chat in the order written
        assert [t for a, t in rows if a == str(uid)] == [f"I need a person, order {uid}", f"second message of {uid}"]
    waiting = [t.id for t in tickets if t.assignee_id is None]
    assert len(tickets) == 6 and len(waiting) == 4

    digests = {}
    for agent in (ANA, VIC):
        digest = await api.wait_for(
            lambda agent=agent: next((m for m in api.sent_to(agent) if m["text"].startswith("4 new tickets")), None)
        )
        assert [m["text"].split(" ")[1] for m in api.sent_to(agent) if "Waiting in queue" in m["text"]] == []
        keyboard = [b["callback_data"] for row in digest["reply_markup"]["inline_keyboard"] for b in row]
        assert keyboard == [*(f"/take {t}" for t in waiting[:3]), "/queue"]
        assert re.findall(r"^T-(\d+) · ", digest["text"], re.M) == [str(t) for t in waiting]
        digests[agent] = digest

    # A digest is about several tickets: a reply to it is sent to no customer, and the agent is told how to answer
    api.user_message(api.user(VIC, "Vic"), "on it", reply_to=digests[VIC]["message_id"])
    await api.wait_for(lambda: any("/reply <ticket>" in t for t in api.texts_to(VIC)), 8.0)
    assert not any("on it" in t for uid in CUSTOMERS for t in api.texts_to(uid))

    api.press_button(api.user(ANA, "Ana"), digests[ANA], f"/take {waiting[0]}")
    await api.wait_for(lambda: any(f"T-{waiting[0]} is yours" in t for t in api.texts_to(ANA)), 8.0)
    async with app.sessions() as s:
        assert (await s.get(Ticket, waiting[0])).assignee_id is not None
