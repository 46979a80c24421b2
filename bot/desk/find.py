"""/mine and /find: an agent's own open tickets, and a search over the customers and contacts they may see
(the tiers they serve; supervisors see all)."""

from __future__ import annotations

from datetime import UTC

from bot.core.attachments import said
from bot.core.names import readable_name
from bot.desk.queue import waited
from bot.desk.router import DeskCall, DeskError, DeskRouter
from channels.base import known_channels
from crm_store.models import Customer
from crm_store.repositories import desk as desk_repo
from crm_store.repositories.contact_search import ContactFilter, search_contacts

router = DeskRouter(__name__)
FOUND_LINES = 10
MIN_WORDS_CHARS = 2


@router.command("mine", "m", usage="/mine", help="your open and pending tickets, most urgent first")
async def mine(call: DeskCall) -> None:
    session = call.ctx.session
    tickets = await desk_repo.assigned_tickets(session, call.agent.id)
    if not tickets:
        call.answer("You have no open tickets. /queue shows what is waiting, /next takes the most urgent.")
        return
    names = await desk_repo.customer_names(session, [t.customer_id for t in tickets])
    lines = [f"Your tickets ({len(tickets)}):"]
    for t in tickets:
        lines.append(
            f"T-{t.id} · {t.status} · P{t.priority} · {t.channel} · {waited(t, call.ctx.now)} · "
            f"{readable_name(names.get(t.customer_id), t.channel)}: {(t.subject or '')[:60]}"
        )
    call.answer("\n".join(lines))


def _scope(call: DeskCall) -> tuple[str, ...]:
    """The tiers whose customers the caller may see; () means every tier."""
    return () if call.actor.is_supervisor else tuple(call.agent.tiers or ())


async def _customers(call: DeskCall, words: str) -> list[Customer]:
    return await desk_repo.find_customers(call.ctx.session, words, _scope(call), limit=FOUND_LINES + 1)


@router.command("find", "f", usage="/find <words>", help="search the customers and messages you may see")
async def find(call: DeskCall) -> None:
    words = " ".join(call.rest.split())
    if len(words) < MIN_WORDS_CHARS:
        raise DeskError("Usage: /find <words>, e.g. /find parcel 8812 or /find Mei")
    if len(words) > 200:
        raise DeskError("Search for at most 200 characters.")
    customers = await _customers(call, words)
    contacts = await search_contacts(
        call.ctx.session, ContactFilter(q=words, scope_tiers=_scope(call)), limit=FOUND_LINES + 1
    )
    if not customers and not contacts:
        call.answer(f"Nothing found for {words[:60]!r}.")
        return
    lines = [f"Found for {words[:60]!r}:"]
    if customers:
        lines.append("Customers:")
        lines += [f"C-{c.id} {readable_name(c.name, known_channels())} ({c.manual_tier or c.tier})"
                  for c in customers[:FOUND_LINES]]
        if len(customers) > FOUND_LINES:
            lines.append("… more: add a word.")
    if contacts:
        lines.append("Messages:")
        for row in contacts[:FOUND_LINES]:
            when = row["created_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            ticket = f" T-{row['ticket_id']}" if row["ticket_id"] else ""
            who = readable_name(row["customer_name"], known_channels())
            lines.append(f"{when}{ticket} · C-{row['customer_id']} {who}: {said(row['text'] or '', ())[:100]}")
        if len(contacts) > FOUND_LINES:
            lines.append("… more: add a word.")
    call.answer("\n".join(lines))
