"""Working a ticket as plain decisions: take, assign, transfer, reply, note, tags, priority and subject."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.core.delivery_notices import queued_text
from bot.core.messages import Button
from bot.routing.policy import AgentState
from bot.tickets.access import Actor, TicketError, may_see_ticket, may_work_on, serves
from bot.tickets.decision import AgentNotice, CustomerMessage, Decision, ForumPost, answer_only
from bot.tickets.rules import MAX_TAG_CHARS, MAX_TAGS, PRIORITIES


def ticket_buttons(ticket_id: int) -> tuple[Button, ...]:
    return (Button("Close", f"/close {ticket_id}"), Button("History", f"/history T-{ticket_id}"))


def _open_or_refuse(ticket: Any) -> None:
    if ticket.status == "closed":
        raise TicketError(f"T-{ticket.id} is closed; /reopen it first.", code="conflict")


def _assign(d: Decision, ticket: Any, agent_id: int | None) -> None:
    """Move the ticket (and its load) from whoever has it to `agent_id`, if nobody changed it meanwhile."""
    d.guard["assignee_id"] = ticket.assignee_id
    d.changes["assignee_id"] = agent_id


def take(ticket: Any, actor: Actor, *, now: datetime, how: str = "taken", holder: AgentState | None = None,
         holder_name: str = "") -> Decision:
    """The caller takes the ticket. Someone else's: supervisors take it over; an agent only when its holder is
    not online."""
    _open_or_refuse(ticket)
    if not may_see_ticket(actor, ticket):
        raise TicketError(f"Ticket T-{ticket.id} does not exist or is not in your queues.", code="not_found")
    if ticket.assignee_id == actor.agent_id:
        return answer_only(f"T-{ticket.id} is already yours.", ticket_buttons(ticket.id))
    d = Decision(changes={"updated_at": now})
    if ticket.assignee_id is not None:
        holder_away = holder is not None and holder.status != "online"
        if not (actor.is_supervisor or holder_away):
            raise TicketError(f"T-{ticket.id} is being handled by {holder_name or 'another agent'}; a supervisor "
                              f"can /transfer it.", code="not_allowed")
        how = "taken over"
    _assign(d, ticket, actor.agent_id)
    d.event("assigned", reason=how, from_agent_id=ticket.assignee_id, assignee_id=actor.agent_id)
    d.webhook("ticket.assigned", reason=how)
    if ticket.assignee_id is not None:
        d.notices.append(AgentNotice((ticket.assignee_id,), f"T-{ticket.id} was taken over by {actor.name}.",
                                     "takenover"))
    if ticket.topic_ref or ticket.handoff_reason:  # the mirror's "Take" is answered: someone has it now
        d.forum.append(ForumPost(f"T-{ticket.id} {how} by {actor.name or actor.label}.", "forumtake"))
    d.buttons = ticket_buttons(ticket.id)
    return d


def assign(ticket: Any, actor: Actor, target: AgentState | None, *, now: datetime, target_name: str = "") -> Decision:
    """Assign to `target` (None: back to the queue). Supervisors assign anyone; an agent may take an unassigned
    ticket or hand their own back."""
    _open_or_refuse(ticket)
    new = target.id if target is not None else None
    if new == ticket.assignee_id:
        return answer_only(f"T-{ticket.id} is already {'unassigned' if new is None else target_name + chr(39) + 's'}.")
    if not actor.is_supervisor:
        mine_back = new is None and ticket.assignee_id == actor.agent_id
        if not (mine_back or (new == actor.agent_id and ticket.assignee_id is None)):
            raise TicketError("Only a supervisor may assign tickets to others.", code="not_allowed")
    if target is not None and target.role == "agent" and not serves(target.tiers, target.queues,
                                                                    ticket.tier_at_open, ticket.queue):
        raise TicketError(f"{target_name or 'That agent'} does not serve {ticket.tier_at_open}/{ticket.queue} "
                          f"tickets.", code="invalid")
    d = Decision(changes={"updated_at": now})
    _assign(d, ticket, new)
    d.event("assigned" if new else "unassigned", reason="assigned", previous=ticket.assignee_id, assignee_id=new)
    d.webhook("ticket.assigned", previous_assignee_id=ticket.assignee_id)
    if new is not None and new != actor.agent_id:
        d.notices.append(AgentNotice((new,), f"T-{ticket.id} was assigned to you by {actor.name or actor.label}: "
                                     f"{ticket.subject or '(no subject)'}", "assigned", ticket_buttons(ticket.id)))
    d.answer = f"T-{ticket.id} " + (f"assigned to {target_name}." if new else "is back in its queue.")
    return d


def transfer(ticket: Any, actor: Actor, *, now: datetime, to_agent: AgentState | None = None,
             to_agent_name: str = "", to_queue: str | None = None, agents: Iterable[AgentState] = ()) -> Decision:
    """Hand the ticket to an agent, or to a queue (where those serving it online are told)."""
    _open_or_refuse(ticket)
    if not actor.is_supervisor and ticket.assignee_id not in (None, actor.agent_id):
        raise TicketError(f"T-{ticket.id} is someone else's; ask a supervisor to transfer it.", code="not_allowed")
    queue = to_queue or ticket.queue
    if to_agent is not None:
        if to_agent.id == ticket.assignee_id:
            raise TicketError(f"T-{ticket.id} is already {to_agent_name}'s.", code="conflict")
        if to_agent.role == "agent" and not serves(to_agent.tiers, to_agent.queues, ticket.tier_at_open, queue):
            raise TicketError(f"{to_agent_name} does not serve {ticket.tier_at_open}/{queue} tickets.")
    new = to_agent.id if to_agent is not None else None
    d = Decision(changes={"queue": queue, "updated_at": now})
    _assign(d, ticket, new)
    d.event("transferred", from_agent_id=ticket.assignee_id, to_agent_id=new, queue=queue)
    d.webhook("ticket.assigned", reason="transferred")
    history = Button("History", f"/history T-{ticket.id}")
    text = f"T-{ticket.id} was transferred to you by {actor.name or actor.label}: {ticket.subject or '(no subject)'}"
    if new is not None:
        d.notices.append(AgentNotice((new,), text, "transfer", (history,)))
    else:
        targets = tuple(a.id for a in agents if a.status == "online" and a.auto_assign
                        and a.serves(ticket.tier_at_open, queue) and a.id != actor.agent_id)
        d.notices.append(AgentNotice(targets, text, "transfer", (Button("Take", f"/take {ticket.id}"), history)))
    d.answer = f"T-{ticket.id} transferred to {to_agent_name if new else 'queue ' + queue}."
    return d


def reply(ticket: Any, actor: Actor, text: str, *, now: datetime, customer_name: str = "") -> Decision:
    """A person's answer to the customer. On an assigned ticket only its assignee or a supervisor may reply;
    an unassigned ticket becomes the replier's. The first reply by a person stops the first-response clock."""
    if not text.strip():
        raise TicketError("Nothing to send: write /reply <ticket> <text>.")
    if ticket.status == "closed":
        raise TicketError(f"T-{ticket.id} is closed; your reply was not sent (/reopen it first).", code="conflict")
    if not may_work_on(actor, ticket):
        raise TicketError(f"T-{ticket.id} is assigned to someone else; your reply was not sent.",
                          code="not_allowed", offer=(Button("Take over", f"/take {ticket.id}"),))
    d = Decision(changes={"first_responded_at": ticket.first_responded_at or now,
                          "handoff_reason": ticket.handoff_reason or "agent replied", "updated_at": now})
    if ticket.status in ("open", "solved"):
        d.changes["status"] = "pending"  # waiting for the customer
    if ticket.assignee_id is None and actor.agent_id is not None:
        _assign(d, ticket, actor.agent_id)
        d.event("assigned", reason="replied", assignee_id=actor.agent_id)
    d.to_customer.append(CustomerMessage(text, "reply", "agent"))
    d.event("replied", chars=len(text))
    d.webhook("ticket.replied", agent_id=actor.agent_id)
    d.answer = queued_text(customer_name, ticket.id)  # written, not sent: the outbox sends it
    return d


def note(ticket: Any, actor: Actor, text: str, *, now: datetime) -> Decision:
    """A private note: saved on the ticket, never sent to the customer."""
    if not text.strip():
        raise TicketError("Usage: /note <ticket> <text>")
    if not may_see_ticket(actor, ticket):
        raise TicketError(f"Ticket T-{ticket.id} does not exist or is not in your queues.", code="not_found")
    d = Decision(note=text.strip())
    d.answer = f"Note saved on T-{ticket.id} (the customer does not see it)."
    return d


def clean_tags(tags: Iterable[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        tag = "".join(ch for ch in tag.strip().lower().lstrip("#") if ch.isalnum() or ch in "-_:")[:MAX_TAG_CHARS]
        if tag and tag not in out:
            out.append(tag)
    return out


def tag(ticket: Any, actor: Actor, *, now: datetime, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Decision:
    if not may_see_ticket(actor, ticket):
        raise TicketError(f"Ticket T-{ticket.id} does not exist or is not in your queues.", code="not_found")
    current = list(ticket.tags or [])
    added, removed = clean_tags(add), set(clean_tags(remove))
    tags = [t for t in current if t not in removed] + [t for t in added if t not in current]
    if len(tags) > MAX_TAGS:
        raise TicketError(f"A ticket has at most {MAX_TAGS} tags.")
    if tags == current:
        return answer_only(f"T-{ticket.id} tags: {', '.join(tags) or 'none'}.")
    d = Decision(changes={"tags": tags, "updated_at": now})
    d.event("tagged", added=[t for t in tags if t not in current], removed=[t for t in current if t not in tags])
    d.answer = f"T-{ticket.id} tags: {', '.join(tags) or 'none'}."
    return d


def set_priority(ticket: Any, actor: Actor, priority: int, *, now: datetime) -> Decision:
    if priority not in PRIORITIES:
        raise TicketError(f"Priority is {PRIORITIES.start} (most urgent) to {PRIORITIES.stop - 1}.")
    _open_or_refuse(ticket)
    if not may_work_on(actor, ticket):
        raise TicketError(f"T-{ticket.id} is someone else's; ask its agent or a supervisor.", code="not_allowed")
    if priority == ticket.priority:
        return answer_only(f"T-{ticket.id} already has priority {priority}.")
    d = Decision(changes={"priority": priority, "updated_at": now})
    d.event("priority_set", from_priority=ticket.priority, to_priority=priority)
    d.answer = f"T-{ticket.id} now has priority {priority}."
    return d


def set_subject(ticket: Any, actor: Actor, subject: str, *, now: datetime) -> Decision:
    subject = " ".join(subject.split())[:255]
    if not subject:
        raise TicketError("A subject cannot be empty.")
    if not may_see_ticket(actor, ticket):
        raise TicketError(f"Ticket T-{ticket.id} does not exist or is not in your queues.", code="not_found")
    if subject == ticket.subject:
        return answer_only(f"T-{ticket.id} already has that subject.")
    d = Decision(changes={"subject": subject, "updated_at": now})
    d.event("subject_set", subject=subject)
    d.answer = f"T-{ticket.id}: subject set."
    return d
