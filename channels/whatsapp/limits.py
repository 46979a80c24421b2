"""Per-number send limits: the business number's throughput and how many messages one person gets a minute.

A short wait is waited out; a longer one is handed back to the outbox as `retry_after`, so one busy recipient
never holds up a pass for everyone else.
"""

from __future__ import annotations

import time
from collections import deque


class SendLimits:
    def __init__(self, per_second: float, per_recipient_per_minute: int, *, clock=time.monotonic) -> None:
        self.per_second = max(per_second, 0.001)
        self.per_recipient = max(per_recipient_per_minute, 1)
        self._clock = clock
        self._next_free = 0.0
        self._recent: dict[str, deque[float]] = {}

    def wait_for(self, recipient: str) -> float:
        """Seconds until a message to `recipient` may go; 0.0 reserves the slot now."""
        now = self._clock()
        sent = self._recent.setdefault(recipient, deque())
        while sent and now - sent[0] >= 60.0:
            sent.popleft()
        if len(sent) >= self.per_recipient:
            return 60.0 - (now - sent[0])
        wait = max(self._next_free - now, 0.0)
        if wait > 0:
            return wait
        self._next_free = now + 1.0 / self.per_second
        sent.append(now)
        if len(self._recent) > 10_000:  # forget people not written to in the last minute
            self._recent = {k: v for k, v in self._recent.items() if v and now - v[-1] < 60.0}
        return 0.0
