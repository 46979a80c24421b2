"""A page of long-polling updates delivered at once: every chat's updates in order, the chats side by side.

Delivered one after the other, a page of a hundred updates is a hundred dispatch transactions, each waited for
before the next begins. Side by side they reach the dispatcher together and are stored as one batch (one
transaction, and the batch's decisions made together: an agent paged for many waiting tickets gets one digest).
A chat's own updates still go one after the other, so its messages are stored and answered in the order they
were written. An update that could not be stored is retried, with the rest of its chat behind it, one at a time
in page order until it is stored: the caller moves the offset only after this returns, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

from bot.core.messages import Deliver, InboundMessage, InvalidMessage
from channels.telegram.embed import AnswerCallback, answer_press, deliver_until_stored
from channels.telegram.updates import update_to_inbound

log = logging.getLogger(__name__)


async def feed_page(
    updates: list[Any], deliver: Deliver, *, bot_username: str = "", answer_callback: AnswerCallback | None = None
) -> int:
    """Deliver a page of updates; returns how many were messages (the rest are ignored kinds)."""
    chats: dict[str, list[InboundMessage]] = defaultdict(list)
    order: dict[int, int] = {}
    for update in updates:
        message = update_to_inbound(update, bot_username=bot_username)
        if message is not None:
            order[id(message)] = len(order)
            chats[message.sender].append(message)
    left: list[InboundMessage] = []
    failures: list[BaseException] = []

    async def chat(messages: list[InboundMessage]) -> None:
        for i, message in enumerate(messages):
            try:
                await deliver(message)
            except InvalidMessage as exc:  # retrying would not change it (as in `deliver_until_stored`)
                log.warning("telegram: dispatcher refused %s: %s", message.external_id, exc)
            except Exception as exc:
                left.extend(messages[i:])
                failures.append(exc)
                return
            await answer_press(message, answer_callback)

    await asyncio.gather(*(chat(messages) for messages in chats.values()))
    if left:
        log.warning(
            "telegram: %d of %d updates not stored yet (%s: %s); retrying them one at a time",
            len(left),
            len(order),
            type(failures[0]).__name__,
            str(failures[0])[:200],
        )
        for message in sorted(left, key=lambda m: order[id(m)]):
            await deliver_until_stored(deliver, message, attempts=None)
            await answer_press(message, answer_callback)
    return len(order)
