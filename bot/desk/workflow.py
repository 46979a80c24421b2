"""/note, /transfer, /pending, /tag, /priority, /subject and /status: working a ticket and saying whether one takes
new work. The rules are the ticket core's (`bot.tickets.work` and `lifecycle`); this module reads what was typed
(an agent's or queue's name, a time, tags) and hands it over."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.desk.router import DeskCall, DeskError, DeskRouter
from bot.tickets import MAX_ID, lifecycle, work
from crm_store.models import Agent, Ticket
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import desk as desk_repo

router = DeskRouter(__name__)
STATUSES = ("online", "away")
DURATION = re.compile(r"^(\d{1,4})([mhdw])$", re.IGNORECASE)
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
UNTIL_HELP = "a time like 2h, 30m, 1d or 2026-12-24T09:00 (UTC)"


def parse_until(text: str, now: datetime) -> datetime:
    """"2h", "1d" from now, or an ISO date and time (UTC unless it says otherwise)."""
    text = text.strip()
    if match := DURATION.match(text):
        return now + timedelta(**{UNITS[match.group(2).lower()]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DeskError(f"{text[:40]!r} is not {UNTIL_HELP}.") from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@router.command("note", usage="/note <ticket> <text>", help="a private note on the ticket (never sent)",
                ticket=True)
async def note(call: DeskCall, ticket: Ticket) -> None:
    await call.apply(ticket, work.note(ticket, call.actor, call.rest, now=call.ctx.now))


async def find_agent(call: DeskCall, name: str) -> Agent | None:
    """An agent by name, email, address or number (a number too large to be one is nobody's)."""
    bare = name.strip().lstrip("@")
    if bare.isdigit() and int(bare) > MAX_ID:
        return None
    return await agents_repo.find_agent(call.ctx.session, name)


async def queue_named(call: DeskCall, name: str) -> str | None:
    """A queue by name, as the routing policy and the agents know them."""
    queues = {p.queue.lower(): p.queue for p in call.ctx.policy.tiers.values()}
    for agent in (await call.ctx.agent_states()).values():
        queues.update({q.lower(): q for q in agent.queues})
    return queues.get(name.lower())


@router.command("transfer", usage="/transfer <ticket> <agent|queue>", help="hand the ticket to an agent or a queue",
                ticket=True)
async def transfer(call: DeskCall, ticket: Ticket) -> None:
    name = call.rest
    if not name:
        raise DeskError("Usage: /transfer <ticket> <agent|queue>, e.g. /transfer 12 Ana or /transfer 12 vip")
    states = await call.ctx.agent_states()
    target = await find_agent(call, name)
    if target is not None:
        if target.id not in states:
            raise DeskError(f"{target.name} cannot take tickets.")
        decision = work.transfer(ticket, call.actor, now=call.ctx.now, to_agent=states[target.id],
                                 to_agent_name=target.name)
    elif (queue := await queue_named(call, name)) is not None:
        decision = work.transfer(ticket, call.actor, now=call.ctx.now, to_queue=queue, agents=states.values())
    else:
        raise DeskError(f"No agent or queue named {name[:60]!r}.")
    await call.apply(ticket, decision)


@router.command("pending", usage="/pending <ticket> [until]",
                help=f"waiting for the customer; with {UNTIL_HELP}: snoozed until then", ticket=True)
async def pending(call: DeskCall, ticket: Ticket) -> None:
    until = parse_until(call.rest, call.ctx.now) if call.rest else None
    await call.apply(ticket, lifecycle.pending(ticket, call.actor, now=call.ctx.now, until=until))


@router.command("tag", usage="/tag <ticket> [+tag] [-tag]", help="add (+) or remove (-) tags; alone: show them",
                ticket=True)
async def tag(call: DeskCall, ticket: Ticket) -> None:
    add = [a.lstrip("+") for a in call.args if not a.startswith("-")]
    remove = [a[1:] for a in call.args if a.startswith("-")]
    await call.apply(ticket, work.tag(ticket, call.actor, now=call.ctx.now, add=add, remove=remove))


@router.command("priority", usage="/priority <ticket> <1-5>", help="set the priority (1 is most urgent)",
                ticket=True)
async def priority(call: DeskCall, ticket: Ticket) -> None:
    if len(call.args) != 1:
        raise DeskError("Usage: /priority <ticket> <1-5>")
    wanted = int(call.args[0]) if re.fullmatch(r"-?\d{1,3}", call.args[0]) else 0  # the core says what is allowed
    await call.apply(ticket, work.set_priority(ticket, call.actor, wanted, now=call.ctx.now))


@router.command("subject", usage="/subject <ticket> <text>", help="set the ticket's subject", ticket=True)
async def subject(call: DeskCall, ticket: Ticket) -> None:
    await call.apply(ticket, work.set_subject(ticket, call.actor, call.rest, now=call.ctx.now))


@router.command("status", usage="/status online|away", help="whether new tickets may be routed to you")
async def status(call: DeskCall) -> None:
    wanted = call.args[0].lower() if call.args else ""
    if wanted not in STATUSES:
        raise DeskError(f"Usage: /status online|away (you are {call.agent.status}).")
    await desk_repo.set_agent_status(call.ctx.session, call.agent.id, wanted)
    call.agent.status = wanted
    states = await call.ctx.agent_states()
    if call.agent.id in states:
        states[call.agent.id] = replace(states[call.agent.id], status=wanted)
    call.answer(f"You are {wanted}." + (" New tickets will not be routed to you." if wanted == "away" else ""))
