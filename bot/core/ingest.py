"""Durable ingestion for scale-out: channels append raw messages to a Redis Stream; any number of dispatcher
workers consume it with a consumer group.

At-least-once delivery (a message is acknowledged only after its contact is committed; a dead worker's pending
entries are taken over with XAUTOCLAIM) plus the dispatcher's idempotent contact log gives no loss and no
duplicates. Redis is a dependency the consumer recovers from: while it is unreachable the consumer waits and
says why (`problem`); a lost stream or consumer group (a Redis restarted without persistence) is recreated, and
what was published since is consumed. An entry that keeps failing goes to the dead letters (`dead_letters`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.core.dead_letters import TRANSIENT, DeadLetters, is_poison, kills_workers, poison_reason
from bot.core.dispatcher import DispatchResult
from bot.core.log_limit import limit_repeats
from bot.core.messages import Attachment, InboundMessage

log = logging.getLogger(__name__)
limit_repeats(log)

StoreOk = Callable[[], Awaitable[bool]]
"""Whether the database answers now: a failure while it does not is an outage, not a poison entry."""
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


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
    """The inbound stream: `publish` is what channels call in stream mode, `consume` what workers run.

    `problem` says why intake is stalled right now ("" when it is not); `last_progress` is when the consumer
    last finished a step (a read that found nothing, or a handled set of entries), for the watchdog."""

    def __init__(
        self,
        redis: Any,
        prefix: str,
        *,
        group: str = "dispatchers",
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 5,
        store_ok: StoreOk | None = None,
    ) -> None:
        self.redis = redis
        self.stream = f"{prefix}:inbound"
        self.dead = DeadLetters(redis, self.stream)
        self.dead_letters = self.dead.dead
        self.failures = f"{self.stream}:failures"
        """Hash: entry id → its last failure, kept until the entry is stored or parked."""
        self.group = group
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.store_ok = store_ok
        self._store_checked = (-1e9, False)
        self.consume_problem = ""
        self.publish_problem = ""
        self.last_progress = time.monotonic()
        self.handled = 0
        self.parked = 0
        self.recreated = 0

    @property
    def problem(self) -> str:
        return self.publish_problem or self.consume_problem

    async def ensure_group(self) -> None:
        """The consumer group from the stream's start: after a loss, whatever was published since is read."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def publish(self, msg: InboundMessage) -> DispatchResult:
        """Stored durably in Redis: the channel may acknowledge. The contact is logged by a worker. Raises while
        Redis does not take it, so the channel keeps its place (offset, unseen mail, a 503)."""
        try:
            await self.redis.xadd(self.stream, encode(msg))
        except RedisError as exc:
            self.publish_problem = f"Redis does not take new messages: {type(exc).__name__}: {exc}"[:300]
            raise
        self.publish_problem = ""
        return DispatchResult(contact_id=0, customer_id=None, agent_id=None, ticket_id=None, duplicate=False)

    async def consume(self, deliver, consumer: str, stop: asyncio.Event, *, count: int = 200) -> int:
        """Hand entries to `deliver` (the dispatcher) until `stop`; ack and delete each once it is stored.
        Survives Redis: waits while it is unreachable and recreates a lost group."""
        wait = 0.2
        while not stop.is_set():
            try:
                await self._step(deliver, consumer, count)
                wait = 0.2
                continue
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    self._stalled(f"Redis refused the read: {exc}")
                else:
                    await self._recreate(exc)
                    continue
            except UNREACHABLE as exc:
                self._stalled(f"Redis unreachable: {type(exc).__name__}: {exc}")
            await _sleep_unless(stop, wait)
            wait = min(wait * 2, 5.0)
        return self.handled

    def _stalled(self, reason: str) -> None:
        self.consume_problem = reason[:300]
        log.error("inbound stream %s: %s; retrying", self.stream, self.consume_problem)

    async def _recreate(self, exc: Exception) -> None:
        log.error(
            "inbound stream %s or its consumer group %s is gone (%s): Redis restarted without persistence or the "
            "key was deleted. Recreating it; entries published before the loss and not yet stored are lost "
            "(production Redis needs appendonly yes)",
            self.stream,
            self.group,
            exc,
        )
        await self.ensure_group()
        self.recreated += 1

    async def _step(self, deliver, consumer: str, count: int) -> None:
        claimed = await self._claim_stale(consumer, count)
        entries = claimed
        if not entries:
            reply = await self.redis.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=500)
            entries = [e for _stream, items in reply for e in items] if reply else []
        self.consume_problem = self.publish_problem = ""  # Redis answers again: it takes new messages too
        if entries:
            self.handled += await self._handle(deliver, entries, claimed=bool(claimed))
        self.last_progress = time.monotonic()

    async def _claim_stale(self, consumer: str, count: int) -> list[tuple[Any, dict]]:
        """Entries another worker read but never acknowledged (it died, or storing them failed): ours now."""
        result = await self.redis.xautoclaim(
            self.stream, self.group, consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=count
        )
        return [e for e in result[1] if e and e[1]]

    async def _deliveries(self, entries: list[tuple[Any, dict]]) -> dict[Any, int]:
        """How often each taken-over entry was delivered, this time included (XPENDING's delivery count)."""
        ids = [i for i, _ in entries]
        found = await self.redis.xpending_range(self.stream, self.group, min=min(ids), max=max(ids), count=10_000)
        return {p["message_id"]: int(p["times_delivered"]) for p in found}

    async def _handle(self, deliver, entries: list[tuple[Any, dict]], *, claimed: bool) -> int:
        times = await self._deliveries(entries) if claimed else {}
        failures = await self.redis.hmget(self.failures, [i for i, _ in entries]) if claimed else [None] * len(entries)

        async def one(entry_id: Any, fields: dict, last_failure: Any) -> Any:
            last = last_failure.decode("utf-8", "replace") if isinstance(last_failure, bytes) else last_failure
            delivered = times.get(entry_id, 1)
            if kills_workers(delivered, self.max_deliveries, last):
                await self._park(entry_id, fields, poison_reason(delivered, None), delivered)
                return None
            try:
                msg = decode(fields)
            except (ValueError, KeyError, TypeError) as exc:  # it can never succeed: park it at once
                await self._park(entry_id, fields, f"undecodable: {type(exc).__name__}: {exc}", delivered)
                return None
            try:
                await deliver(msg)
            except Exception as exc:  # left pending: taken over again after claim_idle_ms, by us or another worker
                await self._failed(entry_id, fields, delivered, exc)
                return None
            return entry_id

        results = await asyncio.gather(*(one(i, f, x) for (i, f), x in zip(entries, failures, strict=True)))
        done = [e for e in results if e is not None]
        if done:  # acknowledged and deleted in one round trip (in this order: an unacked entry is never lost)
            pipe = self.redis.pipeline(transaction=False)
            pipe.xack(self.stream, self.group, *done)
            pipe.xdel(self.stream, *done)
            if claimed:
                pipe.hdel(self.failures, *done)
            await pipe.execute()
        return len(done)

    async def _database_down(self) -> bool:
        """Asked once a second at most: a pass of 200 failing entries asks once."""
        if self.store_ok is None:
            return False
        now = time.monotonic()
        if now - self._store_checked[0] > 1.0:
            self._store_checked = (now, not await _answers(self.store_ok))
        return self._store_checked[1]

    async def _failed(self, entry_id: Any, fields: dict, delivered: int, exc: Exception) -> None:
        """Park a poison entry; otherwise note why it failed, for the next try and the dead letter's reason."""
        outage = await self._database_down()
        reason = f"{TRANSIENT + ': ' if outage else ''}{type(exc).__name__}: {exc}"[:500]
        if is_poison(delivered, self.max_deliveries, outage=outage):
            await self._park(entry_id, fields, poison_reason(delivered, reason), delivered)
            return
        log.warning("entry %s not stored yet: %s", entry_id, reason)
        await self.redis.hset(self.failures, entry_id, reason)

    async def _park(self, entry_id: Any, fields: dict, reason: str, deliveries: int) -> None:
        """Into the dead letters with its reason, then off the stream: it neither blocks the group nor is lost."""
        log.error("stream entry %s moved to %s: %s", entry_id, self.dead_letters, reason)
        await self.dead.park(entry_id, fields, reason, deliveries)
        await self.redis.xack(self.stream, self.group, entry_id)  # at once: nobody else parks it again
        await self.redis.xdel(self.stream, entry_id)
        await self.redis.hdel(self.failures, entry_id)
        self.parked += 1

    async def pending(self) -> int:
        info = await self.redis.xpending(self.stream, self.group)
        return int(info["pending"] if isinstance(info, dict) else info[0])

    async def waiting(self) -> int:
        """Entries in the stream not yet stored (read or not)."""
        return int(await self.redis.xlen(self.stream))


async def _answers(store_ok: StoreOk) -> bool:
    try:
        return bool(await asyncio.wait_for(store_ok(), 5))
    except Exception:
        return False


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
