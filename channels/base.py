"""The `Channel` protocol and the registry by name.

A new channel is one module against this protocol plus one line in `_KNOWN`. Channels import only
`bot.core.messages`; they never see the database or the NLU.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

from bot.core.messages import Deliver, OutboundMessage


@runtime_checkable
class Channel(Protocol):
    name: str

    async def start(self, deliver: Deliver) -> None:
        """Begin receiving; every message received is handed to `deliver` (awaiting it = stored)."""

    async def stop(self) -> None:
        """Stop receiving and release connections."""

    async def send(self, message: OutboundMessage) -> str:
        """Deliver one message; return the external id the channel gave it. Raise `DeliveryError` on failure."""


class UnknownChannel(LookupError):
    pass


# Importable factories by channel name; importing lazily keeps optional dependencies optional.
_KNOWN: dict[str, str] = {
    "memory": "channels.memory:MemoryChannel",
    "console": "channels.console:ConsoleChannel",
    "telegram": "channels.telegram:TelegramChannel",
    "email": "channels.email:EmailChannel",
    "webchat": "channels.webchat:WebChatChannel",
    "webhook": "channels.webhook:WebhookChannel",
}


class ChannelRegistry:
    """The channels a running app has, by name; the outbox worker sends through it."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def add(self, channel: Channel) -> Channel:
        self._channels[channel.name] = channel
        return channel

    def get(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise UnknownChannel(f"no channel named {name!r} is running") from None

    def __contains__(self, name: object) -> bool:
        return name in self._channels

    def __iter__(self):
        return iter(list(self._channels.values()))

    def names(self) -> list[str]:
        return sorted(self._channels)


def channel_factory(name: str) -> type:
    """The class registered for a channel name (imported on demand)."""
    try:
        target = _KNOWN[name]
    except KeyError:
        raise UnknownChannel(f"unknown channel {name!r}; known: {', '.join(sorted(_KNOWN))}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
