"""Handling one batch inside its transaction: who wrote, one contact row per message (inserted at once, a repeat
is a no-op), then each new message by who sent it: the desk for agents, the bounce log for mailer daemons, the
conversation for customers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot.assistant.responder import prepare
from bot.core.bounces import bounce_targets, record_bounce
from bot.core.conversation import (
    BOT_ANSWERS,
    FOLLOWUP_ACKED,
    SPELL_STARTS,
    handle_customer_message,
    likely_ticket,
    load_bot_answers,
    open_tickets_in_bulk,
    save_languages,
)
from bot.core.messages import InboundMessage
from bot.core.outbound import BatchContext
from bot.desk import Desk
from bot.identity import Answered, carries_identity, identify, looks_like_code
from bot.tickets import lifecycle
from channels.base import traits_of
from crm_store.grouped_flush import flush_grouped
from crm_store.models import Agent, Contact
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo


@dataclass(frozen=True, slots=True)
class DispatchResult:
    contact_id: int
    customer_id: int | None
    agent_id: int | None
    ticket_id: int | None
    duplicate: bool = False


@dataclass(slots=True)
class LoggedBatch:
    """A batch after its contacts were inserted: what each message turned into, for handling one by one."""

    msgs: list[InboundMessage]
    rows: list[dict[str, Any]]
    """One contact row per distinct message (the first of a repeat within the batch)."""
    first_of: dict[ContactKey, int]
    """Each contact key's first message in `msgs`."""
    inserted: dict[ContactKey, int]
    """Contact ids of the rows that were new (repeats of earlier messages are not here)."""
    earlier: dict[ContactKey, Contact]
    """The earlier copies of repeats, whose result a repeat returns."""
    agents: dict[tuple[str, str], Agent]
    bounces: dict[str, tuple[int | None, int | None]]
    """Bounce messages' external ids → (ticket, customer) they bounced from."""


ContactKey = tuple[str, str, str]
YIELD_EVERY = 20
"""Messages handled between two turns given to the event loop's other tasks (a batch's 200 take ~20 ms)."""


class BatchHandler:
    """The batch's work, given the desk that handles agents' commands."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def handle(
        self, ctx: BatchContext, msgs: list[InboundMessage], safe_mode: str | None
    ) -> list[DispatchResult]:
        return await self._process(ctx, msgs, safe_mode)

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
        await customers_repo.remember_usernames(session, {
            customers[(m.channel, m.sender)]: m.meta_value("username")
            for m in msgs if m.meta_value("username") and (m.channel, m.sender) in customers
        })
        bounce_customers = [b[1] for b in bounce_tickets.values() if b[1] is not None]
        await self._load_facts(ctx, [*customers.values(), *bounce_customers], new_customers)
        await self._load_followup_events(ctx)
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
            if ctx.followup_events is not None:
                ctx.followup_events.opened(ctx.opened)
            await self._load_threads(ctx, rows, inserted)
            await self._classify_ahead(ctx, msgs, rows, first_of, inserted)
        logged = LoggedBatch(msgs, rows, first_of, inserted, earlier, agents, bounce_tickets)
        with session.no_autoflush:  # pending changes go out in a few bulk statements at the end, not per query
            results = await self._handle_each(ctx, logged, safe_mode)
        await flush_grouped(session)
        await save_languages(ctx)
        return results

    async def _handle_each(self, ctx: BatchContext, batch: LoggedBatch, safe_mode: str | None) -> list[DispatchResult]:
        handled: dict[ContactKey, DispatchResult] = {}
        for n, row in enumerate(batch.rows, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # other tasks (the outbox recording sends) get a turn within a long batch
            key = (row["channel"], row["external_id"], "in")
            if key not in batch.inserted:
                old = batch.earlier.get(key)
                handled[key] = (
                    DispatchResult(old.id, old.customer_id, old.agent_id, old.ticket_id, True)
                    if old
                    else DispatchResult(0, None, None, None, True)
                )
                continue
            handled[key] = await self._handle_one(ctx, batch, row, batch.msgs[batch.first_of[key]], safe_mode)
        results = [handled[(m.channel, m.external_id, "in")] for m in batch.msgs]
        return self._mark_in_batch_repeats(batch.msgs, results)

    async def _handle_one(
        self, ctx: BatchContext, batch: LoggedBatch, row: dict[str, Any], m: InboundMessage, safe_mode: str | None
    ) -> DispatchResult:
        """A new message, by who sent it: an agent (the desk), a mailer daemon (a bounce), or a customer."""
        cid = batch.inserted[(row["channel"], row["external_id"], "in")]
        if row["ticket_id"] is not None:
            ctx.logged_with[cid] = row["ticket_id"]
        ticket_id = row["ticket_id"]
        bounce = batch.bounces.get(m.external_id)
        if safe_mode:
            ticket_id = await self._safe_ticket(ctx, m, cid, row["customer_id"], safe_mode)
        elif row["agent_id"] is not None:
            await save_languages(ctx)
            await ctx.session.flush()  # desk queries (queues, loads) must see this batch's changes
            ticket_id = await self.desk.handle(ctx, m, batch.agents[(m.channel, m.sender)], cid)
        elif bounce is not None:
            if bounce[0] is not None:
                await record_bounce(ctx, bounce[0], m)
        else:
            customer_id, answered = await self._claims(ctx, m, row["customer_id"], cid)
            ticket_id = answered.ticket_id if answered else await handle_customer_message(ctx, m, cid, customer_id)
            row["customer_id"] = customer_id
        return DispatchResult(cid, row["customer_id"], row["agent_id"], ticket_id, False)

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

    @staticmethod
    async def _load_followup_events(ctx: BatchContext) -> None:
        """The events that decide whether a follow-up is acknowledged, for every ticket the batch continues."""
        if not ctx.settings.dispatch.ack_new_ticket:
            return
        tickets = {t.id for t in (*ctx.active.values(), *ctx.latest.values()) if t is not None}
        ctx.followup_events = tickets_repo.EventKinds((FOLLOWUP_ACKED, *SPELL_STARTS))
        await ctx.followup_events.load(ctx.session, tickets)

    @staticmethod
    async def _classify_ahead(
        ctx: BatchContext,
        msgs: list[InboundMessage],
        rows: list[dict[str, Any]],
        first_of: dict[ContactKey, int],
        inserted: dict[ContactKey, int],
    ) -> None:
        """The new customer messages' texts through the NLU at once (as `respond` will be asked about them), in a
        thread: a batch's classification is tens of milliseconds in which the event loop would otherwise record
        no delivered reply and read no stream."""
        limit = ctx.settings.nlu.max_chars
        texts = []
        for row in rows:
            key = (row["channel"], row["external_id"], "in")
            if row["author"] == "customer" and key in inserted and (text := msgs[first_of[key]].text).strip():
                texts.append(text[:limit])
        if texts:
            await asyncio.to_thread(prepare, ctx.responder, texts)

    @staticmethod
    async def _load_threads(ctx: BatchContext, rows: list[dict[str, Any]], inserted: dict[ContactKey, int]) -> None:
        """Earlier message ids of the conversations that replies on a threading channel (email) will name, for
        all the batch's new customer messages at once; a ticket found otherwise (a named thread) is looked up
        when replied on."""
        channels, tickets = set(), set()
        for row in rows:
            channel, customer_id = row["channel"], row["customer_id"]
            if row["author"] != "customer" or (channel, row["external_id"], "in") not in inserted:
                continue
            if not traits_of(channel).threads:
                continue
            channels.add(channel)
            for ticket in (ctx.active.get(customer_id), ctx.latest.get(customer_id)):
                if ticket is not None and ticket.id not in ctx.opened:
                    tickets.add(ticket.id)
        if tickets:
            ctx.threads.update(await contacts_repo.thread_message_ids_many(ctx.session, tickets, channels))

    async def _load_facts(self, ctx: BatchContext, customer_ids: list[int], new: set[int] = frozenset()) -> None:
        """Tier, language, key-account manager, the bot's recent answers and open conversation of each customer
        in the batch, a query each for all of them; customers created in this batch have none of those yet, so
        they cost no query."""
        for cid in new:
            ctx.facts.setdefault(cid, {"tier": "potential", "language": None, "kam": None, "name": "", BOT_ANSWERS: 0})
        known = [c for c in set(customer_ids) if c not in new]
        if not known:
            return
        missing = [c for c in known if c not in ctx.facts]  # the senders' came with who wrote
        if missing:
            ctx.facts.update(await customers_repo.customer_facts(ctx.session, missing))
        await load_bot_answers(ctx, [c for c in known if BOT_ANSWERS not in ctx.facts.get(c, {})])
        active, latest = await tickets_repo.conversations(ctx.session, known)
        ctx.active.update(active)
        ctx.latest.update(latest)

    async def _claims(
        self, ctx: BatchContext, m: InboundMessage, customer_id: int, contact_id: int
    ) -> tuple[int, Answered | None]:
        """Identities the message brings: a vouched one (own shared phone, signed website user) joins this sender
        to the customer who owns it; a claimed one (a typed email, someone else's contact card) only gets a code
        mailed there; a code typed back links its claim. Returns who the sender is now, and whether the message
        was a code (then it is answered and nothing else happens)."""
        if not (carries_identity(m) or looks_like_code(m.text)):
            return customer_id, None
        await save_languages(ctx)  # a merge reads the customers' stored languages
        return await identify(ctx, m, customer_id, contact_id, self._adopt)

    async def _adopt(self, ctx: BatchContext, contact_id: int, old: int, survivor: int) -> None:
        """After a verified merge the contact and the batch's state follow the surviving customer."""
        ctx.contact_updates.append({"id": contact_id, "customer_id": survivor})
        ctx.facts.get(survivor, {}).pop(BOT_ANSWERS, None)  # the merge moved the other's answers to it
        await self._load_facts(ctx, [survivor])
        if old in ctx.active and survivor not in ctx.active:
            ctx.active[survivor] = ctx.active.pop(old)

    async def _safe_ticket(
        self, ctx: BatchContext, m: InboundMessage, contact_id: int, customer_id: int | None, reason: str
    ) -> int | None:
        """When handling a message keeps failing, still log it on a ticket for a person to look at."""
        if customer_id is None:
            return None
        ticket = ctx.active.get(customer_id) or await tickets_repo.open_ticket(
            ctx.session,
            **lifecycle.open_fields(
                customer_id=customer_id, channel=m.channel, tier=ctx.facts.get(customer_id, {}).get("tier"),
                now=ctx.now, subject=lifecycle.subject_of(m.text, m.meta_value("subject")),
                handoff_reason=f"processing error: {reason}"[:255],
            ),
        )
        ctx.contact_updates.append({"id": contact_id, "ticket_id": ticket.id})
        tickets_repo.add_event(ctx.session, ticket.id, "processing_error", at=ctx.now, error=reason[:500])
        return ticket.id
