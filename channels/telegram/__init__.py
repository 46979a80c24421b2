"""The Telegram channel: long polling or webhook (aiogram), and drop-in pieces for bots that already exist.

- `TelegramChannel` — the standalone `Channel` (name "telegram").
- `tierdesk_router` / `tierdesk_ptb_handlers` — feed an existing aiogram Dispatcher or PTB Application to tierdesk.
- `update_to_inbound` — the pure converter every path uses.

Names are imported on first use: aiogram takes seconds to import, and the core reads `traits` without it.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "SECRET_HEADER": "channel",
    "TelegramChannel": "channel",
    "TIERDESK_PTB_GROUP": "embed",
    "feed_update": "embed",
    "tierdesk_ptb_handlers": "embed",
    "tierdesk_router": "embed",
    "RateLimiter": "sender",
    "SendPolicy": "sender",
    "TelegramSender": "sender",
    "split_text": "sender",
    "message_external_id": "updates",
    "parse_message_ref": "updates",
    "update_to_inbound": "updates",
    "TelegramTraits": "traits",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
