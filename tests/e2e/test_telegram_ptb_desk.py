"""The agent desk through a python-telegram-bot Application that already exists: PTB receives (long polling against
the loopback Bot API server) and feeds tierdesk with `tierdesk_ptb_handlers`; tierdesk sends through its Telegram
channel in embedded mode. The real App on the test database."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.app import App
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings
from channels.telegram import RateLimiter, TelegramChannel, tierdesk_ptb_handlers
from crm_store.models import Contact, Ticket
from crm_store.repositories import agents as agents_repo
from tests.e2e.botapi_server import BotApiServer

FAST = RateLimiter(per_chat=1000, overall=1000, chat_burst=1000, overall_burst=1000)
ANA, MEI = 9001, 5001


@pytest.fixture
async def ptb_desk(db):
    from telegram.ext import ApplicationBuilder, CommandHandler

    async with BotApiServer() as api:
        settings = Settings(
            database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False),
            outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05),
            dispatch=DispatchSettings(batch_wait_ms=1.0),
        )
        telegram = TelegramChannel(api.token, api_server=api.base_url, mode="embedded", limiter=FAST)
        app = App(settings, channels=[telegram])
        await app.start()
        async with app.sessions() as s, s.begin():
            await agents_repo.add_agent(s, name="Ana", role="agent", addresses={"telegram": str(ANA)})

        application = ApplicationBuilder().token(api.token).base_url(api.ptb_base_url).build()

        async def shop(update, context) -> None:  # the host bot's own feature
            await update.message.reply_text("The shop is open 9-18.")

        # tierdesk goes last in the same group: it takes only what the bot's own handlers did not match.
        application.add_handler(CommandHandler("shop", shop))
        application.add_handlers(tierdesk_ptb_handlers(app.deliver))
        await application.initialize()
        await application.start()
        await application.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield app, api
        finally:
            await application.updater.stop()
            await application.stop()
            await application.shutdown()
            await app.stop()


async def _answer(api: BotApiServer, chat: int, pattern: str, after: int = 0) -> dict:
    rx = re.compile(pattern, re.S)
    return await api.wait_for(lambda: next((m for m in api.sent_to(chat)[after:] if rx.search(m["text"])), None),
                              8.0)


async def test_customer_writes_agent_takes_and_replies_through_ptb(ptb_desk):
    app, api = ptb_desk
    mei, ana = api.user(MEI, "Mei"), api.user(ANA, "Ana")

    api.user_message(mei, "/shop")
    await _answer(api, MEI, r"The shop is open")
    api.user_message(mei, "My parcel 8812 never arrived")
    notice = await _answer(api, ANA, r"New ticket T-\d+ .*parcel 8812")
    ticket_id = int(re.search(r"T-(\d+)", notice["text"]).group(1))
    await _answer(api, MEI, rf"ticket is T-{ticket_id}")

    api.press_button(ana, notice, f"/take {ticket_id}")
    await _answer(api, ANA, rf"T-{ticket_id} is already yours")  # the only agent online: routed to her
    api.user_message(ana, f"/reply {ticket_id} Tracking number: ZX81")
    await _answer(api, ANA, r"Queued for Mei")
    await _answer(api, MEI, r"Tracking number: ZX81")
    await api.wait_for(lambda: api.calls_of("answerCallbackQuery"), 8.0)

    await app.outbox.drain()
    before = len(api.sent_to(ANA))
    api.user_message(ana, f"/history T-{ticket_id}")
    history = await _answer(api, ANA, r"History of Mei", after=before)
    assert "parcel 8812 never arrived" in history["text"] and "Tracking number: ZX81" in history["text"]

    async with app.sessions() as s:
        ticket = await s.get(Ticket, ticket_id)
        texts = list(await s.scalars(select(Contact.text).where(Contact.direction == "in")))
    assert ticket.assignee_id is not None and ticket.first_responded_at is not None
    assert "/shop" not in texts, "what the host bot handled is not tierdesk's"
    assert texts.count("My parcel 8812 never arrived") == 1
    # Only PTB polls (without allowed_updates); the embedded channel would ask for its own update types.
    assert api.calls_of("getUpdates") and not any("allowed_updates" in c.params for c in api.calls_of("getUpdates"))
