"""Ticket page forms that change nothing twice, and canned responses sent from them.

Every rendered form carries a one-time key. The key is the cause of what the form writes (so the outbox keys
of a reply repeat and the outbox ignores the second row) and is recorded in the events the action writes; a
post whose key is already in the ticket's events, or is being written right now in this process, is answered
as done without running the action again (a double click, a browser resending the form)."""

from __future__ import annotations

import re
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.outbound import BatchContext
from bot.tickets import Actor, Decision, TicketError, work
from bot.web.ticket_actions import Step
from crm_store.models import Ticket
from crm_store.repositories import canned as canned_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo

FORM_KEY = re.compile(r"[0-9a-f]{32}")
_in_flight: set[str] = set()


def new_form_key() -> str:
    return secrets.token_hex(16)


def form_key_of(form: dict) -> str | None:
    """The form's key when it is one this site hands out; anything else is a form without one."""
    value = str(form.get("form_key", ""))
    return value if FORM_KEY.fullmatch(value) else None


def cause_of(key: str) -> str:
    return f"f{key[:24]}"


async def written(session: AsyncSession, ticket_id: int, key: str) -> bool:
    """True when a form with this key was written on the ticket (the look-up ends its read transaction)."""
    events = await tickets_repo.ticket_events(session, ticket_id)
    found = any((e.data or {}).get("form") == key for e in events)
    await session.rollback()
    return found


class Claim:
    """Hold a form key while its action runs, so a second post of it in this process does not run too;
    `claimed` is False when another request holds it."""

    def __init__(self, key: str) -> None:
        self.key, self.claimed = key, False

    def __enter__(self) -> Claim:
        self.claimed = self.key not in _in_flight
        _in_flight.add(self.key)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.claimed:
            _in_flight.discard(self.key)


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
