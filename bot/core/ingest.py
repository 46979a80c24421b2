"""Durable ingestion for scale-out: channels append raw messages to a Redis Stream; any number of dispatcher
workers consume it with a consumer group.

At-least-once delivery (a message is acknowledged only after its contact is committed; a dead worker's pending
entries are taken over with XAUTOCLAIM) plus the dispatcher's idempotent contact log gives no loss and no
duplicates.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import Any

from redis.exceptions import ResponseError

from bot.core.dispatcher import DispatchResult
from bot.core.messages import Attachment, InboundMessage

log = logging.getLogger(__name__)


def encode(msg: InboundMessage) -> dict[str, str]:
    return {
        "m": json.dumps(
            {
                "channel": msg.channel,
                "external_id": msg.external_id,
                "sender": msg.sender,
                "text": msg.text,
                "sender_name": msg.sender_name,
                "thread_ref": msg.thread_ref,
                "raw_ref": msg.raw_ref,
                "received_at": msg.received_at.isoformat(),
                "truncated": msg.truncated,
                "edit_of": msg.edit_of,
                "attachments": [a.as_dict() for a in msg.attachments],
                "meta": [list(p) for p in msg.meta],
            },
            ensure_ascii=False,
        )
    }


def decode(fields: dict[Any, Any]) -> InboundMessage:
    raw = fields.get(b"m") or fields.get("m")
    data = json.loads(raw)
    return InboundMessage(
        channel=data["channel"],
        external_id=data["external_id"],
        sender=data["sender"],
        text=data["text"],
        sender_name=data["sender_name"],
        thread_ref=data["thread_ref"],
        raw_ref=data["raw_ref"],
        received_at=datetime.fromisoformat(data["received_at"]),
        truncated=data["truncated"],
        edit_of=data["edit_of"],
        attachments=tuple(Attachment(**a) for a in data["attachments"]),
        meta=tuple((k, v) for k, v in data["meta"]),
    )


class StreamIngest:
    """The inbound stream: `publish` is what channels call in stream mode, `consume` what workers run."""

    def __init__(self, redis: Any, prefix: str, *, group: str = "dispatchers", claim_idle_ms: int = 30_000) -> None:
        self.redis = redis
        self.stream = f"{prefix}:inbound"
        self.dead_letters = f"{prefix}:inbound:dead"
        self.group = group
        self.claim_idle_ms = claim_idle_ms

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def publish(self, msg: InboundMessage) -> DispatchResult:
        """Stored durably in Redis: the channel may acknowledge. The contact is logged by a worker."""
        await self.redis.xadd(self.stream, encode(msg))
        return DispatchResult(contact_id=0, customer_id=None, agent_id=None, ticket_id=None, duplicate=False)

    async def consume(self, deliver, consumer: str, stop: asyncio.Event, *, count: int = 200) -> int:
        """Hand entries to `deliver` (the dispatcher) until `stop`; ack and delete each once it is stored."""
        await self.ensure_group()
        handled = 0
        while not stop.is_set():
            entries = await self._claim_stale(consumer, count)
            if not entries:
                reply = await self.redis.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=500)
                entries = [e for _stream, items in reply for e in items] if reply else []
            if entries:
                handled += await self._handle(deliver, entries)
        return handled

    async def _claim_stale(self, consumer: str, count: int) -> list[tuple[Any, dict]]:
        """Entries another worker read but never acknowledged (it died): ours now."""
        result = await self.redis.xautoclaim(
            self.stream, self.group, consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=count
        )
        return [e for e in result[1] if e and e[1]]

    async def _handle(self, deliver, entries: list[tuple[Any, dict]]) -> int:
        async def one(entry_id: Any, fields: dict) -> Any:
            try:
                msg = decode(fields)
            except (ValueError, KeyError, TypeError) as exc:
                # it can never succeed: park it, with the reason, where an operator finds it, so it neither
                # blocks the group nor is lost
                log.error("undecodable stream entry %s moved to %s: %s", entry_id, self.dead_letters, exc)
                await self.redis.xadd(self.dead_letters, {**fields, "error": f"{type(exc).__name__}: {exc}"[:500]})
                await self.redis.xack(self.stream, self.group, entry_id)  # at once: nobody else parks it again
                await self.redis.xdel(self.stream, entry_id)
                return None
            try:
                await deliver(msg)
            except Exception as exc:  # left pending: another pass (or worker) retries it
                log.warning("entry %s not stored yet: %s", entry_id, exc)
                return None
            return entry_id

        done = [e for e in await asyncio.gather(*(one(i, f) for i, f in entries)) if e is not None]
        if done:
            await self.redis.xack(self.stream, self.group, *done)
            await self.redis.xdel(self.stream, *done)
        return len(done)

    async def pending(self) -> int:
        info = await self.redis.xpending(self.stream, self.group)
        return int(info["pending"] if isinstance(info, dict) else info[0])
