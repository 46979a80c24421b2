"""The App and Telegram channel the long-polling tests run: fast retries and polls, send limits out of the way."""

from __future__ import annotations

from typing import Any

from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings
from channels.telegram import RateLimiter, TelegramChannel

FAST = RateLimiter(per_chat=1000, overall=1000, chat_burst=1000, overall_burst=1000)


def polling_settings(database_url: str, database_schema: str | None = None, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        database_schema=database_schema,
        nlu=NluSettings(enabled=False),
        outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05),
        dispatch=DispatchSettings(batch_wait_ms=1.0),
        **extra,
    )


def polling_channel(api: Any) -> TelegramChannel:
    """The real channel, long polling the loopback Bot API server `api` with a one-second timeout."""
    return TelegramChannel(api.token, api_server=api.base_url, polling_timeout=1, limiter=FAST)
