"""The Telegram channel with the real aiogram and python-telegram-bot clients against the loopback Bot API server:
long polling, webhook with and without the secret, redelivery, edits, buttons, and embedding in existing bots."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import CommandStart
from aiogram.types import Message
from aiohttp import web

from bot.core.messages import InboundMessage, InvalidMessage, OutboundMessage
from channels.telegram import (
    SECRET_HEADER,
    TIERDESK_PTB_GROUP,
    TelegramChannel,
    tierdesk_ptb_handlers,
    tierdesk_router,
)
from tests.e2e.botapi_server import BotApiServer

SECRET = "s3cret-token_for-tests"


class Collector:
    """A `deliver` that stores what it gets; `fail` makes the next calls raise as if the database were down."""

    def __init__(self) -> None:
        self.got: list[InboundMessage] = []
        self.fail = 0
        self.calls = 0
        self._changed = asyncio.Event()

    async def __call__(self, message: InboundMessage) -> str:
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise RuntimeError("database is down")
        self.got.append(message)
        self._changed.set()
        return message.external_id

    async def wait(self, count: int, within: float = 5.0) -> list[InboundMessage]:
        async def _wait() -> list[InboundMessage]:
            while len(self.got) < count:
                self._changed.clear()
                await self._changed.wait()
            return self.got
        return await asyncio.wait_for(_wait(), within)


@pytest.fixture
async def api():
    async with BotApiServer() as server:
        yield server


@pytest.fixture
async def polling(api):
    deliver = Collector()
    channel = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1)
    await channel.start(deliver)
    yield channel, deliver
    await channel.stop()


@contextlib.asynccontextmanager
async def webhook_site(handler):
    app = web.Application()
    app.router.add_post("/telegram/hook", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/telegram/hook"
    finally:
        await runner.cleanup()


async def test_polling_delivers_and_confirms_updates(api, polling):
    channel, deliver = polling
    mei = api.user(5001, "Mei", username="meilin")
    update = api.user_message(mei, "Where is my order?")
    [msg] = await deliver.wait(1)
    assert (msg.external_id, msg.sender, msg.text) == ("m5001:1", "5001", "Where is my order?")
    assert msg.raw_ref == f"telegram:update:{update['update_id']}"
    # The next getUpdates carries offset = update_id + 1: Telegram forgets the update only then.
    await api.wait_for(lambda: any(c.params.get("offset") == update["update_id"] + 1
                                   for c in api.calls_of("getUpdates")))
    assert channel.bot_username == "tierdesk_bot"


async def test_polling_confirms_only_after_deliver_returned(api):
    confirmed_while_delivering: list[bool] = []
    got: list[InboundMessage] = []

    def confirmed(update_id: int) -> bool:
        return any(c.params.get("offset", 0) > update_id for c in api.calls_of("getUpdates"))

    async def flaky(message: InboundMessage) -> None:
        update_id = int(message.raw_ref.rsplit(":", 1)[1])
        confirmed_while_delivering.append(confirmed(update_id))
        if len(confirmed_while_delivering) < 3:
            raise RuntimeError("database is down")
        got.append(message)

    channel = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1)
    channel.poll_backoff_s = 0.05
    await channel.start(flaky)
    try:
        update = api.user_message(api.user(5001), "first")
        await api.wait_for(lambda: confirmed(update["update_id"]), within=10)
    finally:
        await channel.stop()
    assert [m.text for m in got] == ["first"]
    assert confirmed_while_delivering == [False, False, False]


async def test_update_redelivered_after_a_crash_gets_the_same_external_id(api):
    stored: list[InboundMessage] = []

    async def store_then_crash(message: InboundMessage) -> None:
        stored.append(message)  # committed ... and the process dies before confirming the update
        await asyncio.Event().wait()

    crashed = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1)
    await crashed.start(store_then_crash)
    api.user_message(api.user(5001), "hello")
    await api.wait_for(lambda: stored)
    await crashed.stop()
    assert api._pending, "the update must still be unconfirmed"

    deliver = Collector()
    restarted = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1)
    await restarted.start(deliver)
    try:
        [again] = await deliver.wait(1)
    finally:
        await restarted.stop()
    assert again.external_id == stored[0].external_id == "m5001:1"


async def test_edits_buttons_and_unknown_updates(api, polling, caplog):
    caplog.set_level(logging.INFO)
    _, deliver = polling
    mei = api.user(5001, "Mei")
    api.user_message(mei, "order 8812")
    api.push({"poll": {"id": "1", "question": "?", "options": [], "total_voter_count": 0, "is_closed": False,
                       "is_anonymous": True, "type": "regular", "allows_multiple_answers": False}})
    api.push({"brand_new_update_kind": {"x": 1}})
    api.edit_message(mei, 1, "order 8813")
    ticket_note = api.messages[5001][1]
    api.press_button(mei, ticket_note, "/csat 12 5")
    original, edit, press = await deliver.wait(3)
    assert edit.edit_of == original.external_id and edit.text == "order 8813"
    assert press.text == "/csat 12 5" and press.external_id.startswith("qcb")
    await api.wait_for(lambda: api.calls_of("answerCallbackQuery"))
    assert api.calls_of("answerCallbackQuery")[0].params["callback_query_id"] == press.meta_value("callback_query_id")
    assert len(deliver.got) == 3
    await api.wait_for(lambda: not api._pending)  # the unknown ones were confirmed, not stuck


async def test_send_goes_through_the_bot_api(api, polling):
    channel, _ = polling
    ext = await channel.send(OutboundMessage(channel="telegram", recipient="5001", text="Hi Mei"))
    assert ext == "m5001:1"
    assert api.texts_to(5001) == ["Hi Mei"]


async def test_webhook_with_and_without_the_secret(api):
    deliver = Collector()
    channel = TelegramChannel(api.token, api_server=api.base_url, mode="webhook", webhook_secret=SECRET)
    async with webhook_site(channel.webhook_handler()) as url:
        channel.webhook_url = url
        await channel.start(deliver)
        try:
            assert api.calls_of("setWebhook")[0].params["secret_token"] == SECRET
            assert api.webhook is not None and api.webhook.url == url
            update = api.user_message(api.user(5001), "via webhook")
            [msg] = await deliver.wait(1)
            assert msg.text == "via webhook"
            await api.wait_for(lambda: api.webhook.responses == [200])
            api.redeliver(update)  # Telegram did not see the answer and sends the same update again
            first, second = await deliver.wait(2)
            assert first.external_id == second.external_id

            body = {"update_id": 1, "message": {"message_id": 9, "from": {"id": 66, "is_bot": False,
                    "first_name": "Eve"}, "chat": {"id": 66, "type": "private"}, "date": 1, "text": "forged"}}
            async with httpx.AsyncClient() as client:
                missing = await client.post(url, json=body)
                wrong = await client.post(url, json=body, headers={SECRET_HEADER: "guess"})
                malformed = await client.post(url, content=b'{"update_id": 1, "message": ',
                                              headers={SECRET_HEADER: SECRET})
                not_update = await client.post(url, json=[1, 2], headers={SECRET_HEADER: SECRET})
                unknown = await client.post(url, json={"update_id": 2, "new_kind": {}},
                                            headers={SECRET_HEADER: SECRET})
            assert (missing.status_code, wrong.status_code) == (401, 401)
            assert (malformed.status_code, not_update.status_code, unknown.status_code) == (400, 400, 200)
            assert [m.text for m in deliver.got] == ["via webhook", "via webhook"]
        finally:
            await channel.stop()


async def test_webhook_answers_503_until_stored_then_telegram_redelivers(api):
    deliver = Collector()
    deliver.fail = 2
    channel = TelegramChannel(api.token, api_server=api.base_url, mode="webhook", webhook_secret=SECRET)
    async with webhook_site(channel.webhook_handler()) as url:
        channel.webhook_url = url
        await channel.start(deliver)
        try:
            api.user_message(api.user(5001), "keep me")
            [msg] = await deliver.wait(1)
            assert msg.text == "keep me"
            await api.wait_for(lambda: api.webhook.responses[-1:] == [200])
            assert api.webhook.responses == [503, 503, 200]
        finally:
            await channel.stop()


async def test_asgi_webhook_app(api):
    deliver = Collector()
    channel = TelegramChannel(api.token, api_server=api.base_url, mode="webhook", webhook_secret=SECRET)
    await channel.start(deliver)
    try:
        transport = httpx.ASGITransport(app=channel.asgi_app())
        update = {"update_id": 3, "message": {"message_id": 4, "from": {"id": 7, "is_bot": False, "first_name": "A"},
                                              "chat": {"id": 7, "type": "private"}, "date": 1, "text": "asgi"}}
        async with httpx.AsyncClient(transport=transport, base_url="http://hook") as client:
            refused = await client.post("/", json=update)
            accepted = await client.post("/", json=update, headers={SECRET_HEADER: SECRET})
            wrong_method = await client.get("/")
        assert (refused.status_code, accepted.status_code, wrong_method.status_code) == (401, 200, 405)
        assert [m.external_id for m in deliver.got] == ["m7:4"]
    finally:
        await channel.stop()


def test_webhook_mode_needs_a_secret_and_modes_are_checked():
    with pytest.raises(ValueError, match="secret"):
        TelegramChannel("1:x", mode="webhook")
    with pytest.raises(ValueError, match="mode"):
        TelegramChannel("1:x", mode="carrier-pigeon")


async def test_invalid_message_refused_by_dispatcher_is_not_retried(api):
    calls = []

    async def refusing(message: InboundMessage) -> None:
        calls.append(message)
        raise InvalidMessage("no thanks")

    channel = TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1)
    await channel.start(refusing)
    try:
        api.user_message(api.user(5001), "one")
        api.user_message(api.user(5001), "two")
        await api.wait_for(lambda: len(calls) == 2 and not api._pending)
        assert [m.text for m in calls] == ["one", "two"]
    finally:
        await channel.stop()


async def test_aiogram_router_embedded_in_an_existing_dispatcher(api):
    deliver = Collector()
    bot = Bot(api.token, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    dp = Dispatcher()

    @dp.message(CommandStart())
    async def hosts_own_start(message: Message) -> None:
        await message.answer("Welcome to the shop bot")

    dp.include_router(tierdesk_router(deliver))
    polling = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False,
                                                   close_bot_session=False))
    try:
        mei = api.user(5001, "Mei")
        api.user_message(mei, "/start")
        api.user_message(mei, "I need a human")
        api.press_button(mei, api.messages[5001][1], "/csat 3 4")
        got = await deliver.wait(2)
        await api.wait_for(lambda: api.texts_to(5001) == ["Welcome to the shop bot"])
        assert [m.text for m in got] == ["I need a human", "/csat 3 4"]
        await api.wait_for(lambda: api.calls_of("answerCallbackQuery"))
    finally:
        await dp.stop_polling()
        await polling
        await bot.session.close()


async def test_python_telegram_bot_handlers_embedded_in_an_existing_application(api):
    from telegram.ext import ApplicationBuilder, CommandHandler

    deliver = Collector()
    application = ApplicationBuilder().token(api.token).base_url(api.ptb_base_url).build()

    async def hosts_own_start(update, context) -> None:
        await update.message.reply_text("Welcome from PTB")

    application.add_handler(CommandHandler("start", hosts_own_start))
    application.add_handlers(tierdesk_ptb_handlers(deliver), group=TIERDESK_PTB_GROUP)
    await application.initialize()
    await application.start()
    await application.updater.start_polling(poll_interval=0, timeout=1)
    try:
        mei = api.user(5001, "Mei")
        api.user_message(mei, "/start")
        hello = api.user_message(mei, "Hello from PTB land")["message"]["message_id"]
        api.edit_message(mei, hello, "Hello from PTB land (edited)")
        api.press_button(mei, api.messages[5001][1], "/csat 3 5")
        got = await deliver.wait(4)
        assert [m.text for m in got] == ["/start", "Hello from PTB land", "Hello from PTB land (edited)",
                                         "/csat 3 5"]
        assert got[2].edit_of == got[1].external_id == f"m5001:{hello}"
        await api.wait_for(lambda: "Welcome from PTB" in api.texts_to(5001))
        await api.wait_for(lambda: api.calls_of("answerCallbackQuery"))
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
