"""The dispatcher: every inbound message is logged exactly once and handled in arrival order.

Messages are handled in small batches, one transaction each (group commit): `deliver()` returns only when the
batch holding its message is committed, so a channel may acknowledge as soon as it returns. Contacts are
bulk-inserted with ON CONFLICT DO NOTHING first; only the rows that were new go on to ticketing, the bot and
routing, so a repeat (even one logged by another worker a moment ago) is a no-op returning the earlier result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.assistant.responder import HumanOnly, Responder
from bot.core.bounces import bounce_targets, record_bounce
from bot.core.conversation import handle_customer_message, likely_ticket, open_tickets_in_bulk
from bot.core.locks import ConversationLocks, LocalLocks
from bot.core.messages import InboundMessage, utcnow
from bot.core.outbound import BatchContext
from bot.desk import Desk
from bot.routing.policy import RoutingPolicy
from bot.settings import Settings
from crm_store.errors import StoreUnavailable
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import outbox as outbox_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories.outbox import Reply

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DispatchResult:
    contact_id: int
    customer_id: int | None
    agent_id: int | None
    ticket_id: int | None
    duplicate: bool = False


@dataclass(slots=True)
class _Pending:
    msg: InboundMessage
    future: asyncio.Future[DispatchResult]
    queued_at: float


def conversation_key(msg: InboundMessage) -> str:
    return f"{msg.channel}:{msg.sender}"


def _written_now(rows: list[dict], added: dict[str, int]) -> list[Reply]:
    """The outbox rows this transaction added (the first of a repeated idempotency key), as items to send."""
    items, seen = [], set()
    for row in rows:
        key = row["idempotency_key"]
        if key in added and key not in seen:
            seen.add(key)
            items.append(Reply.from_row(added[key], row))
    return items


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        responder: Responder | None = None,
        policy: RoutingPolicy | None = None,
        locks: ConversationLocks | None = None,
        desk: Desk | None = None,
        on_outbox: Callable[[list[Reply]], None] = lambda items: None,
        lease_for: Callable[[str, datetime], datetime | None] = lambda channel, at: None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.responder = responder or HumanOnly()
        self.policy = policy or RoutingPolicy.default()
        self.locks = locks or LocalLocks()
        self.desk = desk or Desk.default()
        self.on_outbox = on_outbox
        self.lease_for = lease_for
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="dispatcher")

    async def stop(self) -> None:
        """Finish what was accepted, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- intake ----------------------------------------------------------------------------------------------
    async def deliver(self, msg: InboundMessage) -> DispatchResult:
        """Hand over one message; returns once it is committed (or raises if it could not be stored)."""
        if self._task is None:
            raise RuntimeError("dispatcher is not running")
        loop = asyncio.get_running_loop()
        pending = _Pending(msg, loop.create_future(), loop.time())
        await self._queue.put(pending)
        return await asyncio.shield(pending.future)

    async def _run(self) -> None:
        cfg = self.settings.dispatch
        while True:
            first = await self._queue.get()
            batch = [first]
            if cfg.batch_wait_ms > 0 and self._queue.empty():
                await asyncio.sleep(cfg.batch_wait_ms / 1000)
            while len(batch) < cfg.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._handle_locked(batch)
            except Exception as exc:
                log.exception("dispatch batch failed")
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _handle_locked(self, batch: list[_Pending]) -> None:
        """Take the conversations' locks (Redis in scale-out), handle what we hold, retry the rest shortly."""
        waiting = batch
        for attempt in range(400):
            keys = {conversation_key(p.msg) for p in waiting}
            held = await self.locks.acquire_many(keys)
            now_batch = [p for p in waiting if conversation_key(p.msg) in held]
            waiting = [p for p in waiting if conversation_key(p.msg) not in held]
            try:
                if now_batch:
                    await self.handle_batch(now_batch)
            finally:
                await self.locks.release_many(held)
            if not waiting:
                return
            await asyncio.sleep(min(0.005 * (attempt + 1), 0.1))
        raise StoreUnavailable("conversation locks stayed busy")

    # -- the batch -------------------------------------------------------------------------------------------
    async def handle_batch(self, batch: list[_Pending], *, reconnected: bool = False) -> None:
        """One transaction for the batch; on failure, each message alone, so one bad message spoils nothing."""
        try:
            results = await self._transaction(batch)
        except (OperationalError, DBAPIError, StoreUnavailable) as exc:
            if getattr(exc, "connection_invalidated", False) and not reconnected:
                log.warning("database connection lost (%s); the batch once more on a new one", type(exc).__name__)
                return await self.handle_batch(batch, reconnected=True)
            if len(batch) == 1:
                self._fail(batch, StoreUnavailable(f"could not store message: {exc.__class__.__name__}: {exc}"))
                return
            log.warning("batch of %d failed (%s); retrying one by one", len(batch), exc)
            for p in batch:
                await self.handle_batch([p])
            return
        except Exception as exc:
            if len(batch) > 1:
                log.exception("batch of %d failed; retrying one by one", len(batch))
                for p in batch:
                    await self.handle_batch([p])
                return
            log.exception(
                "message %s/%s failed; logging it without handling", batch[0].msg.channel, batch[0].msg.external_id
            )
            try:
                results = await self._transaction(batch, safe_mode=str(exc) or type(exc).__name__)
            except Exception as final:
                self._fail(batch, StoreUnavailable(f"could not store message: {final}"))
                return
        self.batches += 1
        for p, result in zip(batch, results, strict=True):
            if not p.future.done():
                p.future.set_result(result)

    def _fail(self, batch: list[_Pending], exc: Exception) -> None:
        for p in batch:
            if not p.future.done():
                p.future.set_exception(exc)

    async def _transaction(self, batch: list[_Pending], safe_mode: str | None = None) -> list[DispatchResult]:
        msgs = [p.msg for p in batch]
        async with self.sessions() as session, session.begin():
            ctx = BatchContext(
                session=session, now=utcnow(), settings=self.settings, policy=self.policy, responder=self.responder
            )
            results = await self._process(ctx, msgs, safe_mode)
            updates = ctx.changed_contacts()
            if updates:
                await contacts_repo.update_contacts(session, updates)
            leased = self._lease(ctx)
            added = await outbox_repo.enqueue(session, ctx.outbox) if ctx.outbox else {}
        if ctx.outbox:
            self.on_outbox(_written_now(leased, added))
        return results

    def _lease(self, ctx: BatchContext) -> list[dict]:
        """Replies this process can send are leased to its outbox worker as they are written: handed over after
        the commit, they go out without a claiming transaction (and after the lease, by anyone, if we die)."""
        leased = []
        for row in ctx.outbox:
            until = self.lease_for(row["channel"], ctx.now)
            if until is not None:
                row["attempts"], row["next_attempt_at"] = 1, until
                leased.append(row)
        return leased

    async def _process(
        self, ctx: BatchContext, msgs: list[InboundMessage], safe_mode: str | None
    ) -> list[DispatchResult]:
        session = ctx.session
        senders = {(m.channel, m.sender) for m in msgs}
        agent_ids, known_customers, facts = await customers_repo.who_wrote(session, senders)
        ctx.facts.update(facts)
        agents = await agents_repo.agents_by_ids(session, agent_ids) if agent_ids else {}
        bounce_tickets = await bounce_targets(session, msgs)
        names = {
            (m.channel, m.sender): m.sender_name
            for m in msgs
            if (m.channel, m.sender) not in agents and m.external_id not in bounce_tickets
        }
        customers, created = (
            await customers_repo.resolve_customers(session, names, known=known_customers) if names else ({}, set())
        )
        new_customers = {customers[p] for p in created}
        bounce_customers = [b[1] for b in bounce_tickets.values() if b[1] is not None]
        await self._load_facts(ctx, [*customers.values(), *bounce_customers], new_customers)
        rows, first_of = [], {}
        for i, m in enumerate(msgs):
            key = (m.channel, m.external_id, "in")
            if key in first_of:
                continue  # the same message twice in one batch: the first one counts
            first_of[key] = i
            agent = agents.get((m.channel, m.sender))
            bounce = bounce_tickets.get(m.external_id)
            customer_id = bounce[1] if bounce else (None if agent else customers[(m.channel, m.sender)])
            rows.append(
                {
                    "channel": m.channel,
                    "external_id": m.external_id,
                    "direction": "in",
                    "author": "agent" if agent else ("system" if bounce else "customer"),
                    "address": m.sender,
                    "customer_id": customer_id,
                    "agent_id": agent.id if agent else None,
                    "ticket_id": bounce[0] if bounce else (None if agent else likely_ticket(ctx, m, customer_id)),
                    "text": m.text,
                    "subject": (m.meta_value("subject") or None) and m.meta_value("subject")[:255],
                    "attachments": [a.as_dict() for a in m.attachments],
                    "thread_ref": m.thread_ref or None,
                    "raw_ref": m.raw_ref or None,
                    "truncated": m.truncated,
                    "desk": agent is not None,
                    "created_at": m.received_at,
                    "logged_at": ctx.now,
                }
            )
        inserted = await contacts_repo.insert_contacts(session, rows)
        earlier = (
            await contacts_repo.existing_contacts(session, [k for k in first_of if k not in inserted])
            if len(inserted) < len(first_of)
            else {}
        )
        if not safe_mode:
            await open_tickets_in_bulk(
                ctx,
                [
                    (msgs[first_of[k]], r["customer_id"])
                    for r in rows
                    if (k := (r["channel"], r["external_id"], "in")) in inserted and r["author"] == "customer"
                ],
            )
        with session.no_autoflush:  # pending changes go out in a few bulk statements at the end, not per query
            return await self._handle_each(
                ctx, msgs, rows, first_of, inserted, earlier, agents, bounce_tickets, safe_mode
            )

    async def _handle_each(self, ctx, msgs, rows, first_of, inserted, earlier, agents, bounce_tickets, safe_mode):
        handled: dict[tuple[str, str, str], DispatchResult] = {}
        for row in rows:
            key = (row["channel"], row["external_id"], "in")
            m = msgs[first_of[key]]
            if key not in inserted:
                old = earlier.get(key)
                handled[key] = (
                    DispatchResult(old.id, old.customer_id, old.agent_id, old.ticket_id, True)
                    if old
                    else DispatchResult(0, None, None, None, True)
                )
                continue
            cid = inserted[key]
            if row["ticket_id"] is not None:
                ctx.logged_with[cid] = row["ticket_id"]
            ticket_id = row["ticket_id"]
            if safe_mode:
                ticket_id = await self._safe_ticket(ctx, m, cid, row["customer_id"], safe_mode)
            elif row["agent_id"] is not None:
                await ctx.session.flush()  # desk queries (queues, loads) must see this batch's changes
                ticket_id = await self.desk.handle(ctx, m, agents[(m.channel, m.sender)], cid)
            elif m.external_id in bounce_tickets:
                if bounce_tickets[m.external_id][0] is not None:
                    await record_bounce(ctx, bounce_tickets[m.external_id][0], m)
            else:
                customer_id = await self._claims(ctx, m, row["customer_id"], cid)
                ticket_id = await handle_customer_message(ctx, m, cid, customer_id)
                row["customer_id"] = customer_id
            handled[key] = DispatchResult(cid, row["customer_id"], row["agent_id"], ticket_id, False)
        results = [handled[(m.channel, m.external_id, "in")] for m in msgs]
        return self._mark_in_batch_repeats(msgs, results)

    @staticmethod
    def _mark_in_batch_repeats(msgs: list[InboundMessage], results: list[DispatchResult]) -> list[DispatchResult]:
        seen: set[tuple[str, str]] = set()
        out = []
        for m, r in zip(msgs, results, strict=True):
            key = (m.channel, m.external_id)
            if key in seen and not r.duplicate:
                r = DispatchResult(r.contact_id, r.customer_id, r.agent_id, r.ticket_id, True)
            seen.add(key)
            out.append(r)
        return out

    async def _load_facts(self, ctx: BatchContext, customer_ids: list[int], new: set[int] = frozenset()) -> None:
        """Tier, language, key-account manager and open conversation of each customer in the batch; customers
        created in this batch have none of those yet, so they cost no query."""
        for cid in new:
            ctx.facts.setdefault(cid, {"tier": "potential", "language": None, "kam": None, "name": ""})
        known = [c for c in set(customer_ids) if c not in new]
        if not known:
            return
        missing = [c for c in known if c not in ctx.facts]  # the senders' came with who wrote
        if missing:
            ctx.facts.update(await customers_repo.customer_facts(ctx.session, missing))
        active, latest = await tickets_repo.conversations(ctx.session, known)
        ctx.active.update(active)
        ctx.latest.update(latest)

    async def _claims(self, ctx: BatchContext, m: InboundMessage, customer_id: int, contact_id: int) -> int:
        """A shared phone number or a left email joins this sender to the customer who owns it."""
        for meta_key, channel in (("claimed_email", "email"), ("claimed_phone", "phone")):
            value = m.meta_value(meta_key).strip().lower() if meta_key == "claimed_email" else m.meta_value(meta_key)
            if not value:
                continue
            survivor = await customers_repo.link_identity(ctx.session, customer_id, channel, value.strip())
            if survivor != customer_id:
                ctx.contact_updates.append({"id": contact_id, "customer_id": survivor})
                await self._load_facts(ctx, [survivor])
                if customer_id in ctx.active and survivor not in ctx.active:
                    ctx.active[survivor] = ctx.active.pop(customer_id)
                customer_id = survivor
        return customer_id

    async def _safe_ticket(
        self, ctx: BatchContext, m: InboundMessage, contact_id: int, customer_id: int | None, reason: str
    ) -> int | None:
        """When handling a message keeps failing, still log it on a ticket for a person to look at."""
        if customer_id is None:
            return None
        ticket = ctx.active.get(customer_id) or await tickets_repo.open_ticket(
            ctx.session,
            customer_id=customer_id,
            channel=m.channel,
            status="open",
            subject=m.text[:120],
            created_at=ctx.now,
            updated_at=ctx.now,
            handoff_reason=f"processing error: {reason}"[:255],
        )
        ctx.contact_updates.append({"id": contact_id, "ticket_id": ticket.id})
        tickets_repo.add_event(ctx.session, ticket.id, "processing_error", at=ctx.now, error=reason[:500])
        return ticket.id
