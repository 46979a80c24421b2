"""The standalone Telegram channel: long polling or a webhook with a secret, and sending through `TelegramSender`.

An update is acknowledged only after `deliver` returned (the contact is stored): in polling mode the offset moves
past an update only once it is delivered (failures are retried until then); in webhook mode a failed delivery
answers 500, which makes Telegram send the update again.

Polling reads getUpdates as raw JSON rather than through aiogram's models: aiogram validates a whole batch at once,
so one update it cannot parse (a newer Bot API shape) would stall polling for everyone. The pure converter takes
any shape and ignores what it does not know. Sending goes through aiogram's `Bot`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

from bot.core.messages import Button, Deliver, DeliveryError, OutboundMessage
from channels.base import cancel_and_wait
from channels.send_limits import SendLimits
from channels.telegram.embed import feed_update, fetch_bot_username
from channels.telegram.pages import feed_page
from channels.telegram.sender import RateLimiter, SendPolicy, TelegramSender
from channels.telegram.traits import CLOSE_TOPIC, FORUM_TICKET, THREAD, TOPIC_TITLE, TelegramTraits

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
__all__ = ["CLOSE_TOPIC", "FORUM_TICKET", "SECRET_HEADER", "THREAD", "TOPIC_TITLE", "TelegramChannel"]
TOPIC_MARK = "#topic="
"""Appended to the external id of a message sent into a ticket's topic: ``m{chat}:{id}#topic={chat}:{thread}``."""
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
MAX_WEBHOOK_BYTES = 1_000_000


class TelegramChannel(TelegramTraits):
    """`Channel` for Telegram. ``mode="polling"`` polls from `start`; ``"webhook"`` registers `webhook_url` (if
    given) and waits for `webhook_handler()` / `asgi_app()` to be mounted on a web server; ``"embedded"`` only
    sends: an existing bot receives and feeds tierdesk through `channels.telegram.embed`."""

    name = "telegram"

    def __init__(
        self,
        token: str,
        api_server: str = "",
        mode: str = "polling",
        webhook_secret: str = "",
        webhook_url: str = "",
        *,
        polling_timeout: int = 30,
        limiter: RateLimiter | None = None,
        policy: SendPolicy | None = None,
        forum_chat_id: int | None = None,
    ) -> None:
        if mode not in ("polling", "webhook", "embedded"):
            raise ValueError(f"telegram mode must be 'polling', 'webhook' or 'embedded', not {mode!r}")
        if mode == "webhook" and not webhook_secret:
            raise ValueError("telegram webhook mode needs a webhook_secret (Telegram sends it in every request)")
        if not token:
            raise ValueError("telegram needs a bot token")
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_server)) if api_server else AiohttpSession()
        self.bot = Bot(token, session=session)
        self.sender = TelegramSender(self.bot, limiter or RateLimiter(bot=token.partition(":")[0]), policy)
        self.mode = mode
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.polling_timeout = polling_timeout
        self.forum_chat_id = forum_chat_id
        self.bot_username = ""
        self.poll_backoff_s = 1.0
        self._deliver: Deliver | None = None
        self._polling: asyncio.Task | None = None
        self._offset: int | None = None
        self._confirmed: int | None = None
        self._topics: dict[tuple[str, str], int] = {}
        """(forum chat, ticket) → thread created here, for messages queued before the ticket knew its topic."""
        self._closing: dict[str, str] = {}
        """Idempotency key → external id of a closing message that was sent but whose topic is not closed yet."""

    @classmethod
    def from_settings(cls, section: Any, *, send_only: bool = False) -> TelegramChannel:
        """From the telegram settings section; `send_only` sends without receiving ("embedded": polling here
        would take the receiving process's updates away)."""
        if not section.token:
            raise ValueError("telegram has no bot token (set TIERDESK_TELEGRAM__TOKEN)")
        limiter = RateLimiter(per_chat=section.per_chat_per_s, overall=section.overall_per_s,
                              bot=section.token.partition(":")[0])
        return cls(
            section.token, section.api_server, "embedded" if send_only else section.mode,
            section.webhook_secret, section.webhook_url, forum_chat_id=section.forum_chat_id, limiter=limiter,
        )

    def use_limits(self, limits: SendLimits) -> None:
        """Keep to the bot's limits together with every other process (limits shared through Redis)."""
        self.sender.limiter.limits = limits

    # -- Channel protocol ----------------------------------------------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self.bot_username = await fetch_bot_username(self.bot)
        if self.mode == "embedded":
            return  # the host bot receives; polling here would take its updates away
        if self.mode == "webhook":
            if self.webhook_url:
                await self.bot.set_webhook(self.webhook_url, secret_token=self.webhook_secret,
                                           allowed_updates=ALLOWED_UPDATES)
            return
        await self.bot.delete_webhook()  # Telegram refuses getUpdates while a webhook is set
        self._polling = asyncio.create_task(self._poll(deliver), name="telegram-polling")

    async def stop(self) -> None:
        if self._polling is not None:
            if not await cancel_and_wait(self._polling):  # a swallowed cancellation must not hang the shutdown
                log.warning("telegram: the polling loop did not stop within 10 s; going on without it")
            self._polling = None
            if self._offset is not None and self._offset != self._confirmed:
                await self._confirm_offset()
        self._deliver = None
        await self.bot.session.close()

    async def _get_updates(self, http: aiohttp.ClientSession, wait_s: int, limit: int = 100) -> dict[str, Any]:
        url = self.bot.session.api.api_url(token=self.bot.token, method="getUpdates")
        params: dict[str, Any] = {"timeout": wait_s, "limit": limit, "allowed_updates": ALLOWED_UPDATES}
        if self._offset is not None:
            params["offset"] = self._offset
        async with http.post(url, json=params, timeout=aiohttp.ClientTimeout(total=wait_s + 15)) as resp:
            body = await resp.json(content_type=None)
        if not isinstance(body, dict):
            raise ValueError("getUpdates answered with something that is not a JSON object")
        self._confirmed = params.get("offset")
        return body

    async def _poll(self, deliver: Deliver) -> None:
        """Long polling: a page's updates are delivered (retried until stored) before the offset moves past them."""
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    body = await self._get_updates(http, self.polling_timeout)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.warning("telegram: getUpdates failed (%s); retrying in %.1fs", exc, self.poll_backoff_s)
                    await asyncio.sleep(self.poll_backoff_s)
                    continue
                if not body.get("ok"):
                    retry_after = (body.get("parameters") or {}).get("retry_after")
                    log.warning("telegram: getUpdates refused: %s %s", body.get("error_code"), body.get("description"))
                    await asyncio.sleep(float(retry_after or self.poll_backoff_s))
                    continue
                page = []
                for update in body.get("result") if isinstance(body.get("result"), list) else []:
                    if isinstance(update, dict) and isinstance(update.get("update_id"), int):
                        page.append(update)
                    else:
                        log.warning("telegram: getUpdates returned an entry without update_id; skipped")
                if page:  # stored as one batch, each chat in order (`feed_page`); then the offset moves past it
                    await feed_page(page, deliver, bot_username=self.bot_username,
                                    answer_callback=self.sender.answer_callback)
                    self._offset = max(u["update_id"] for u in page) + 1

    async def _confirm_offset(self) -> None:
        """Tell Telegram what was delivered before stopping, so a restart does not fetch it again."""
        try:
            async with aiohttp.ClientSession() as http:
                await self._get_updates(http, wait_s=0, limit=1)
        except Exception as exc:  # a restart fetches them again; the dispatcher dedups by external id
            log.info("telegram: could not confirm the last updates on stop: %s", exc)

    async def send(self, message: OutboundMessage) -> str:
        if message.meta_value(FORUM_TICKET):
            return await self._send_to_topic(message)
        return await self.sender.send(message)

    async def _send_to_topic(self, message: OutboundMessage) -> str:
        """Forum mode: post into the ticket's topic, creating it first if the ticket has none yet; the external id
        carries the topic (`TOPIC_MARK`) so the caller can remember it on the ticket."""
        chat, ticket = message.recipient.strip(), message.meta_value(FORUM_TICKET)
        known = _int_or_none(message.meta_value(THREAD)) or self._topics.get((chat, ticket))
        thread = known or await self._new_topic(message, chat, ticket)
        sent = self._closing.pop(message.idempotency_key, "") if message.idempotency_key else ""
        if not sent:
            try:
                sent = await self.sender.send(_in_thread(message, thread))
            except DeliveryError as exc:
                if not known or "thread not found" not in exc.reason:
                    raise
                log.warning("telegram: topic %s of ticket %s is gone; opening a new one", thread, ticket)
                thread = await self._new_topic(message, chat, ticket)
                sent = await self.sender.send(_in_thread(message, thread))
        if message.meta_value(CLOSE_TOPIC):
            try:
                await self.sender.close_topic(chat, thread)
            except DeliveryError as exc:
                if exc.permanent:  # the message is there; a topic that cannot be closed stays as it is
                    log.warning("telegram: could not close topic %s of ticket %s: %s", thread, ticket, exc.reason)
                else:
                    if message.idempotency_key:  # the retry only closes; the message is already there
                        self._closing[message.idempotency_key] = sent
                    raise
            self._topics.pop((chat, ticket), None)
        return f"{sent}{TOPIC_MARK}{chat}:{thread}"

    async def _new_topic(self, message: OutboundMessage, chat: str, ticket: str) -> int:
        thread = await self.sender.create_topic(chat, message.meta_value(TOPIC_TITLE) or f"T-{ticket}")
        self._topics[(chat, ticket)] = thread
        if len(self._topics) > 10_000:  # older tickets know their topic by now
            self._topics = dict(list(self._topics.items())[-5_000:])
        return thread

    # -- extras the desk uses ------------------------------------------------------------------------------------

    async def fetch_file(self, file_id: str, max_bytes: int) -> bytes:
        """A file someone sent the bot, for a customer on another channel (`bot.core.attachments.OutboxFiles`)."""
        return await self.sender.fetch_file(file_id, max_bytes)

    async def edit(self, chat_id: int | str, message_id: int, text: str, buttons: tuple[Button, ...] = ()) -> None:
        await self.sender.edit(chat_id, message_id, text, buttons)

    async def create_topic(self, chat_id: int | str, name: str) -> int:
        return await self.sender.create_topic(chat_id, name)

    async def close_topic(self, chat_id: int | str, thread_id: int) -> None:
        await self.sender.close_topic(chat_id, thread_id)

    # -- webhook -------------------------------------------------------------------------------------------------

    async def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """Framework-neutral webhook: (HTTP status, reason). 200 only once the update is stored or ignored."""
        given = _header(headers, SECRET_HEADER)
        if not given or not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            log.warning("telegram webhook: request without the right secret token refused")
            return 401, "unauthorized"
        if self._deliver is None:
            return 503, "not started"
        if len(body) > MAX_WEBHOOK_BYTES:
            log.warning("telegram webhook: %d-byte body refused", len(body))
            return 413, "too large"
        try:
            update = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            log.warning("telegram webhook: malformed update JSON refused: %s", exc)
            return 400, "malformed JSON"
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            log.warning("telegram webhook: body is not an update (no integer update_id)")
            return 400, "not an update"
        try:
            await feed_update(update, self._deliver, bot_username=self.bot_username,
                              answer_callback=self.sender.answer_callback, attempts=1)
        except Exception as exc:  # 503: Telegram keeps the update and sends it again
            log.error("telegram webhook: update %s not stored (%s: %s); Telegram will send it again",
                      update["update_id"], type(exc).__name__, exc)
            return 503, "not stored yet"
        return 200, "ok"

    def webhook_handler(self) -> Callable[[Any], Awaitable[Any]]:
        """An aiohttp handler: ``app.router.add_post("/telegram", channel.webhook_handler())``."""
        from aiohttp import web

        async def handler(request: web.Request) -> web.Response:
            status, reason = await self.handle_webhook(request.headers, await request.read())
            return web.json_response({"ok": status == 200, "description": reason}, status=status)

        return handler

    def asgi_app(self) -> Callable[[dict, Callable, Callable], Awaitable[None]]:
        """A plain ASGI app for the webhook (mount it in Starlette/FastAPI or serve it with uvicorn)."""

        async def app(scope: dict, receive: Callable, send: Callable) -> None:
            if scope["type"] != "http":
                return
            if scope.get("method") != "POST":
                await _asgi_reply(send, 405, "POST only")
                return
            chunks: list[bytes] = []
            size, more = 0, True
            while more:
                event = await receive()
                chunk = event.get("body", b"")
                size += len(chunk)
                if size <= MAX_WEBHOOK_BYTES:
                    chunks.append(chunk)
                more = event.get("more_body", False)
            if size > MAX_WEBHOOK_BYTES:
                await _asgi_reply(send, 413, "too large")
                return
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
            status, reason = await self.handle_webhook(headers, b"".join(chunks))
            await _asgi_reply(send, status, reason)

        return app


def _in_thread(message: OutboundMessage, thread: int) -> OutboundMessage:
    meta = dict(message.meta)
    meta[THREAD] = str(thread)
    return replace(message, meta=tuple(sorted(meta.items())))


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), "")
    return value or ""


async def _asgi_reply(send: Callable, status: int, reason: str) -> None:
    body = json.dumps({"ok": status == 200, "description": reason}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
