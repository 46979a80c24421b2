"""Ticket page forms that change nothing twice, and canned responses sent from them.

Every rendered form carries a one-time key. The key is the cause of what the form writes (so the outbox keys
of a reply repeat and the outbox ignores the second row), is recorded in the events the action writes, and is
written to the store's form keys in the action's own transaction. A post of a key is run once, on whichever web
process it lands: while one post of it runs, the shared claim (Redis when configured, else this process's
memory) answers another as done at once; the written key answers every later one (and, without Redis, one that
raced the first on another process: its transaction finds the key and writes nothing)."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
from datetime import timedelta

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.outbound import BatchContext
from bot.tickets import Actor, Decision, TicketError, work
from bot.web import ticket_actions as actions
from bot.web.inbox.hub import form_claims, live_hub
from bot.web.ticket_actions import Step
from crm_store.models import Ticket
from crm_store.repositories import canned as canned_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import inbox as inbox_repo

log = logging.getLogger(__name__)
FORM_KEY = re.compile(r"[0-9a-f]{32}")
KEEP_KEYS = timedelta(days=30)
"""Written keys older than this are forgotten (no browser resends a form that old)..."""
PRUNE_EVERY = 500
"""... by every this many-th written key of a process."""
_written = itertools.count(1)


def new_form_key() -> str:
    return secrets.token_hex(16)


def form_key_of(form: dict) -> str | None:
    """The form's key when it is one this site hands out; anything else is a form without one."""
    value = str(form.get("form_key", ""))
    return value if FORM_KEY.fullmatch(value) else None


def cause_of(key: str) -> str:
    return f"f{key[:24]}"


class AlreadyWritten(Exception):
    """A form key an earlier post wrote: the transaction that found it rolls back, having written nothing."""


async def post_once(request: Request, session: AsyncSession, actor: Actor, ticket_id: int, step: Step,
                    key: str) -> None:
    """Run a form's core operation on the ticket unless a post of its key ran or is running (see above); a
    refusal (TicketError) releases the key, so posting the form again gives the same answer."""
    claims = form_claims(request.app)
    try:
        held = await claims.claim(key)
    except Exception as exc:  # Redis away: the written key alone still decides
        log.warning("form keys in Redis unavailable (%s); the database decides alone", exc)
        held = None
    if held is False:
        return
    written = False
    try:
        await actions.change_ticket(request, session, actor, ticket_id, once(step, key), cause=cause_of(key))
        written = True
        await live_hub(request.app).changed()
    except AlreadyWritten:
        written = True
    finally:
        if held:
            try:
                await claims.finish(key, written=written)
            except Exception as exc:
                log.warning("form key %s… not released in Redis (%s); it lapses by itself", key[:6], exc)


def once(step: Step, key: str) -> Step:
    """`step` after writing its form key in the same transaction (AlreadyWritten when it is there)."""
    marked_step = marked(step, key)

    async def run(ticket: Ticket, ctx: BatchContext) -> Decision:
        if not await inbox_repo.write_form_key(ctx.session, key, ticket.id):
            raise AlreadyWritten(key)
        if next(_written) % PRUNE_EVERY == 0:
            await inbox_repo.forget_form_keys(ctx.session, ctx.now - KEEP_KEYS)
        return await marked_step(ticket, ctx)

    return run


def marked(step: Step, key: str) -> Step:
    """`step`, with the form key recorded in what its decision writes."""

    async def run(ticket: Ticket, ctx: BatchContext) -> Decision:
        decision = await step(ticket, ctx)
        if decision.events:
            decision.events = [(kind, {**data, "form": key}) for kind, data in decision.events]
        elif decision.note is not None:
            decision.event("note_form", form=key)
        return decision

    return run


def canned_reply(actor: Actor, name: str, suffix: str = "") -> Step:
    """Reply with the canned response `name`, in the version for the customer's language (and `suffix`, an
    attached file's line, after it)."""

    async def step(ticket: Ticket, ctx: BatchContext) -> Decision:
        customer = await customers_repo.get_customer(ctx.session, ticket.customer_id)
        chosen = await canned_repo.pick(ctx.session, name, customer.language)
        if chosen is None:
            raise TicketError(f"There is no canned response {name[:64]!r}; nothing was sent.", code="invalid")
        text = "\n".join(filter(None, [chosen.text, suffix]))
        return work.reply(ticket, actor, text, now=ctx.now, customer_name=customer.name or "")

    return step
