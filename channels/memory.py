"""An in-memory channel: the demo's and the tests' stand-in for a real messenger.

`receive()` plays a person writing to us; everything sent is collected in `sent` (the Rasa habit of a
collecting output channel as the test fake). Configured in a long-running process (`channels = ["memory"]`), it
keeps only the last `KEPT_BY_A_PROCESS` replies: a worker that sent 50,000 of them would otherwise hold them all.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any

from bot.core.messages import Deliver, DeliveryError, InboundMessage, OutboundMessage
from channels.base import ChannelTraits

KEPT_BY_A_PROCESS = 1_000


class MemoryChannel(ChannelTraits):
    def __init__(self, name: str = "memory", *, keep: int | None = None) -> None:
        """`keep`: how many of the latest sent messages `sent` holds (None: all of them)."""
        self.name = name
        self.sent: list[OutboundMessage] | deque[OutboundMessage] = [] if keep is None else deque(maxlen=keep)
        self.fail_next: list[DeliveryError] = []
        self._deliver: Deliver | None = None
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()

    @classmethod
    def from_settings(cls, section: Any, *, send_only: bool = False) -> MemoryChannel:
        return cls(keep=KEPT_BY_A_PROCESS)

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    async def receive(self, sender: str, text: str, *, external_id: str | None = None, **kwargs: Any) -> Any:
        """Hand a message from `sender` to the dispatcher, as the real channel would."""
        if self._deliver is None:
            raise RuntimeError(f"channel {self.name} is not started")
        msg = InboundMessage.build(
            channel=self.name,
            external_id=external_id or f"{self.name}-in-{next(self._ids)}",
            sender=sender,
            text=text,
            **kwargs,
        )
        return await self._deliver(msg)

    async def send(self, message: OutboundMessage) -> str:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.sent.append(message)
        self._arrived.set()
        return f"{self.name}-out-{next(self._ids)}"

    def sent_to(self, recipient: str) -> list[str]:
        return [m.text for m in self.sent if m.recipient == recipient]

    async def wait_for(self, predicate, within: float = 5.0) -> OutboundMessage:
        """Wait until a sent message matches `predicate`; for tests and the demo."""

        async def _wait() -> OutboundMessage:
            while True:
                for m in self.sent:
                    if predicate(m):
                        return m
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(_wait(), within)
