"""The sender with the real aiogram client against the loopback Bot API server: limits, errors, splitting."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.core.messages import Button, DeliveryError, OutboundMessage
from channels.telegram.sender import RateLimiter, SendPolicy, TelegramSender
from tests.e2e.botapi_server import BotApiServer

FAST = RateLimiter(per_chat=1000, overall=1000, chat_burst=1000, overall_burst=1000)


@pytest.fixture
async def api():
    async with BotApiServer() as server:
        yield server


def make_bot(api: BotApiServer, **kwargs) -> Bot:
    return Bot(api.token, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)), **kwargs)


@pytest.fixture
async def bot(api):
    bot = make_bot(api)
    yield bot
    await bot.session.close()


def out(recipient: int | str, text: str, **kwargs) -> OutboundMessage:
    return OutboundMessage(channel="telegram", recipient=str(recipient), text=text, **kwargs)


async def test_send_returns_message_external_id_and_keeps_text_plain(api):
    # An embedding bot may default to HTML; customer text with markup characters must still go through.
    bot = make_bot(api, default=DefaultBotProperties(parse_mode="HTML"))
    try:
        sender = TelegramSender(bot, FAST)
        first = await sender.send(out(5001, "a < b and <b>unclosed"))
        second = await sender.send(out(5001, "second"))
    finally:
        await bot.session.close()
    assert (first, second) == ("m5001:1", "m5001:2")
    call = api.calls_of("sendMessage")[0]
    assert call.status == 200 and "parse_mode" not in call.params
    assert api.texts_to(5001) == ["a < b and <b>unclosed", "second"]


async def test_long_text_is_split_and_buttons_go_on_the_last_part(api, bot):
    api.user_message(api.user(5001), "hi")  # message 1 in the chat, to reply to
    text = "\n".join(f"{i:04d} " + "lorem ipsum " * 8 for i in range(120))
    assert len(text) > 2 * 4096
    ext = await TelegramSender(bot, FAST).send(
        out(5001, text, reply_to="m5001:1", buttons=(Button("Take", "/take 7"), Button("Close", "/close 7")))
    )
    sent = api.sent_to(5001)
    assert len(sent) == 3
    assert ext == f"m5001:{sent[0]['message_id']}"
    assert "".join(m["text"] for m in sent) == text
    assert sent[0]["reply_to_message"]["message_id"] == 1
    assert "reply_to_message" not in sent[1]
    assert [m.get("reply_markup") is not None for m in sent] == [False, False, True]
    keys = sent[-1]["reply_markup"]["inline_keyboard"]
    assert [[b["callback_data"] for b in row] for row in keys] == [["/take 7", "/close 7"]]


async def test_callback_data_over_64_bytes_becomes_text(api, bot):
    long_data = "/history " + "x" * 80
    await TelegramSender(bot, FAST).send(out(5001, "pick", buttons=(Button("Ok", "/ok"), Button("More", long_data))))
    [msg] = api.sent_to(5001)
    assert msg["reply_markup"]["inline_keyboard"] == [[{"text": "Ok", "callback_data": "/ok"}]]
    assert msg["text"].endswith(f"More: {long_data}")


async def test_429_storm_is_ridden_out_without_loss_in_order(api, bot):
    api.fail_next("sendMessage", 3, code=429, retry_after=1)
    sender = TelegramSender(bot, FAST)
    chats = (6001, 6002)

    async def burst(chat: int) -> list[str]:
        return [await sender.send(out(chat, f"{chat}-{i}")) for i in range(4)]

    started = time.monotonic()
    ids = await asyncio.gather(*(burst(c) for c in chats))
    assert time.monotonic() - started >= 1.0  # the retry_after was honoured, not ignored
    for chat in chats:
        assert api.texts_to(chat) == [f"{chat}-{i}" for i in range(4)]
    assert sum(c.status == 429 for c in api.calls_of("sendMessage")) == 3
    assert all(len(set(x)) == 4 for x in ids)


async def test_retries_are_bounded_and_report_retry_after(api, bot):
    api.fail_next("sendMessage", 10, code=429, retry_after=1)
    sender = TelegramSender(bot, FAST, SendPolicy(max_attempts=2, max_wait_s=5))
    with pytest.raises(DeliveryError) as caught:
        await sender.send(out(5001, "hello"))
    assert caught.value.permanent is False
    assert caught.value.retry_after == 1
    assert len(api.calls_of("sendMessage")) == 2


async def test_blocked_bot_is_a_permanent_failure(api, bot):
    api.block(5001)
    with pytest.raises(DeliveryError) as caught:
        await TelegramSender(bot, FAST).send(out(5001, "hello"))
    assert caught.value.permanent is True
    assert "blocked" in caught.value.reason
    assert len(api.calls_of("sendMessage")) == 1  # no retrying a 403


async def test_chat_not_found_is_permanent(api, bot):
    api.known_chats = {5001}
    with pytest.raises(DeliveryError) as caught:
        await TelegramSender(bot, FAST).send(out(987654, "hello"))
    assert caught.value.permanent is True and "chat not found" in caught.value.reason


async def test_non_numeric_recipient_and_empty_text_are_refused(api, bot):
    sender = TelegramSender(bot, FAST)
    for bad in (out("not-a-chat", "x"), out(5001, "   ")):
        with pytest.raises(DeliveryError) as caught:
            await sender.send(bad)
        assert caught.value.permanent
    assert api.calls_of("sendMessage") == []


async def test_rate_limiter_keeps_under_a_flood_limit(api, bot):
    # The server answers 429 past 1 message per 0.15 s per chat; 4/s per chat (0.25 s apart) stays under it,
    # with room for scheduling jitter on a busy machine.
    api.flood_limit(per_chat=1, window_s=0.15)
    limited = TelegramSender(bot, RateLimiter(per_chat=4, overall=30, chat_burst=1))
    await asyncio.gather(*(limited.send(out(7001, f"m{i}")) for i in range(5)))
    assert api.texts_to(7001) == [f"m{i}" for i in range(5)]
    assert all(c.status == 200 for c in api.calls_of("sendMessage"))
    # Without the limiter the same burst trips the flood control (so the assertion above can fail).
    unlimited = TelegramSender(bot, FAST, SendPolicy(max_attempts=1))
    results = await asyncio.gather(*(unlimited.send(out(7002, f"m{i}")) for i in range(6)), return_exceptions=True)
    assert any(isinstance(r, DeliveryError) for r in results)


async def test_edit_topics_and_callbacks(api, bot):
    api.known_chats = None
    sender = TelegramSender(bot, FAST)
    ext = await sender.send(out(5001, "page 1", buttons=(Button("Next", "/history 3 2"),)))
    message_id = int(ext.split(":")[1])
    await sender.edit(5001, message_id, "page 2", (Button("Prev", "/history 3 1"),))
    await sender.edit(5001, message_id, "page 2", (Button("Prev", "/history 3 1"),))  # not modified: no error
    stored = api.messages[5001][message_id]
    assert stored["text"] == "page 2"
    assert stored["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "/history 3 1"
    await sender.remove_buttons(5001, message_id)
    assert "reply_markup" not in api.messages[5001][message_id]
    await sender.answer_callback("cb1", "Taken")
    assert api.calls_of("answerCallbackQuery")[0].params["callback_query_id"] == "cb1"

    thread = await sender.create_topic(-100777, "#12 Mei")
    await sender.send(out(-100777, "in topic", meta=(("message_thread_id", str(thread)),)))
    assert api.sent_to(-100777)[0]["message_thread_id"] == thread
    await sender.close_topic(-100777, thread)
    await sender.close_topic(-100777, thread)  # closing twice is not an error
    assert api.topics[-100777][thread]["closed"] is True
    with pytest.raises(DeliveryError):
        await sender.send(out(-100777, "no such topic", meta=(("message_thread_id", "999"),)))
