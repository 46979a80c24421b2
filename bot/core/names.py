"""How agents see a customer's name: a name that is only a channel's opaque id (a web chat visitor named by
their id, when nothing better was known) reads the way that channel names its people ("Visitor 4821")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from channels.base import traits_of


def readable_name(name: str | None, channels: str | Iterable[str], fallback: str = "customer") -> str:
    """`name` as agents see it, asking the channels the customer is known on (`channels`: one or several)."""
    if not name:
        return fallback
    for channel in [channels] if isinstance(channels, str) else channels:
        shown = traits_of(channel).readable(name)
        if shown != name:
            return shown
    return name


def notice_name(facts: dict[str, Any], msg: Any) -> str:
    """The customer as notices about their message name them: their stored name, else the name the channel
    gave, else their address, never as an opaque id."""
    return readable_name(facts.get("name") or msg.sender_name or msg.sender, msg.channel)
