"""The Telegram channel: long polling or webhook (aiogram), and drop-in pieces for bots that already exist.

- `TelegramChannel` — the standalone `Channel` (name "telegram").
- `tierdesk_router` / `tierdesk_ptb_handlers` — feed an existing aiogram Dispatcher or PTB Application to tierdesk.
- `update_to_inbound` — the pure converter every path uses.
"""

from channels.telegram.channel import SECRET_HEADER, TelegramChannel
from channels.telegram.embed import TIERDESK_PTB_GROUP, feed_update, tierdesk_ptb_handlers, tierdesk_router
from channels.telegram.sender import RateLimiter, SendPolicy, TelegramSender, split_text
from channels.telegram.updates import message_external_id, parse_message_ref, update_to_inbound

__all__ = [
    "SECRET_HEADER",
    "TIERDESK_PTB_GROUP",
    "RateLimiter",
    "SendPolicy",
    "TelegramChannel",
    "TelegramSender",
    "feed_update",
    "message_external_id",
    "parse_message_ref",
    "split_text",
    "tierdesk_ptb_handlers",
    "tierdesk_router",
    "update_to_inbound",
]
