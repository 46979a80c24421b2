"""The `Channel` protocol, what the core may ask of a channel by name (`ChannelTraits`), and the registry.

Adding a channel is one module (or small package) plus one line in `_KNOWN`:

1. Write a class with `name`, `start(deliver)`, `stop()`, `send(message)` and a classmethod
   `from_settings(section, *, send_only=False)` that builds it from its own settings section (the attribute of
   `Settings` named by `section`, or by the channel's name; None when there is no such section). Subclass
   `ChannelTraits` and override only what differs: `can_send_only`, `desk_rank`, `threads` / `reply_fields`,
   `mirror_target` / `mirror_fields`, `implied_by`, `bot_reply_cap_field`.
2. Add `"name": Entry("package.module:Class")` below. When importing the class is slow (a large SDK), put the
   traits in a light module of their own and name it too: `Entry("pkg:Class", traits="pkg.traits:Traits")`;
   the class must subclass those traits.

Channels import only `bot.core.messages`; they never see the database or the NLU, so every hook takes plain
values and returns plain values.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from bot.core.messages import Deliver, OutboundMessage


@runtime_checkable
class Channel(Protocol):
    name: str

    async def start(self, deliver: Deliver) -> None:
        """Begin receiving; every message received is handed to `deliver` (awaiting it = stored)."""

    async def stop(self) -> None:
        """Stop receiving and release connections. Called again once the outbox has drained (its last sends may
        have opened a client again), so a second call must be harmless."""

    async def send(self, message: OutboundMessage) -> str:
        """Deliver one message; return the external id the channel gave it. Raise `DeliveryError` on failure."""


@dataclass(frozen=True, slots=True)
class ReplyFields:
    """How a reply on a channel is addressed within its conversation."""

    subject: str = ""
    reply_to: str = ""
    meta: tuple[tuple[str, str], ...] = ()


class ChannelTraits:
    """What the core asks of a channel by name, without building or running it. The defaults suit a plain chat
    channel; a channel overrides what differs."""

    section: str | None = None
    """The `Settings` attribute this channel builds from; None: the attribute named like the channel."""
    can_send_only: bool = True
    """Can send from a process that does not receive (a `tierdesk worker`). False when only the receiving process
    can reach the recipient (it holds the visitor's socket, the terminal)."""
    desk_rank: int = 0
    """Where agents are reached: an agent's notices go to their address on the channel ranked highest (0: only
    when they have no address elsewhere)."""
    threads: bool = False
    """Replies thread on the earlier messages of the conversation: `reply_fields` gets their external ids."""
    bot_reply_cap_field: str = "bot_replies_per_sender_per_hour"
    """The field of the channel's section that caps the bot's answers to one sender per hour, if it has one."""
    copies_media: bool = False
    """A message received on this channel can be copied, media and all, to another chat of it (Telegram's
    copyMessage): the desk shows a customer's photo to an agent as the photo, not as a line of text."""
    takes_files: str = ""
    """How a file reaches a recipient on this channel: "attach" (sent with the message: a mail attachment, a
    Telegram document), "link" (a link in the text to the web app's copy: web chat), "" (it cannot)."""

    @classmethod
    def from_settings(cls, section: Any, *, send_only: bool = False) -> Any:
        """Build the channel from its settings section; `send_only` builds it to send without receiving."""
        return cls()

    @classmethod
    def implied_by(cls, section: Any) -> bool:
        """Whether the channel runs because its own section asks for it, even when `channels` does not name it
        (the webhook sender once a URL is set)."""
        return False

    @staticmethod
    def reply_fields(ticket_id: int, subject: str, last_ext: str, refs: list[str]) -> ReplyFields:
        """Subject, reply-to and extra meta of a reply on ticket `ticket_id`: `subject` is the last subject in the
        conversation, `last_ext` the external id of the customer's last message, `refs` (when `threads`) the
        conversation's earlier external ids, oldest first. By default a reply answers the last message."""
        return ReplyFields(reply_to=last_ext)

    @staticmethod
    def readable(address: str, display_name: str = "") -> str:
        """What agents call the person at `address` (an identity, or a customer named by one): the address on
        channels where people read addresses; a channel of opaque ids (a web chat visitor's) names them."""
        return address

    @classmethod
    def mirror_target(cls, section: Any) -> str:
        """Where the desk mirrors each handed-off ticket (a forum chat), or "" when this channel does not."""
        return ""

    @staticmethod
    def mirror_fields(target: str, ticket_id: int, title: str, topic_ref: str, close: bool) -> dict[str, str]:
        """Outbox meta for a post in ticket `ticket_id`'s mirror (`topic_ref`: where it was mirrored so far)."""
        return {}


class UnknownChannel(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Entry:
    target: str
    """"module:Class" of the channel (imported on demand, so optional SDKs stay optional)."""
    traits: str = ""
    """"module:Class" of its traits when importing the channel itself is slow; empty: the channel class."""


_KNOWN: dict[str, Entry] = {
    "memory": Entry("channels.memory:MemoryChannel"),
    "console": Entry("channels.console:ConsoleChannel"),
    "telegram": Entry("channels.telegram:TelegramChannel", traits="channels.telegram.traits:TelegramTraits"),
    "email": Entry("channels.email:EmailChannel"),
    "webchat": Entry("channels.webchat:WebChatChannel"),
    "webhook": Entry("channels.webhook:WebhookChannel"),
    "api": Entry("channels.api:ApiChannel"),
    "whatsapp": Entry("channels.whatsapp:WhatsAppChannel"),
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

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._channels.values()))

    def names(self) -> list[str]:
        return sorted(self._channels)


def known_channels() -> list[str]:
    return list(_KNOWN)


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def channel_factory(name: str) -> type:
    """The class registered for a channel name (imported on demand)."""
    try:
        entry = _KNOWN[name]
    except KeyError:
        raise UnknownChannel(f"unknown channel {name!r}; known: {', '.join(sorted(_KNOWN))}") from None
    return _load(entry.target)


@lru_cache(maxsize=64)
def traits_of(name: str) -> type[ChannelTraits]:
    """The traits of a channel by name (its light traits class, else the channel class); plain `ChannelTraits`
    for a name nobody registered (a channel another process runs, a test's stand-in)."""
    entry = _KNOWN.get(name)
    if entry is None:
        return ChannelTraits
    found = _load(entry.traits or entry.target)
    return found if isinstance(found, type) and issubclass(found, ChannelTraits) else ChannelTraits


def section_of(settings: Any, name: str) -> Any:
    """A channel's own settings section (None when the settings have none for it)."""
    traits = traits_of(name)
    return getattr(settings, traits.section or name, None)


def build(name: str, settings: Any, *, send_only: bool = False) -> Channel:
    """One channel, built by its own class from its own settings section."""
    return channel_factory(name).from_settings(section_of(settings, name), send_only=send_only)


async def cancel_and_wait(task: asyncio.Task, within: float = 10.0) -> bool:
    """Cancel `task` and wait for it to end, cancelling again while it runs: on Python 3.11 `asyncio.wait_for`
    swallows a cancellation that lands as its inner future completes, and a channel loop that swallowed it would
    run on, so a plain `cancel(); await task` could wait for ever at shutdown. False when it outlived `within`."""
    deadline = asyncio.get_running_loop().time() + within
    while not task.done():
        task.cancel()
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return False
        await asyncio.wait({task}, timeout=min(left, 0.5))
    if not task.cancelled():
        with contextlib.suppress(Exception):
            task.result()  # retrieved, so no "exception never retrieved" at exit; the loop logged it already
    return True
