"""Forum mode end to end: a supergroup with topics mirrors tickets, one topic per ticket. The real App on the test
database, the aiogram-driven Telegram channel and the loopback Bot API server; customers and agents play their
parts as Telegram users."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from bot.app import App
from bot.core.messages import DeliveryError, OutboundMessage
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings, TelegramSettings
from channels.telegram import RateLimiter, SendPolicy, TelegramChannel
from crm_store.models import Contact, Ticket
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import desk as desk_repo
from tests.e2e.botapi_server import BotApiServer

FAST = RateLimiter(per_chat=1000, overall=1000, chat_burst=1000, overall_burst=1000)
FORUM = -1001234567
ANA, MEI, BOB = 9001, 5001, 5002
NAMES = {ANA: "Ana", MEI: "Mei", BOB: "Bob"}
TICKET_TOPIC = re.compile(r"^T-(\d+) · potential · (\w+)$")


@dataclass
class Forum:
    app: App
    api: BotApiServer

    def user(self, uid: int) -> dict:
        return self.api.user(uid, NAMES.get(uid, "User"))

    def says(self, uid: int, text: str, **kwargs) -> dict:
        return self.api.user_message(self.user(uid), text, **kwargs)

    def says_in_topic(self, uid: int, thread: int, text: str) -> dict:
        chat = {"id": FORUM, "type": "supergroup", "title": "Desk", "is_forum": True}
        return self.api.user_message(self.user(uid), text, chat=chat, thread_id=thread)

    async def answer(self, chat: int, pattern: str, *, after: int = 0, thread: int | None = None) -> dict:
        """The first message the bot sent to `chat` (into `thread`, if given) matching `pattern`, from the
        `after`-th on."""
        rx = re.compile(pattern, re.S)

        def found() -> dict | None:
            sent = self.api.sent_to(chat) if thread is None else self.api.sent_in_topic(chat, thread)
            return next((m for m in sent[after:] if rx.search(m["text"])), None)

        return await self.api.wait_for(found, 8.0)

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.app.sessions() as s:
            return await s.get(Ticket, ticket_id)

    async def topic_of(self, ticket_id: int) -> str:
        """Waits until the ticket remembers its topic (written when the first post is recorded)."""
        for _ in range(160):
            if ref := (await self.ticket(ticket_id)).topic_ref:
                return ref
            await asyncio.sleep(0.05)
        raise AssertionError(f"T-{ticket_id} never got a topic")


async def _forum_app(db, api: BotApiServer, forum_chat_id: int | None) -> App:
    settings = Settings(
        database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False),
        outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05),
        dispatch=DispatchSettings(batch_wait_ms=1.0),
        telegram=TelegramSettings(forum_chat_id=forum_chat_id),
    )
    telegram = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1, limiter=FAST,
                               forum_chat_id=forum_chat_id)
    app = App(settings, channels=[telegram])
    await app.start()
    async with app.sessions() as s, s.begin():
        await agents_repo.add_agent(s, name="Ana", role="agent", capacity=5, addresses={"telegram": str(ANA)})
    return app


@pytest.fixture
async def forum(db):
    async with BotApiServer() as api:
        app = await _forum_app(db, api, FORUM)
        try:
            yield Forum(app, api)
        finally:
            await app.stop()


@pytest.fixture
async def no_forum(db):
    async with BotApiServer() as api:
        app = await _forum_app(db, api, None)
        try:
            yield Forum(app, api)
        finally:
            await app.stop()


async def test_a_ticket_lives_in_its_topic_from_first_message_to_close(forum):
    api = forum.api
    forum.says(MEI, "My parcel 8812 never arrived")
    created = await api.wait_for(lambda: api.calls_of("createForumTopic"), 8.0)
    assert created[0].params["chat_id"] == FORUM and created[0].status == 200
    title = TICKET_TOPIC.match(created[0].params["name"])
    assert title and title.group(2) == "Mei", created[0].params["name"]
    ticket_id, thread = int(title.group(1)), created[0].result["message_thread_id"]

    # The new-ticket notice with its buttons is the topic's first post; the ticket remembers its topic. Routing
    # gave it to Ana (online): the post says so and offers no "Take".
    notice = await forum.answer(FORUM, r"New ticket T-\d+ .*parcel 8812", thread=thread)
    assert notice["text"].endswith("Assigned to Ana")
    assert [b["callback_data"] for b in notice["reply_markup"]["inline_keyboard"][0]] == [
        f"/close {ticket_id}", f"/history T-{ticket_id}"]
    assert await forum.topic_of(ticket_id) == f"{FORUM}:{thread}"
    await forum.answer(MEI, rf"ticket is T-{ticket_id}")

    # Ana's plain message in the topic reaches Mei on her own chat, and Ana is told (as with /reply).
    said = forum.says_in_topic(ANA, thread, "Your parcel left the depot this morning.")
    await forum.answer(MEI, "left the depot")
    await forum.answer(ANA, rf"Queued for Mei on T-{ticket_id}")
    ticket = await forum.ticket(ticket_id)
    assert ticket.status == "pending" and ticket.first_responded_at is not None and ticket.assignee_id is not None

    # Mei's answer appears in the same topic; no second topic is opened.
    forum.says(MEI, "Great, thanks! When will it arrive?")
    await forum.answer(FORUM, r"Mei: Great, thanks! When will it arrive\?", thread=thread)
    assert len(api.calls_of("createForumTopic")) == 1

    # /close in the topic names no ticket: the topic does. The topic is closed, Mei is asked for a rating.
    forum.says_in_topic(ANA, thread, "/close parcel found")
    await forum.answer(ANA, rf"T-{ticket_id} closed\.")
    await forum.answer(FORUM, rf"T-{ticket_id} closed by Ana: parcel found", thread=thread)
    closing = await api.wait_for(lambda: api.calls_of("closeForumTopic"), 8.0)
    assert (closing[0].params["chat_id"], closing[0].params["message_thread_id"], closing[0].status) == (
        FORUM, thread, 200)
    assert api.topics[FORUM][thread]["closed"]
    csat = await forum.answer(MEI, r"How satisfied")
    assert [b["callback_data"] for b in csat["reply_markup"]["inline_keyboard"][0]] == [
        f"/csat {ticket_id} {n}" for n in range(1, 6)]
    closed = await forum.ticket(ticket_id)
    assert (closed.status, closed.resolution) == ("closed", "parcel found")

    # Writing in the closed topic sends nothing to the customer.
    before = len(api.sent_to(MEI))
    forum.says_in_topic(ANA, thread, "one more thing")
    await forum.answer(ANA, rf"T-{ticket_id} is closed; your reply was not sent \(/reopen it first\)")
    assert len(api.sent_to(MEI)) == before

    # The customer saw nothing of the forum; Ana's words in the topic are logged as her contacts.
    await forum.app.outbox.drain()
    to_mei = api.sent_to(MEI)
    assert not any("New ticket" in m["text"] or "closed by" in m["text"] or "Mei:" in m["text"] for m in to_mei)
    assert all(m["chat"]["id"] == MEI and "message_thread_id" not in m for m in to_mei)
    async with forum.app.sessions() as s:
        ana = await agents_repo.find_agent(s, "Ana")
        logged = (await s.execute(select(Contact.author, Contact.agent_id, Contact.customer_id).where(
            Contact.channel == "telegram", Contact.external_id == f"m{FORUM}:{said['message']['message_id']}"))).one()
        topic_posts = list(await s.scalars(select(Contact.customer_id).where(
            Contact.direction == "out", Contact.address == str(FORUM))))
    assert tuple(logged) == ("agent", ana.id, None)
    assert topic_posts and all(c is None for c in topic_posts), "topic posts are not the customer's conversation"


async def test_close_button_in_the_topic_closes_ticket_and_topic(forum):
    api = forum.api
    forum.says(BOB, "Invoice 77 is wrong")
    created = await api.wait_for(lambda: api.calls_of("createForumTopic"), 8.0)
    thread = created[0].result["message_thread_id"]
    notice = await forum.answer(FORUM, r"New ticket T-\d+ .*Invoice 77", thread=thread)
    ticket_id = int(re.search(r"T-(\d+)", notice["text"]).group(1))
    await forum.topic_of(ticket_id)
    api.press_button(forum.user(ANA), notice, f"/close {ticket_id}")
    await forum.answer(ANA, rf"T-{ticket_id} closed\.")
    await api.wait_for(lambda: api.topics[FORUM][thread]["closed"], 8.0)
    await forum.answer(BOB, r"How satisfied")
    assert (await forum.ticket(ticket_id)).status == "closed"
    # A plain Telegram reply to the notice in the topic names the ticket too (closed now: nothing sent).
    forum.api.user_message(forum.user(ANA), "hello?", chat=notice["chat"], thread_id=thread,
                           reply_to=notice["message_id"])
    await forum.answer(ANA, rf"T-{ticket_id} is closed; your reply was not sent \(/reopen it first\)")


async def test_an_unassigned_ticket_offers_take_and_the_topic_hears_who_took_it(forum):
    api = forum.api
    async with forum.app.sessions() as s, s.begin():
        await desk_repo.set_agent_status(s, (await agents_repo.find_agent(s, "Ana")).id, "away")
    forum.says(BOB, "Refund for order 5150?")
    created = await api.wait_for(lambda: api.calls_of("createForumTopic"), 8.0)
    thread = created[0].result["message_thread_id"]
    notice = await forum.answer(FORUM, r"New ticket T-\d+ .*order 5150", thread=thread)
    ticket_id = int(re.search(r"T-(\d+)", notice["text"]).group(1))
    assert "Assigned to" not in notice["text"] and "Waiting in queue" in notice["text"]
    assert notice["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"/take {ticket_id}"
    await forum.topic_of(ticket_id)
    api.press_button(forum.user(ANA), notice, f"/take {ticket_id}")
    await forum.answer(ANA, rf"T-{ticket_id} is yours")
    await forum.answer(FORUM, rf"T-{ticket_id} taken by Ana\.", thread=thread)
    assert (await forum.ticket(ticket_id)).assignee_id is not None
    api.press_button(forum.user(ANA), notice, f"/take {ticket_id}")  # the old button again: nothing changes
    await forum.answer(ANA, rf"T-{ticket_id} is already yours\.")
    await forum.app.outbox.drain()
    assert len([m for m in api.sent_in_topic(FORUM, thread) if "taken by" in m["text"]]) == 1


async def test_forum_mode_off_makes_no_topic_calls(no_forum):
    api = no_forum.api
    no_forum.says(MEI, "My parcel never arrived")
    notice = await no_forum.answer(ANA, r"New ticket T-\d+ .*parcel")
    ticket_id = int(re.search(r"T-(\d+)", notice["text"]).group(1))
    no_forum.says(MEI, "still waiting")
    await no_forum.answer(ANA, rf"T-{ticket_id} · Mei: still waiting")
    no_forum.says(ANA, f"/close {ticket_id}")
    await no_forum.answer(MEI, r"How satisfied")
    await no_forum.app.outbox.drain()
    assert not api.calls_of("createForumTopic") and not api.calls_of("closeForumTopic")
    assert not api.topics and (await no_forum.ticket(ticket_id)).topic_ref is None
    assert not any(c.params.get("message_thread_id") for c in api.calls_of("sendMessage"))


async def test_posts_queued_before_the_ticket_knows_its_topic_share_one_topic():
    """Two posts for a new ticket leave the outbox before the first one's topic is recorded: one topic."""
    async with BotApiServer() as api:
        channel = TelegramChannel(api.token, api_server=api.base_url, limiter=FAST, forum_chat_id=FORUM,
                                  policy=SendPolicy(max_attempts=2, network_backoff_s=0.01))
        try:
            meta = (("forum_topic_for_ticket", "41"), ("topic_title", "T-41 · VIP · Lin"))
            first = await channel.send(OutboundMessage("telegram", str(FORUM), "New ticket T-41", meta=meta))
            second = await channel.send(OutboundMessage("telegram", str(FORUM), "Lin: hello?", meta=meta))
            assert len(api.calls_of("createForumTopic")) == 1
            thread = api.calls_of("createForumTopic")[0].result["message_thread_id"]
            for ext in (first, second):
                assert ext.endswith(f"#topic={FORUM}:{thread}") and ext.startswith(f"m{FORUM}:")
            assert [m["text"] for m in api.sent_in_topic(FORUM, thread)] == ["New ticket T-41", "Lin: hello?"]

            # A topic someone deleted is replaced by a new one instead of failing the post.
            gone = (("forum_topic_for_ticket", "42"), ("message_thread_id", "999"), ("topic_title", "T-42 · x · y"))
            ext = await channel.send(OutboundMessage("telegram", str(FORUM), "Lin: still there?", meta=gone))
            new_thread = api.calls_of("createForumTopic")[-1].result["message_thread_id"]
            assert new_thread != 999 and ext.endswith(f"#topic={FORUM}:{new_thread}")

            # A closing post that was delivered but whose close failed only closes on the retry.
            api.fail_next("closeForumTopic", times=2, code=500)
            closing = OutboundMessage("telegram", str(FORUM), "T-41 closed", idempotency_key="k1",
                                      meta=(*meta, ("close_forum_topic", "1")))
            with pytest.raises(DeliveryError) as failed:
                await channel.send(closing)
            assert not failed.value.permanent
            posted = len(api.sent_in_topic(FORUM, thread))
            await channel.send(closing)
            assert len(api.sent_in_topic(FORUM, thread)) == posted and api.topics[FORUM][thread]["closed"]
        finally:
            await channel.bot.session.close()
