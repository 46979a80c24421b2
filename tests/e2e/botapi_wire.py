"""The wire shapes of the loopback Bot API server: the bot's identity, Telegram's error body, a recorded call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

BOT_USER = {"id": 424242, "is_bot": True, "first_name": "tierdesk", "username": "tierdesk_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
JSON_FIELDS = {"reply_markup", "reply_parameters", "allowed_updates", "link_preview_options", "entities"}
INT_FIELDS = {"chat_id", "message_id", "offset", "limit", "timeout", "message_thread_id", "reply_to_message_id",
              "icon_color", "max_connections"}
MAX_TEXT = 4096


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass
class Call:
    """One request the bot made: method name, decoded parameters, when, and what it got back."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    result: Any = None


@dataclass
class Failure:
    code: int
    description: str
    retry_after: int | None = None


@dataclass
class Webhook:
    url: str
    secret: str = ""
    task: asyncio.Task | None = None
    responses: list[int] = field(default_factory=list)
