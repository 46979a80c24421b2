"""A terminal chat: type as a customer or as an agent; replies addressed to you are printed.

Several terminals can chat against the same database (a customer in one, an agent in another): a reply for
someone else is handed back to the outbox, so the terminal of its recipient picks it up.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import uuid
from collections.abc import Callable
from typing import Any

from bot.core.messages import Deliver, DeliveryError, InboundMessage, InvalidMessage, OutboundMessage
from channels.base import ChannelTraits


class ConsoleChannel(ChannelTraits):
    """A long reply is printed whole: a terminal has no message size to respect."""

    name = "console"
    can_send_only = False  # only the terminal's own process can print to it
    desk_rank = 1

    def __init__(
        self,
        user: str,
        *,
        display_name: str = "",
        read_line: Callable[[], str] | None = None,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.user = user
        self.display_name = display_name or user
        self._read_line = read_line or sys.stdin.readline
        self._write = write or (lambda text: print(text, flush=True))
        self._deliver: Deliver | None = None
        self._task: asyncio.Task[None] | None = None
        self._session = uuid.uuid4().hex[:8]
        self._seq = itertools.count(1)
        self.closed = asyncio.Event()

    @classmethod
    def from_settings(cls, section: Any, *, send_only: bool = False) -> ConsoleChannel:
        return cls(getattr(section, "user", "") or "you")

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._task = asyncio.create_task(self._read_loop(), name="console-input")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _read_loop(self) -> None:
        assert self._deliver is not None
        while True:
            line = await asyncio.to_thread(self._read_line)
            if line == "":  # end of input
                self.closed.set()
                return
            text = line.rstrip("\n")
            if not text.strip():
                continue
            if text.strip() in ("/quit", "/exit"):
                self.closed.set()
                return
            try:
                msg = InboundMessage.build(
                    channel=self.name,
                    external_id=f"{self._session}-{next(self._seq)}",
                    sender=self.user,
                    text=text,
                    sender_name=self.display_name,
                )
                await self._deliver(msg)
            except InvalidMessage as exc:
                self._write(f"! {exc}")
            except Exception as exc:
                self._write(f"! not stored, please try again: {exc}")

    async def send(self, message: OutboundMessage) -> str:
        if message.recipient != self.user:
            raise DeliveryError(f"{message.recipient} is not at this terminal", retry_after=0.5)
        self._write(message.text_with_buttons())
        return f"console-out-{uuid.uuid4().hex[:12]}"
