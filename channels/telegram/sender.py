"""Sending an `OutboundMessage` through an aiogram `Bot`, within Telegram's limits.

Text goes out as **plain text** (``parse_mode=None``, overriding any default of an embedding bot): there is no
markup to escape, so a customer's ``<b>`` or ``*`` can never break a message. Long text is split on line, then
word boundaries into parts of at most 4,096 UTF-16 units (Telegram's measure). Token buckets keep to about one
message a second per chat, 20 a minute per group and 30 a second per bot, across every process when the limits
are shared through Redis (`channels.send_limits`); a 429 is waited out (``retry_after``) a bounded number of times.
A blocked bot (403), an unknown chat and every other 400 are permanent failures: retrying would not help.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

from bot.core.messages import Button, DeliveryError, OutboundFile, OutboundMessage
from channels.send_limits import Rate, SendLimits
from channels.telegram.updates import message_external_id, parse_message_ref

log = logging.getLogger(__name__)

MAX_MESSAGE_UNITS = 4096
COPY_OF = "copy_of"
COPY_ONLY = "copy_only"
"""Outbox meta the desk sets (`bot.desk.media`): a Telegram message to copy with, or as, this message."""
MAX_CALLBACK_BYTES = 64


def utf16_len(text: str) -> int:
    """Telegram measures text in UTF-16 code units (an emoji outside the BMP counts twice)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE_UNITS) -> list[str]:
    """Parts of at most `limit` UTF-16 units, cut after a newline, else after a space, else anywhere."""
    parts: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        cut = _prefix_len(rest, limit)
        window = rest[:cut]
        for sep in ("\n", " "):
            at = window.rfind(sep)
            if at > 0:
                cut = at + 1
                break
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest or not parts:
        parts.append(rest)
    return parts


def _prefix_len(text: str, limit: int) -> int:
    """How many characters of `text` fit into `limit` UTF-16 units (never splitting a character)."""
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


class RateLimiter:
    """About `per_chat` messages a second to one chat (bursts of `chat_burst`), a third of that to a group (20 a
    minute at 1/s), and `overall` a second in all for one bot: evenly spaced (a burst of 30 on top of 30 a second
    would be 60 within one second). In-process until `limits` is shared (Redis)."""

    def __init__(self, per_chat: float = 1.0, overall: float = 30.0, *, chat_burst: float = 3.0,
                 overall_burst: float = 1.0, limits: SendLimits | None = None, bot: str = "bot") -> None:
        self.chat = Rate(per_chat, chat_burst)
        self.group = Rate(per_chat / 3, chat_burst)
        self.overall = Rate(overall, overall_burst)
        self.limits = limits or SendLimits()
        self.bot = bot

    async def acquire(self, chat: str) -> float:
        """Wait for a turn for `chat` and for the bot; returns the seconds waited."""
        per_chat = self.group if str(chat).startswith("-") else self.chat
        return await self.limits.wait((f"tg:{self.bot}:chat:{chat}", per_chat), (f"tg:{self.bot}:all", self.overall))


@dataclass
class SendPolicy:
    max_attempts: int = 5
    """Attempts per message part (429s and network errors) before giving up with `retry_after`."""
    max_wait_s: float = 60.0
    """Total time a part may spend waiting out 429s before the outbox takes over."""
    network_backoff_s: float = 0.5


class TelegramSender:
    """Sends through one aiogram `Bot`; parts of one message and messages to one chat keep their order."""

    def __init__(self, bot: Bot, limiter: RateLimiter | None = None, policy: SendPolicy | None = None) -> None:
        self.bot = bot
        self.limiter = limiter or RateLimiter()
        self.policy = policy or SendPolicy()
        self._chat_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def send(self, message: OutboundMessage) -> str:
        """Deliver `message`; the external id of its first part (``m{chat}:{id}``). With meta ``copy_of``
        (``m{chat}:{id}`` of a message the bot can see) that message's media follows the text (``copyMessage``);
        with ``copy_only`` = "1" the copy, caption and all, is the whole message."""
        chat_id = _chat_id(message.recipient)
        copy = parse_message_ref(message.meta_value(COPY_OF))
        if copy is not None and message.meta_value(COPY_ONLY) == "1":
            return await self._copy(message, chat_id, copy, with_buttons=True)
        text, markup = self._text_and_markup(message)
        if not text.strip():
            raise DeliveryError("telegram: refusing to send an empty message", permanent=True)
        parts = split_text(text)
        reply = _reply_parameters(message.reply_to)
        thread = _int_or_none(message.meta_value("message_thread_id"))
        sent_ids: list[int] = []
        async with self._chat_locks[str(chat_id)]:
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                kwargs: dict[str, Any] = {
                    "chat_id": chat_id,
                    "text": part,
                    "parse_mode": None,
                    "message_thread_id": thread,
                    "reply_parameters": reply if index == 0 else None,
                    "reply_markup": markup if last else None,
                }
                try:
                    result = await self._call(str(chat_id), self.bot.send_message, **kwargs)
                except DeliveryError as exc:
                    if sent_ids:
                        exc.reason = f"{exc.reason} (after {len(sent_ids)} of {len(parts)} parts were delivered)"
                        exc.args = (exc.reason,)
                    raise
                sent_ids.append(result.message_id)
        if copy is not None:
            try:
                await self._copy(message, chat_id, copy, with_buttons=False)
            except DeliveryError as exc:  # the text, which names the attachment, is there: not sent again
                log.warning("telegram: could not copy %s to chat %s: %s", message.meta_value(COPY_OF), chat_id,
                            exc.reason)
        for file in message.files:
            try:
                await self._upload(chat_id, file, thread)
            except DeliveryError as exc:  # as for a copy: the text naming the file is delivered, not sent again
                log.warning("telegram: could not send %s to chat %s: %s", file.name, chat_id, exc.reason)
        return message_external_id(chat_id, sent_ids[0])

    async def _upload(self, chat_id: int | str, file: OutboundFile, thread: int | None) -> None:
        """A file after the text: a photo as a photo, anything else as a document (its name kept)."""
        upload = BufferedInputFile(file.data, filename=file.name)
        async with self._chat_locks[str(chat_id)]:
            if file.is_photo:
                await self._call(str(chat_id), self.bot.send_photo, chat_id=chat_id, photo=upload,
                                 message_thread_id=thread)
            else:
                await self._call(str(chat_id), self.bot.send_document, chat_id=chat_id, document=upload,
                                 message_thread_id=thread)

    async def fetch_file(self, file_id: str, max_bytes: int) -> bytes:
        """The bytes of a file someone sent the bot (getFile, then the file download), refused over `max_bytes`:
        a missing or too large file is a permanent failure, a network one is retried."""
        if not file_id:
            raise DeliveryError("telegram: no file id to fetch", permanent=True)
        found = await self._call("files", self.bot.get_file, file_id=file_id, limited=False)
        if (found.file_size or 0) > max_bytes:
            raise DeliveryError(f"telegram: the file is over {max_bytes // 1024 // 1024} MB", permanent=True)
        if not found.file_path:
            raise DeliveryError("telegram: the file cannot be downloaded", permanent=True)
        session = self.bot.session
        url = session.api.file_url(self.bot.token, found.file_path)
        data = bytearray()
        try:
            async for chunk in session.stream_content(url=url, timeout=60):
                data += chunk
                if len(data) > max_bytes:
                    raise DeliveryError(f"telegram: the file is over {max_bytes // 1024 // 1024} MB", permanent=True)
        except aiohttp.ClientResponseError as exc:
            raise DeliveryError(f"telegram: file download: {exc.status} {exc.message}",
                                permanent=400 <= exc.status < 500) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"telegram: file download: {type(exc).__name__}: {exc}") from exc
        return bytes(data)

    async def _copy(self, message: OutboundMessage, chat_id: int | str, source: tuple[str, int], *,
                    with_buttons: bool) -> str:
        markup = self._text_and_markup(message)[1] if with_buttons else None
        async with self._chat_locks[str(chat_id)]:
            result = await self._call(
                str(chat_id), self.bot.copy_message, chat_id=chat_id, from_chat_id=_chat_id(source[0]),
                message_id=source[1], message_thread_id=_int_or_none(message.meta_value("message_thread_id")),
                reply_parameters=_reply_parameters(message.reply_to) if with_buttons else None,
                reply_markup=markup,
            )
        return message_external_id(chat_id, result.message_id)

    async def edit(self, chat_id: int | str, message_id: int, text: str, buttons: tuple[Button, ...] = ()) -> None:
        """Replace the text and buttons of a message we sent (history pages, a handled notification)."""
        markup = _keyboard(buttons)[0]
        try:
            await self._call(str(chat_id), self.bot.edit_message_text, chat_id=_chat_id(str(chat_id)),
                             message_id=message_id, text=split_text(text)[0], parse_mode=None, reply_markup=markup,
                             limited=False)
        except DeliveryError as exc:
            if "message is not modified" not in exc.reason:
                raise

    async def remove_buttons(self, chat_id: int | str, message_id: int) -> None:
        await self._call(str(chat_id), self.bot.edit_message_reply_markup, chat_id=_chat_id(str(chat_id)),
                         message_id=message_id, reply_markup=None, limited=False)

    async def answer_callback(self, callback_query_id: str, text: str = "") -> None:
        """Stop the button's spinner; a query too old to answer is not worth an error."""
        try:
            await self.bot.answer_callback_query(callback_query_id, text=text[:200] or None)
        except TelegramAPIError as exc:
            log.info("telegram: could not answer callback %s: %s", callback_query_id, exc)

    async def create_topic(self, chat_id: int | str, name: str) -> int:
        topic = await self._call(str(chat_id), self.bot.create_forum_topic, chat_id=_chat_id(str(chat_id)),
                                 name=name[:128] or "ticket", limited=False)
        return topic.message_thread_id

    async def close_topic(self, chat_id: int | str, thread_id: int) -> None:
        try:
            await self._call(str(chat_id), self.bot.close_forum_topic, chat_id=_chat_id(str(chat_id)),
                             message_thread_id=thread_id, limited=False)
        except DeliveryError as exc:
            if "TOPIC_NOT_MODIFIED" not in exc.reason:
                raise

    async def _call(self, chat: str, method: Any, *, limited: bool = True, **kwargs: Any) -> Any:
        """One Bot API call with rate limiting, 429 waits and Telegram errors turned into `DeliveryError`."""
        waited = 0.0
        last_retry_after: float | None = None
        for attempt in range(1, self.policy.max_attempts + 1):
            final = attempt == self.policy.max_attempts
            if limited:
                await self.limiter.acquire(chat)
            try:
                return await method(**kwargs)
            except TelegramRetryAfter as exc:
                last_retry_after = float(exc.retry_after)
                if final or waited + last_retry_after > self.policy.max_wait_s:
                    break
                log.info("telegram: 429 for chat %s, waiting %ss", chat, exc.retry_after)
                waited += last_retry_after
                await asyncio.sleep(last_retry_after)
            except TelegramForbiddenError as exc:
                raise DeliveryError(f"telegram: {exc.message}", permanent=True) from exc
            except TelegramMigrateToChat as exc:
                raise DeliveryError(f"telegram: chat migrated to {exc.migrate_to_chat_id}", permanent=True) from exc
            except (TelegramBadRequest, TelegramNotFound) as exc:
                raise DeliveryError(f"telegram: {exc.message}", permanent=True) from exc
            except (TelegramNetworkError, TelegramServerError) as exc:
                last_retry_after = self.policy.network_backoff_s
                log.warning("telegram: %s for chat %s", exc, chat)
                if not final:
                    await asyncio.sleep(self.policy.network_backoff_s)
            except TelegramAPIError as exc:  # 401 and the like: configuration, not this message
                raise DeliveryError(f"telegram: {exc.message}") from exc
        raise DeliveryError(f"telegram: still rate limited or unreachable for chat {chat}",
                            retry_after=last_retry_after)

    def _text_and_markup(self, message: OutboundMessage) -> tuple[str, InlineKeyboardMarkup | None]:
        markup, too_long = _keyboard(message.buttons)
        text = message.text
        if too_long:
            # Telegram refuses callback data over 64 bytes; offer those choices as text to type instead.
            text = "\n".join([text, "", *(f"{b.label}: {b.data}" for b in too_long)])
        return text, markup


def _keyboard(buttons: tuple[Button, ...]) -> tuple[InlineKeyboardMarkup | None, list[Button]]:
    fitting = [b for b in buttons if 0 < len(b.data.encode("utf-8")) <= MAX_CALLBACK_BYTES]
    too_long = [b for b in buttons if b not in fitting]
    if too_long:
        log.warning("telegram: %d button(s) with callback data over %d bytes shown as text", len(too_long),
                    MAX_CALLBACK_BYTES)
    if not fitting:
        return None, too_long
    keys = [InlineKeyboardButton(text=b.label[:64] or b.data, callback_data=b.data) for b in fitting]
    one_row = len(keys) <= 5 and all(len(b.label) <= 12 for b in fitting)
    rows = [keys] if one_row else [[k] for k in keys]
    return InlineKeyboardMarkup(inline_keyboard=rows), too_long


def _chat_id(recipient: str) -> int | str:
    recipient = recipient.strip()
    try:
        return int(recipient)
    except ValueError:
        if recipient.startswith("@"):
            return recipient
        raise DeliveryError(f"telegram: {recipient!r} is not a chat id", permanent=True) from None


def _reply_parameters(reply_to: str) -> ReplyParameters | None:
    if not reply_to:
        return None
    parsed = parse_message_ref(reply_to)
    message_id = parsed[1] if parsed else _int_or_none(reply_to)
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
