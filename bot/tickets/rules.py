"""The ticket rules' settings, kept apart from the operations so tests and surfaces share one set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

ACTIVE = ("open", "pending")
"""Statuses that count as an agent's load and run SLA clocks."""
STATUSES = ("open", "pending", "solved", "closed")
PRIORITIES = range(1, 6)
"""1 is most urgent."""
MAX_TAGS = 20
MAX_TAG_CHARS = 40


@dataclass(frozen=True, slots=True)
class TicketRules:
    reopen_window: timedelta = timedelta(days=7)
    """A customer writing within this time after a ticket was solved picks it up again."""
    rating_window: timedelta = timedelta(days=7)
    """How long after closing a rating is taken."""
    ack_new_ticket: bool = True
    """Tell the customer a person will answer when their ticket is handed off."""


DEFAULT_RULES = TicketRules()
