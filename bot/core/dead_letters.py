"""The inbound stream's dead letters: entries that cannot be stored are parked here with their reason, so they
block nobody and are not lost; an operator lists them, sends them back to the stream or drops them
(`tierdesk dead list|retry|drop`).

An entry is poison when it fails again, while the database answers, after Redis delivered it more than
`max_deliveries` times (every read and every take-over of a pending entry counts). Failures during a database
outage say nothing about the entry, so they never send it here. An entry whose worker never finished a try
(each one died with it) is parked before it takes down another, once delivered twice as often.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TRANSIENT = "outage"
"""Prefix of a recorded failure that happened while the database did not answer."""
REASON_CHARS = 500


def is_poison(times_delivered: int, max_deliveries: int, *, outage: bool) -> bool:
    """Whether an entry that just failed on its `times_delivered`-th delivery goes to the dead letters."""
    return times_delivered > max_deliveries and not outage


def kills_workers(times_delivered: int, max_deliveries: int, last_failure: str | None) -> bool:
    """Whether to park an entry before trying it: delivered over twice the allowance and no try ever finished
    (`last_failure` is None), so each try ended its worker."""
    return last_failure is None and times_delivered > 2 * max_deliveries


def poison_reason(times_delivered: int, last_failure: str | None) -> str:
    if last_failure is None:
        return f"delivered {times_delivered} times; no try finished (its worker stopped each time)"
    return f"delivered {times_delivered} times; last error: {last_failure}"[:REASON_CHARS]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One parked entry as an operator sees it."""

    id: str
    entry: str
    """The entry's id in the inbound stream when it was parked."""
    reason: str
    deliveries: int
    at: str
    channel: str = ""
    external_id: str = ""
    sender: str = ""


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value or "")


def _as_dead_letter(entry_id: Any, fields: dict[Any, Any]) -> DeadLetter:
    data = {_text(k): v for k, v in fields.items()}
    try:
        message = json.loads(data.get("m") or b"{}")
    except ValueError:
        message = {}
    message = message if isinstance(message, dict) else {}
    deliveries = _text(data.get("deliveries"))
    return DeadLetter(
        id=_text(entry_id),
        entry=_text(data.get("entry")),
        reason=_text(data.get("error")),
        deliveries=int(deliveries) if deliveries.isdigit() else 0,
        at=_text(data.get("at")),
        channel=str(message.get("channel", ""))[:40],
        external_id=str(message.get("external_id", ""))[:255],
        sender=str(message.get("sender", ""))[:255],
    )


class DeadLetters:
    """The dead-letter stream next to an inbound stream (`{stream}:dead`)."""

    def __init__(self, redis: Any, stream: str) -> None:
        self.redis = redis
        self.stream = stream
        self.dead = f"{stream}:dead"

    async def park(self, entry_id: Any, fields: dict[Any, Any], reason: str, deliveries: int) -> None:
        """Copy the entry here with its reason (the caller then acknowledges and deletes it from the stream)."""
        kept = {k: v for k, v in fields.items() if _text(k) == "m"} or dict(fields)
        await self.redis.xadd(
            self.dead,
            {
                **kept,
                "entry": _text(entry_id),
                "error": reason[:REASON_CHARS],
                "deliveries": str(deliveries),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        return [_as_dead_letter(i, f) for i, f in await self.redis.xrange(self.dead, count=limit)]

    async def count(self) -> int:
        return int(await self.redis.xlen(self.dead))

    async def _chosen(self, ids: list[str]) -> list[tuple[Any, dict]]:
        if ids:
            found = [await self.redis.xrange(self.dead, min=i, max=i, count=1) for i in ids]
            return [entries[0] for entries in found if entries]
        return list(await self.redis.xrange(self.dead))

    async def retry(self, ids: list[str]) -> list[str]:
        """Send the chosen entries (all when `ids` is empty) back to the inbound stream, as new entries; their
        ids here are returned. A retry of what still fails comes back here after `max_deliveries` again."""
        done = []
        for entry_id, fields in await self._chosen(ids):
            message = {k: v for k, v in fields.items() if _text(k) == "m"}
            if message:
                await self.redis.xadd(self.stream, message)
            await self.redis.xdel(self.dead, entry_id)
            done.append(_text(entry_id))
        return done

    async def drop(self, ids: list[str]) -> list[str]:
        """Delete the chosen entries (all when `ids` is empty) for good; their ids are returned."""
        chosen = [entry_id for entry_id, _ in await self._chosen(ids)]
        if chosen:
            await self.redis.xdel(self.dead, *chosen)
        return [_text(i) for i in chosen]
