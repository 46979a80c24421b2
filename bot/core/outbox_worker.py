"""Delivers the outbox: claims due replies, sends them through the channel registry, retries with exponential
backoff, and logs each delivered message as an outbound contact. A reply that fails for good is marked failed
on its ticket and its author is told; nothing is dropped silently.

Effectively once, through crashes and outages:
- each send is recorded as it completes (`SendRecorder`); a record that fails is kept and retried, never
  answered by sending again;
- a send holds one of `concurrency` permits until its result is recorded, so at any instant at most that many
  replies are delivered-or-in-flight but unrecorded: all a kill -9 can duplicate;
- every row a sender holds names it (`claimed_by`) and is leased; the sender renews the leases while it lives,
  gives them back when it stops cleanly, and on start sends what it held when it died before anything else
  (with a stable `sender_id`; otherwise any sender takes those rows when their lease runs out). Such a re-send
  goes out again with the same idempotency key: a webhook's event id header, an email's Message-ID.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core import metrics
from bot.core.attachments import OutboxFiles
from bot.core.delivery_notices import confirm_address, delivered
from bot.core.messages import DeliveryError, utcnow
from bot.core.outbound import outbox_row, preferred_address
from bot.core.outbox_sends import SendOutcome, backoff, default_sender_id, to_message
from bot.core.send_recorder import SendRecorder, is_outage
from bot.settings import OutboxSettings
from channels.base import ChannelRegistry, UnknownChannel
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import desk as desk_repo
from crm_store.repositories import outbox as outbox_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories.outbox import Reply

log = logging.getLogger(__name__)

TOPIC_MARK = "#topic="
"""A channel may append ``#topic=<ref>`` to an external id: the thread the message went into. When the item asked
for its ticket's topic (meta ``forum_topic_for_ticket``), the ref is remembered on the ticket."""


class OutboxWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: ChannelRegistry,
        cfg: OutboxSettings,
        *,
        lease: timedelta | None = None,
        readers: async_sessionmaker[AsyncSession] | None = None,
        files: OutboxFiles | None = None,
    ) -> None:
        self.sessions = sessions
        self.files = files  # loads the files a row names (the app always gives one)
        self.readers = readers  # to look before claiming: on SQLite a claim takes the one write lock
        self.registry = registry
        self.cfg = cfg
        self.lease = lease or timedelta(seconds=cfg.lease_s)
        self.sender_id = (cfg.sender_id or default_sender_id())[:64]
        self._permits = asyncio.Semaphore(max(cfg.concurrency, 1))
        self.recorder: SendRecorder[SendOutcome] = SendRecorder(self._record_once, what="outbox sends")
        self._heartbeat: asyncio.Task[None] | None = None
        self.resent_after_crash = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._passing = asyncio.Lock()  # one pass at a time per process: SQLite has no SKIP LOCKED, and
        # drain() must also wait for a pass the background loop has in flight
        self._task: asyncio.Task[None] | None = None
        self._adopted: list[Reply] = []
        self._held: set[int] = set()  # rows leased to this sender and not yet recorded: the heartbeat renews these
        self._last_claim = 0.0
        self._declined = False  # replies committed meanwhile were not leased to us: they wait in the table
        self.sent = 0
        self.failed = 0

    def wake(self) -> None:
        self._wake.set()

    def lease_for(self, channel: str, at: datetime) -> dict[str, object] | None:
        """The lease (until when, to whom) of a reply committed now for `channel`, held by this worker from
        birth so it is sent without a claiming transaction; None when this process cannot send on the channel,
        or is behind."""
        if channel not in self.registry:
            return None
        if len(self._adopted) >= self.cfg.batch * 5:
            self._declined = True  # claimed as soon as the backlog is through, not a poll interval later
            return None
        return {"next_attempt_at": at + self.lease, "claimed_by": self.sender_id}

    async def resume(self) -> int:
        """Before anything else: take back the rows this sender held when it last died and send them first.
        Up to `concurrency` of them may have been delivered already (their record was lost with the process)."""
        async with self.sessions() as session, session.begin():
            items = await outbox_repo.take_back_own(session, self.sender_id, utcnow() + self.lease)
        if items:
            log.warning(
                "outbox sender %s held %d replies when it stopped without recording them: sending them again "
                "first; at most %d of them can have been delivered already",
                self.sender_id,
                len(items),
                self.cfg.concurrency,
            )
            self._adopted[:0] = items
            self._held.update(item.id for item in items)
            self.resent_after_crash += len(items)
            self._wake.set()
        return len(items)

    def adopt(self, items: list[Reply]) -> None:
        """Replies just committed with a lease to this worker (see `lease_for`): the next pass sends them."""
        self._adopted.extend(items)
        self._held.update(item.id for item in items)
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="outbox")
            self._heartbeat = asyncio.create_task(self._renew_leases(), name="outbox-leases")

    async def stop(self, drain_for: float = 5.0) -> None:
        """Deliver what is due (for at most `drain_for` seconds), then stop."""
        if self._task is None:
            await self._release_held()
            return
        self._stopping = True
        self._wake.set()
        try:  # let a pass in flight finish: cancelling it mid-transaction would leave its connection half reset
            await asyncio.wait_for(asyncio.shield(self._task), drain_for)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        try:
            await asyncio.wait_for(self.drain(), drain_for)
        except TimeoutError:
            log.warning("outbox not drained within %.1fs; the rest is delivered on the next start", drain_for)
        await self.recorder.close(drain_for)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None
        await self._release_held()

    async def _release_held(self) -> None:
        """Give back what this process holds but did not send, so another sender need not wait for the lease."""
        held, self._adopted = [item.id for item in self._adopted], []
        self._held.difference_update(held)
        if not held:
            return
        try:
            async with self.sessions() as session, session.begin():
                await outbox_repo.release_leases(session, self.sender_id, held, utcnow())
        except Exception as exc:
            log.warning(
                "could not give back %d leased replies (%s); they go out when the lease runs out",
                len(held),
                type(exc).__name__,
            )

    async def _renew_leases(self) -> None:
        """The heartbeat: while this process lives, nobody takes over the rows it holds."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            if not self._held:
                continue
            try:
                async with self.sessions() as session, session.begin():
                    await outbox_repo.renew_leases(session, self.sender_id, list(self._held), utcnow() + self.lease)
            except Exception as exc:  # the database is away: the recorder says so once, the lease has slack
                log.debug("renewing outbox leases failed: %r", exc)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        failing: str | None = None  # the database is away: said once, not once per poll
        while not self._stopping:
            try:
                n = await self.drain_once()
            except Exception as exc:
                n = 0
                if not is_outage(exc):
                    log.exception("outbox pass failed")
                elif failing is None:
                    failing = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                    log.warning("outbox cannot claim replies (%s); retrying until the database answers", failing)
            else:
                if failing is not None:
                    log.warning("outbox claims replies again")
                failing = None
            if n >= self.cfg.batch or self._stopping or self._declined:
                continue  # a backlog, or replies left in the table for want of room: keep going (or stop)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.cfg.poll_interval_s)
                # let replies of the next few commits join this pass: fewer, larger write transactions
                await asyncio.sleep(self.cfg.coalesce_s)
            except TimeoutError:
                pass

    async def drain(self) -> int:
        """Deliver everything due now (tests and shutdown)."""
        total = 0
        while n := await self.drain_once():
            total += n
        return total

    async def drain_once(self) -> int:
        async with self._passing:
            return await self._pass()

    async def _pass(self) -> int:
        adopted, self._adopted = self._adopted[: self.cfg.batch], self._adopted[self.cfg.batch :]
        try:
            items = await self._claim(self.cfg.batch - len(adopted)) if self._claim_due_now(adopted) else []
        except Exception:
            if not adopted:
                raise
            log.exception("claiming due replies failed; sending the ones handed over")
            items = []
        adopted_ids = {item.id for item in adopted}
        items = [i for i in items if i.id not in adopted_ids] + adopted  # older ones (retries) first
        if not items:
            return 0
        by_conversation: dict[tuple[str, str], list[Reply]] = defaultdict(list)
        for item in items:
            by_conversation[(item.channel, item.recipient)].append(item)
        await asyncio.gather(*(self._send_in_order(group) for group in by_conversation.values()))
        return len(items)

    def _claim_due_now(self, adopted: list[Reply]) -> bool:
        """Look in the table when nothing was handed over, and at least every poll interval while replies keep
        being handed over (retries, other processes' replies and expired leases wait there)."""
        return not adopted or time.monotonic() - self._last_claim >= self.cfg.poll_interval_s

    async def _claim(self, limit: int) -> list[Reply]:
        self._last_claim = time.monotonic()
        if limit <= 0:
            return []
        self._declined = False
        channels = self.registry.names()
        if self.readers is not None:
            async with self.readers() as session:
                if not await outbox_repo.any_due(session, channels=channels):
                    return []
        async with self.sessions() as session, session.begin():
            items = await outbox_repo.claim_due(
                session, limit=limit, lease=self.lease, channels=channels, sender=self.sender_id
            )
        self._held.update(item.id for item in items)
        return items

    async def _send_in_order(self, items: list[Reply]) -> None:
        """One conversation's replies one after the other, each holding a permit until it is recorded (the bound
        on what a crash can leave unrecorded). The next goes out without waiting for that record: an agent's
        notices then share a recording transaction instead of taking one each."""
        recording = []
        for item in items:
            await self._permits.acquire()
            try:
                outcome = await self._send(item)
            except BaseException:
                self._permits.release()
                raise
            metrics.count_send(item.channel, outcome.kind)
            recording.append(asyncio.ensure_future(self._record(item, outcome)))
        await asyncio.gather(*recording)

    async def _record(self, item: Reply, outcome: SendOutcome) -> None:
        try:
            await self.recorder.record(outcome)
        finally:
            self._permits.release()
        self._held.discard(item.id)

    async def _send(self, item: Reply) -> SendOutcome:
        try:
            channel = self.registry.get(item.channel)
            message = to_message(item)
            if self.files is not None:
                message = await self.files.load(message)
            external_id = await channel.send(message)
            external_id, _, topic_ref = str(external_id or f"outbox-{item.id}").partition(TOPIC_MARK)
            return SendOutcome(item, external_id=external_id, topic_ref=topic_ref)
        except UnknownChannel as exc:
            return SendOutcome(item, error=str(exc))
        except DeliveryError as exc:
            return SendOutcome(item, error=exc.reason, permanent=exc.permanent, retry_after=exc.retry_after)
        except Exception as exc:
            log.warning("send via %s failed: %r", item.channel, exc)
            return SendOutcome(item, error=f"{type(exc).__name__}: {exc}")

    async def _record_once(self, outcomes: list[SendOutcome]) -> None:
        """Write what the sends did, in one transaction (the recorder retries it while the database is away)."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            self.sent += await outbox_repo.mark_sent_many(
                session, [(o.item, o.external_id) for o in outcomes if o.external_id is not None], at=now
            )
            await delivered(session, [o.item for o in outcomes if o.external_id is not None], at=now)
            topics = {
                o.item.ticket_id: o.topic_ref
                for o in outcomes
                if o.topic_ref
                and o.item.ticket_id
                and (o.item.meta or {}).get("forum_topic_for_ticket") == str(o.item.ticket_id)
            }
            if topics:
                await desk_repo.set_topic_refs(session, topics)
            for o in outcomes:
                item = o.item
                if o.external_id is not None:
                    continue
                if o.permanent or item.attempts >= self.cfg.max_attempts:
                    await self._give_up(session, item, o.error or "failed")
                    continue
                delay = backoff(item.attempts, self.cfg, o.retry_after)
                await outbox_repo.mark_retry(session, item.id, o.error or "failed", now + timedelta(seconds=delay))

    async def _give_up(self, session: AsyncSession, item: Reply, error: str) -> None:
        self.failed += 1
        log.error(
            "delivery of outbox item %s to %s:%s failed for good: %s", item.id, item.channel, item.recipient, error
        )
        await outbox_repo.mark_failed(session, item.id, error)
        if item.ticket_id is None or item.audience != "customer":
            return
        tickets_repo.add_event(
            session, item.ticket_id, "delivery_failed", channel=item.channel, error=error[:500], outbox_id=item.id
        )
        if item.agent_id is None:
            return
        where = confirm_address(item) or preferred_address(
            (await agents_repo.addresses_of(session, [item.agent_id])).get(item.agent_id, [])
        )
        if where is None:
            return
        text = f"Your reply on T-{item.ticket_id} could not be delivered via {item.channel}: {error[:300]}"
        await outbox_repo.enqueue(
            session,
            [
                outbox_row(
                    key=f"o{item.id}:failed",
                    channel=where[0],
                    recipient=where[1],
                    text=text,
                    author="system",
                    audience="desk",
                    at=utcnow(),
                    ticket_id=item.ticket_id,
                    customer_id=item.customer_id,
                    agent_id=item.agent_id,
                )
            ],
        )
