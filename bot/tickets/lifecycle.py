"""A ticket's life as plain decisions: open, route (hand off to a person), the bot's answer, the customer
writing again, pending/snooze and waking, close, reopen and the customer's rating."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.assistant.texts import say
from bot.core.messages import Button
from bot.routing.policy import AgentState, RouteDecision
from bot.tickets.access import Actor, TicketError, may_work_on
from bot.tickets.decision import AgentNotice, CustomerMessage, Decision, ForumPost
from bot.tickets.rules import ACTIVE, DEFAULT_RULES, TicketRules

NOTICE_CHARS = 700


def subject_of(text: str, subject: str = "") -> str:
    """A ticket's subject: the mail's subject line, else the first line of the message."""
    line = subject or next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line[:255]


def open_fields(*, customer_id: int, channel: str, tier: str | None, now: datetime, subject: str = "",
                source: str = "live", **extra: Any) -> dict[str, Any]:
    """The fields of a new ticket (the caller inserts it and records an "opened" event)."""
    return {
        "customer_id": customer_id, "channel": channel, "status": "open", "subject": subject[:255],
        "tier_at_open": tier or "potential", "source": source, "created_at": now, "updated_at": now, **extra,
    }


def excerpt(text: str, limit: int = NOTICE_CHARS) -> str:
    """A long message as agents first see it: the start, and how much more there is."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters in all; /history shows the whole message)"


def route(
    ticket: Any, routed: RouteDecision, *, tier: str, reason: str | None, intent: str | None, language: str | None,
    agents: Iterable[AgentState], customer_name: str, text: str, channel: str, subject: str, now: datetime,
    imported: bool = False, ack: bool = True, assignee_name: str = "",
) -> Decision:
    """Hand the ticket to a person: queue, priority and SLA from the tier, the assignee routing chose, the
    notices, the forum mirror and the customer's acknowledgement. Imported history is filed, pages nobody and
    starts no clock. The forum post of an assigned ticket names who has it and offers no "Take"."""
    d = Decision()
    first = ticket.handoff_reason is None
    assignee = None if imported else routed.assignee_id
    d.changes.update(
        handoff_reason=(reason or "needs a person")[:255], intent=intent, language=language, queue=routed.queue,
        priority=routed.priority, tier_at_open=tier, status="open", assignee_id=assignee, updated_at=now,
    )
    if first and subject:
        d.changes["subject"] = subject[:255]  # the message that needed a person, not the greeting before it
    if not imported:
        d.changes.update(first_response_due=routed.first_response_due, resolution_due=routed.resolution_due)
    d.event("routed", queue=routed.queue, tier=tier, assignee_id=assignee,
            reason="imported" if imported else routed.reason, handoff=d.changes["handoff_reason"])
    if first:
        d.webhook("ticket.created")
    if assignee is not None:
        d.webhook("ticket.assigned", reason=routed.reason)
    if imported:
        return d
    targets = (assignee,) if assignee else tuple(
        a.id for a in agents if a.status == "online" and a.auto_assign and a.serves(tier, routed.queue)
    )
    notice = (
        f"New ticket T-{ticket.id} · {tier} · {channel}\nFrom: {customer_name}\n{excerpt(text)}\n"
        f"Why: {d.changes['handoff_reason']}" + ("" if assignee else f"\nWaiting in queue {routed.queue}")
    )
    everyone = (Button("Take", f"/take {ticket.id}"), Button("Close", f"/close {ticket.id}"),
                Button("History", f"/history T-{ticket.id}"))
    waiting = None if assignee else (routed.queue, f"T-{ticket.id} · {tier} · {channel} · {customer_name}: "
                                                   f"{subject_of(text)[:80]}")
    d.notices.append(AgentNotice(targets, notice, "notify", everyone[1:] if assignee else everyone, waiting))
    held = f"\nAssigned to {assignee_name or 'an agent'}" if assignee else ""
    d.forum.append(ForumPost(notice + held, "forum", customer_name, tier, everyone[1:] if assignee else everyone))
    if ack:
        d.to_customer.append(CustomerMessage(say("handoff_ack", language, ticket=ticket.id), "ack"))
    return d


def bot_answered(ticket: Any, answer: str, *, intent: str | None, now: datetime) -> Decision:
    """The bot answered by itself: the conversation is solved (bot-resolved unless the customer escalates). The
    first-response clock is a person's: the bot's answer does not stop it."""
    d = Decision(changes={"status": "solved", "solved_at": now, "resolution": "answered by the bot",
                          "intent": intent, "updated_at": now})
    d.to_customer.append(CustomerMessage(answer, "bot"))
    return d.event("bot_answered", intent=intent)


def bot_asked(ticket: Any, question: str, buttons: tuple[Button, ...], *, now: datetime) -> Decision:
    """The bot asked which topic the customer meant instead of guessing: the ticket waits for the customer,
    nobody is paged and no clock starts; their choice (or a new message) opens it again."""
    d = Decision(changes={"status": "pending", "snoozed_until": None, "updated_at": now})
    d.to_customer.append(CustomerMessage(question, "ask", "bot", buttons))
    return d.event("bot_asked", options=[b.label for b in buttons])


def customer_wrote(ticket: Any, *, now: datetime, thread_named: bool = False) -> Decision:
    """The customer wrote on this ticket: a solved or pending one is open again; a closed one only when the
    message names it (a reply to its mail); otherwise the caller opens a new ticket."""
    d = Decision()
    if ticket.status == "pending":
        d.changes.update(status="open", snoozed_until=None, updated_at=now)
    elif ticket.status == "solved" or (ticket.status == "closed" and thread_named):
        d.changes.update(status="open", solved_at=None, closed_at=None, updated_at=now)
        d.event("reopened", by="customer")
    return d


def pending(ticket: Any, actor: Actor, *, now: datetime, until: datetime | None = None) -> Decision:
    """Waiting for the customer (or snoozed until `until`, when it comes back to the agent by itself)."""
    _may_work(actor, ticket)
    if ticket.status not in ACTIVE:
        raise TicketError(f"T-{ticket.id} is {ticket.status}; /reopen it first.", code="conflict")
    if until is not None and until <= now:
        raise TicketError("Snooze until a time in the future.", code="invalid")
    d = Decision(changes={"status": "pending", "snoozed_until": until, "updated_at": now},
                 guard={"status": ticket.status})
    d.event("snoozed" if until else "pending", until=until.isoformat() if until else None)
    when = f" until {until:%Y-%m-%d %H:%M} UTC" if until else " (it opens again when the customer writes)"
    d.answer = f"T-{ticket.id} is pending{when}."
    return d


def wake(ticket: Any, *, now: datetime) -> Decision:
    """A snoozed ticket's time has come: back to open, and its assignee is told."""
    d = Decision(changes={"status": "open", "snoozed_until": None, "updated_at": now},
                 guard={"status": "pending", "snoozed_until": ticket.snoozed_until})
    d.event("woke")
    if ticket.assignee_id:
        d.notices.append(AgentNotice((ticket.assignee_id,), f"T-{ticket.id} is back from snooze: "
                                     f"{ticket.subject or '(no subject)'}", f"wake{int(now.timestamp())}"))
    return d


def close(ticket: Any, actor: Actor, resolution: str = "", *, now: datetime, language: str | None,
          by_name: str = "") -> Decision:
    """Close: the ticket leaves its assignee's load, the customer is asked for a rating when a person handled
    it, webhooks hear of it and the forum topic closes."""
    if ticket.status == "closed":
        raise TicketError(f"T-{ticket.id} is already closed.", code="conflict")
    _may_work(actor, ticket)
    resolution = resolution.strip()
    d = Decision(
        changes={"status": "closed", "closed_at": now, "solved_at": ticket.solved_at or now,
                 "resolution": resolution or ticket.resolution or f"closed by {actor.label}", "snoozed_until": None,
                 "updated_at": now},
        guard={"status": ticket.status},
    )
    d.event("closed", resolution=resolution)
    d.webhook("ticket.closed", resolution=resolution)
    if ticket.handoff_reason is not None:
        buttons = tuple(Button(str(n), f"/csat {ticket.id} {n}") for n in range(1, 6))
        d.to_customer.append(CustomerMessage(say("csat_question", language, ticket=ticket.id), "csat", "bot",
                                             buttons, optional=True))
    if ticket.topic_ref or ticket.handoff_reason:
        who = by_name or actor.name or actor.label
        d.forum.append(ForumPost(f"T-{ticket.id} closed by {who}" + (f": {resolution}" if resolution else "."),
                                 "forumclose", close_topic=True))
    d.answer = f"T-{ticket.id} closed."
    return d


def reopen(ticket: Any, actor: Actor, *, now: datetime) -> Decision:
    """An agent opens a solved or closed ticket again: it is active, and its assignee's, once more."""
    if ticket.status in ACTIVE:
        raise TicketError(f"T-{ticket.id} is {ticket.status}, not closed.", code="conflict")
    _may_work(actor, ticket)
    d = Decision(changes={"status": "open", "closed_at": None, "solved_at": None, "updated_at": now},
                 guard={"status": ticket.status})
    d.event("reopened", by=actor.label)
    d.answer = f"T-{ticket.id} is open again."
    return d


def rate(ticket: Any, score: int, *, now: datetime, rules: TicketRules = DEFAULT_RULES) -> Decision:
    """The customer's rating of a closed ticket: once, within the rating window. A late or second rating is
    answered politely and opens nothing."""
    if not 1 <= score <= 5:
        raise TicketError("A rating is a number from 1 to 5.", code="invalid")
    if ticket.status != "closed":
        raise TicketError(f"T-{ticket.id} is not closed yet.", code="not_closed")
    if ticket.csat is not None:
        raise TicketError(f"T-{ticket.id} is rated already.", code="already_rated")
    if ticket.closed_at is not None and now - ticket.closed_at > rules.rating_window:
        raise TicketError(f"T-{ticket.id} was closed too long ago to rate.", code="window_closed")
    d = Decision(changes={"csat": score}, guard={"csat": None})
    return d.event("csat", score=score)


def _may_work(actor: Actor, ticket: Any) -> None:
    if not may_work_on(actor, ticket):
        raise TicketError(f"T-{ticket.id} is someone else's; ask its agent or a supervisor.", code="not_allowed",
                          offer=(Button("Take over", f"/take {ticket.id}"),))
