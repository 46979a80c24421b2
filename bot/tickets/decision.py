"""What a ticket operation decides, as plain data: the caller's writer turns it into rows.

An operation never touches the database; it returns a `Decision` — field changes (with the values they were
decided from, so a concurrent change is caught), audit events, webhook events, messages to the customer and to
agents, load changes and the answer for whoever acted. `bot.tickets.writer.apply` is the one writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.core.messages import Button
from bot.tickets.rules import ACTIVE


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """A message to the ticket's customer, on the channel they last wrote from."""

    text: str
    key: str
    """Unique within the cause (the contact or request that led to it): makes a retried transaction send once."""
    author: str = "bot"  # bot | agent
    buttons: tuple[Button, ...] = ()
    optional: bool = False
    """Nobody to send it to is fine (a rating question); otherwise the whole operation is refused."""


@dataclass(frozen=True, slots=True)
class AgentNotice:
    """A message to agents on their preferred channel (desk traffic, never a customer contact)."""

    agent_ids: tuple[int, ...]
    text: str
    key: str
    buttons: tuple[Button, ...] = ()
    waiting: tuple[str, str] | None = None
    """(queue, the ticket in one line) when this announces a ticket waiting in a queue: an agent's several such
    announcements of one transaction become one digest (`bot.core.notice_digest`)."""


@dataclass(frozen=True, slots=True)
class ForumPost:
    """A post in the ticket's mirror topic, when the desk has one (forum mode)."""

    text: str
    key: str
    customer_name: str = ""
    tier: str | None = None
    buttons: tuple[Button, ...] = ()
    close_topic: bool = False


@dataclass(slots=True)
class Decision:
    changes: dict[str, Any] = field(default_factory=dict)
    guard: dict[str, Any] = field(default_factory=dict)
    """Fields that must still have these values when the change is written (two clicks cannot both win)."""
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    webhooks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    to_customer: list[CustomerMessage] = field(default_factory=list)
    notices: list[AgentNotice] = field(default_factory=list)
    forum: list[ForumPost] = field(default_factory=list)
    note: str | None = None
    """A private note to save on the ticket."""
    answer: str = ""
    """What to tell whoever acted."""
    buttons: tuple[Button, ...] = ()

    @property
    def changes_nothing(self) -> bool:
        return not (self.changes or self.events or self.to_customer or self.notices or self.note)

    def event(self, kind: str, **data: Any) -> Decision:
        self.events.append((kind, data))
        return self

    def webhook(self, name: str, **data: Any) -> Decision:
        self.webhooks.append((name, data))
        return self

    def load_change(self, ticket: Any) -> dict[int, int]:
        """Open-ticket counts per agent this decision changes: a ticket is its assignee's load while it is open
        or pending. Derived, never stated by an operation, so no operation can forget it."""
        def holder(status: str, assignee: int | None) -> int | None:
            return assignee if status in ACTIVE else None

        before = holder(ticket.status, ticket.assignee_id)
        after = holder(self.changes.get("status", ticket.status), self.changes.get("assignee_id", ticket.assignee_id))
        if before == after:
            return {}
        return {k: v for k, v in ((before, -1), (after, 1)) if k is not None}


def answer_only(text: str, buttons: tuple[Button, ...] = ()) -> Decision:
    """Nothing to change, something to say (\"T-3 is already yours\")."""
    return Decision(answer=text, buttons=buttons)
