"""tierdesk inside a bot that already exists: an aiogram `Router` and python-telegram-bot handlers.

Both convert with the same pure `update_to_inbound` and hand the message to the same `deliver` the standalone
channel uses, so a team keeps its bot and gains the desk:

    dp.include_router(tierdesk_router(app.deliver))                  # aiogram: include it last
    application.add_handlers(tierdesk_ptb_handlers(app.deliver), group=TIERDESK_PTB_GROUP)   # PTB

The aiogram router takes what the bot's own routers left unhandled (messages, edits, button presses). The PTB
handler sits in a group of its own, so it sees every update next to the bot's handlers; add it to group 0 after the
bot's own handlers instead to take only what they did not match.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.types import CallbackQuery, Message, Update

from bot.core.messages import Deliver, InboundMessage, InvalidMessage
from channels.telegram.updates import update_to_inbound

log = logging.getLogger(__name__)

TIERDESK_PTB_GROUP = 50
"""The python-telegram-bot handler group tierdesk suggests; any group of its own works."""

AnswerCallback = Callable[[str], Awaitable[Any]]


async def deliver_until_stored(
    deliver: Deliver, message: InboundMessage, *, attempts: int | None, first_delay: float = 0.5,
    max_delay: float = 5.0,
) -> Any:
    """Await `deliver` until it returns (the contact is stored), retrying failures with backoff.

    `attempts=None` retries for as long as the caller runs (long polling: the update is confirmed only after
    this returns, so stopping loses nothing); otherwise the last error is raised after `attempts` tries. A message
    the dispatcher refuses as invalid is dropped: retrying would not change it. The wait stays short
    (`max_delay`): the store is usually back within seconds, and the channel should resume as soon as it is.
    """
    delay, tried = first_delay, 0
    while True:
        try:
            return await deliver(message)
        except InvalidMessage as exc:
            log.warning("telegram: dispatcher refused %s: %s", message.external_id, exc)
            return None
        except Exception:
            tried += 1
            if attempts is not None and tried >= attempts:
                raise
            log.exception("telegram: delivering %s failed (try %d); retrying in %.1fs", message.external_id, tried,
                          delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)


async def feed_update(
    update: Any, deliver: Deliver, *, bot_username: str = "", answer_callback: AnswerCallback | None = None,
    attempts: int | None = 3,
) -> InboundMessage | None:
    """Convert one update and deliver it; a button press is answered once it is stored. None if ignored."""
    message = update_to_inbound(update, bot_username=bot_username)
    if message is None:
        return None
    await deliver_until_stored(deliver, message, attempts=attempts)
    await answer_press(message, answer_callback)
    return message


async def answer_press(message: InboundMessage, answer_callback: AnswerCallback | None) -> None:
    """A button press is answered (the client's spinner stops) once it is stored."""
    query_id = message.meta_value("callback_query_id")
    if query_id and answer_callback is not None:
        try:
            await answer_callback(query_id)
        except Exception as exc:  # the spinner stops by itself; the press is already stored
            log.info("telegram: could not answer callback %s: %s", query_id, exc)


async def fetch_bot_username(bot: Bot) -> str:
    try:
        return (await bot.me()).username or ""
    except Exception as exc:
        log.warning("telegram: getMe failed (%s); group commands with @mentions are kept as they are", exc)
        return ""


def tierdesk_router(deliver: Deliver, *, attempts: int | None = 3, name: str = "tierdesk") -> Router:
    """An aiogram router feeding messages, edits and button presses to `deliver`.

    What the converter does not take (service messages, a bot's messages) is skipped, so other routers may still
    handle it.
    """
    router = Router(name=name)

    async def _feed(event_update: Update, bot: Bot) -> None:
        async def answer(query_id: str) -> Any:
            return await bot.answer_callback_query(query_id)

        username = await fetch_bot_username(bot)
        fed = await feed_update(event_update, deliver, bot_username=username, answer_callback=answer,
                                attempts=attempts)
        if fed is None:
            raise SkipHandler()

    @router.message()
    async def on_message(message: Message, event_update: Update, bot: Bot) -> None:
        await _feed(event_update, bot)

    @router.edited_message()
    async def on_edit(message: Message, event_update: Update, bot: Bot) -> None:
        await _feed(event_update, bot)

    @router.callback_query()
    async def on_button(query: CallbackQuery, event_update: Update, bot: Bot) -> None:
        await _feed(event_update, bot)

    return router


def tierdesk_ptb_handlers(deliver: Deliver, *, attempts: int | None = 3) -> list[Any]:
    """python-telegram-bot handlers feeding every update to `deliver` (add them with a group of their own)."""
    from telegram import Update as PtbUpdate
    from telegram.ext import TypeHandler

    async def on_update(update: PtbUpdate, context: Any) -> None:
        async def answer(query_id: str) -> Any:
            return await context.bot.answer_callback_query(query_id)

        try:
            username = context.bot.username or ""
        except RuntimeError:  # the Application was not initialised (no getMe yet)
            username = ""
        await feed_update(update.to_dict(), deliver, bot_username=username, answer_callback=answer,
                          attempts=attempts)

    return [TypeHandler(PtbUpdate, on_update)]
