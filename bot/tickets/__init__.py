"""The ticket core: every state change of a ticket, decided in one place and written by one writer.

Operations (`lifecycle`, `work`) are plain functions of the ticket, the actor and the rules that return a
`Decision`; `apply` writes one. The desk, the dispatcher, the dashboard, the REST API, the SLA clock, the importers
and the rasa-sdk actions call these and hold no ticket rule of their own. Visibility and roles live in `access`.
"""

from __future__ import annotations

from bot.tickets import lifecycle, work
from bot.tickets.access import (
    ALL_ROLES,
    BOT,
    CUSTOMER,
    MAX_ID,
    SUPERVISOR_ROLES,
    SYSTEM,
    Actor,
    TicketError,
    is_supervisor,
    may_see_ticket,
    may_see_tier,
    may_work_on,
    not_visible,
    parse_id,
    visible_ticket,
)
from bot.tickets.decision import AgentNotice, CustomerMessage, Decision, ForumPost
from bot.tickets.rules import ACTIVE, DEFAULT_RULES, STATUSES, TicketRules
from bot.tickets.unit import finish, request_cause, ticket_work
from bot.tickets.writer import apply

__all__ = [
    "ACTIVE", "ALL_ROLES", "BOT", "CUSTOMER", "DEFAULT_RULES", "MAX_ID", "STATUSES", "SUPERVISOR_ROLES", "SYSTEM",
    "Actor", "AgentNotice", "CustomerMessage", "Decision", "ForumPost", "TicketError", "TicketRules", "apply",
    "finish", "is_supervisor", "lifecycle", "may_see_ticket", "may_see_tier", "may_work_on", "not_visible",
    "parse_id", "request_cause", "ticket_work", "visible_ticket", "work",
]
