"""What the core may ask of Telegram without importing aiogram: the desk lives here, and forum mode mirrors each
handed-off ticket as a topic of a supergroup (``forum_chat_id``)."""

from __future__ import annotations

from typing import Any

from channels.base import ChannelTraits

FORUM_TICKET = "forum_topic_for_ticket"
"""Outbound meta: this message belongs in the forum topic of that ticket (created on first use)."""
TOPIC_TITLE = "topic_title"
THREAD = "message_thread_id"
CLOSE_TOPIC = "close_forum_topic"
"""Outbound meta: close the topic once this message is in it."""


class TelegramTraits(ChannelTraits):
    desk_rank = 2
    copies_media = True
    takes_files = "attach"
    """Agents work in Telegram first: buttons, replies to notices, forum topics; a file goes as a document."""

    @classmethod
    def mirror_target(cls, section: Any) -> str:
        chat = getattr(section, "forum_chat_id", None)
        return str(chat) if chat else ""

    @staticmethod
    def mirror_fields(target: str, ticket_id: int, title: str, topic_ref: str, close: bool) -> dict[str, str]:
        """The topic of the ticket in `target`: reused when it was opened in this same forum chat, created by the
        channel on first use otherwise; the outbox remembers it on the ticket from the sent message's id."""
        meta = {FORUM_TICKET: str(ticket_id), TOPIC_TITLE: title[:128]}
        topic_chat, _, thread = (topic_ref or "").rpartition(":")
        if thread and topic_chat == target:  # a topic in an earlier forum chat is not reused
            meta[THREAD] = thread
        if close:
            meta[CLOSE_TOPIC] = "1"
        return meta
