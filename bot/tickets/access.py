"""Who may see and act on a ticket, defined once: roles, visibility and the ticket numbers people type.

Supervisors and admins see everything; an agent sees their own tickets and those of the tiers and queues they
serve (an empty list means all). The tier that counts is the ticket's own (the tier it was routed as) for a
ticket, and the customer's current tier for a customer card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.routing.policy import serves
from crm_store.models import ROLES

ALL_ROLES: tuple[str, ...] = ROLES
SUPERVISOR_ROLES: tuple[str, ...] = ("supervisor", "admin")
MAX_ID = 2**53
"""The largest ticket or customer number anyone may type (ids are 64-bit; JSON clients lose precision above)."""
TICKET_REF = re.compile(r"^(?:T-?|#)?(\d{1,20})$", re.IGNORECASE)
CUSTOMER_REF = re.compile(r"^(?:C-?)?(\d{1,20})$", re.IGNORECASE)


class TicketError(Exception):
    """A rule said no, in words for the person who asked (never a traceback). `code` lets a surface map it:
    not_found → 404, not_allowed → 403, conflict → 409, invalid → 422."""

    def __init__(self, message: str, *, code: str = "invalid", offer: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.offer = offer
        """Choices to show with the message (buttons: "Take over", ...)."""


def is_supervisor(role: str | None) -> bool:
    return role in SUPERVISOR_ROLES


def is_admin(role: str | None) -> bool:
    """Admins alone act on a person's data as a whole (export, erasure, legal hold)."""
    return role == "admin"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting on a ticket: an agent (with what they serve), the customer, the bot, the system, the API."""

    kind: str  # agent | customer | bot | system | api
    agent_id: int | None = None
    role: str = ""
    name: str = ""
    tiers: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()

    @classmethod
    def of_agent(cls, agent: Any) -> Actor:
        """From anything with an agent's fields (the ORM row, routing's AgentState)."""
        return cls(
            "agent", agent.id, agent.role, getattr(agent, "name", "") or "", tuple(agent.tiers or ()),
            tuple(agent.queues or ()),
        )

    @classmethod
    def api(cls, agent: Any | None = None) -> Actor:
        """A REST API caller: acts as the token's agent when it has one, else with supervisor rights."""
        return cls.of_agent(agent) if agent is not None else cls("api", role="admin", name="API")

    @property
    def is_person(self) -> bool:
        return self.kind in ("agent", "api")

    @property
    def is_supervisor(self) -> bool:
        return is_supervisor(self.role)

    @property
    def label(self) -> str:
        """What the audit trail records as the actor."""
        return "agent" if self.agent_id is not None else self.kind


CUSTOMER = Actor("customer")
BOT = Actor("bot")
SYSTEM = Actor("system", role="admin", name="system")


def may_see_tier(actor: Actor, tier: str | None) -> bool:
    return actor.is_supervisor or serves(actor.tiers, (), tier, None)


def may_see_ticket(actor: Actor, ticket: Any) -> bool:
    """The one visibility rule for tickets, on every surface."""
    if actor.is_supervisor or (actor.agent_id is not None and ticket.assignee_id == actor.agent_id):
        return True
    return actor.kind == "agent" and serves(actor.tiers, actor.queues, ticket.tier_at_open, ticket.queue)


def may_work_on(actor: Actor, ticket: Any) -> bool:
    """Reply, close, set pending: the assignee, a supervisor, or anyone who may see an unassigned ticket."""
    if actor.is_supervisor or ticket.assignee_id is None:
        return may_see_ticket(actor, ticket)
    return ticket.assignee_id == actor.agent_id


def parse_id(text: str | int | None, *, what: str = "ticket") -> int:
    """A ticket ("12", "T-12", "#12") or customer ("12", "C-12") number, or a clear TicketError: never an
    overflow, a negative number or a traceback."""
    raw = str(text if text is not None else "").strip()
    match = (TICKET_REF if what == "ticket" else CUSTOMER_REF).match(raw)
    example = "12 or T-12" if what == "ticket" else "12 or C-12"
    if not match:
        raise TicketError(f"{raw[:40]!r} is not a {what} number (write {example}).", code="invalid")
    number = int(match.group(1))
    if not 1 <= number <= MAX_ID:
        label = f"T-{number}" if what == "ticket" else f"C-{number}"
        raise TicketError(f"{what.capitalize()} {label[:40]} does not exist.", code="not_found")
    return number


def not_visible(ticket_id: int) -> TicketError:
    """The same answer for "no such ticket" and "not yours to see": nothing leaks."""
    return TicketError(f"Ticket T-{ticket_id} does not exist or is not in your queues.", code="not_found")


async def visible_ticket(session: Any, actor: Actor, ref: str | int) -> Any:
    """The ticket a person named (a number as typed, or an id), if it exists and they may see it; otherwise the
    same "does not exist or is not in your queues" either way, so nothing leaks. Every surface looks up through
    this."""
    from crm_store.models import Ticket

    ticket_id = parse_id(ref, what="ticket")
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None or not may_see_ticket(actor, ticket):
        raise not_visible(ticket_id)
    return ticket
