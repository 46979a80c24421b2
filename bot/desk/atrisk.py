"""/atrisk: the valuable customers at risk, as on the dashboard's tiers page (the same list, from
`bot.routing.tier_history`), with their key-account manager and why; /checkin: an agent's own message to such a
customer, on a new ticket that is the agent's, sent like any desk reply (`bot.desk.tickets.send_reply`)."""

from __future__ import annotations

from bot.core.messages import Button
from bot.desk.access import visible_customer
from bot.desk.router import DeskCall, DeskError, DeskRouter
from bot.desk.tickets import send_reply
from bot.routing import tier_history
from bot.tickets import SUPERVISOR_ROLES, lifecycle
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo

router = DeskRouter(__name__)
DEFAULT_SHOWN = 10
MAX_SHOWN = 50


def shown_count(args: list[str]) -> int:
    if not args:
        return DEFAULT_SHOWN
    if len(args) > 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= MAX_SHOWN:
        raise DeskError(f"Usage: /atrisk [how many, 1-{MAX_SHOWN}]")
    return int(args[0])


@router.command(
    "atrisk",
    usage="/atrisk [n]",
    roles=SUPERVISOR_ROLES,
    help="valuable customers at risk: probability alive falling, complaints, low ratings",
)
async def at_risk(call: DeskCall) -> None:
    limit = shown_count(call.args)
    found = await tier_history.at_risk(call.ctx.session, call.ctx.now, limit=limit)
    if not found:
        call.answer("Nobody in the VIP and important tiers shows a warning (or tiers have not been computed yet).")
        return
    lines = [f"Valuable customers at risk (most valuable first, {len(found)} shown):"]
    for r in found:
        value = "—" if r.predicted_value is None else f"{r.predicted_value:,.0f}"
        alive = "—" if r.p_alive is None else f"{r.p_alive:.0%}"
        lines.append(
            f"C-{r.customer_id} {r.name} · {r.tier} · 12-month value {value} · alive {alive} · "
            f"KAM {r.key_account_manager or '—'} — {'; '.join(r.reasons)}"
        )
    call.answer(
        "\n".join(lines), tuple(Button(f"C-{r.customer_id}", f"/customer C-{r.customer_id}") for r in found[:5])
    )


async def check_in_channel(call: DeskCall, customer_id: int) -> str:
    """Where the customer can be written to: the channel they last wrote from, else their first identity's."""
    identities = await customers_repo.identities_of(call.ctx.session, customer_id)
    channels = {i.channel for i in identities}
    for contact in await contacts_repo.customer_history(call.ctx.session, customer_id, limit=20):
        if contact.direction == "in" and contact.channel in channels:
            return contact.channel
    if not identities:
        raise DeskError("This customer has no address to write to; nothing was sent.")
    return identities[0].channel


@router.command(
    "checkin",
    usage="/checkin <customer> <text>",
    help="write to a customer first (a check-in): a new ticket of yours, answered on their channel",
)
async def check_in(call: DeskCall) -> None:
    if len(call.args) < 2:
        raise DeskError("Usage: /checkin <customer> <text>")
    customer = await visible_customer(call, call.args[0])
    text = call.rest.split(maxsplit=1)[1].strip() if len(call.rest.split(maxsplit=1)) > 1 else ""
    if not text:
        raise DeskError("Usage: /checkin <customer> <text>")
    channel = await check_in_channel(call, customer.id)
    ctx = call.ctx
    tier = customer.manual_tier or customer.tier
    fields = lifecycle.open_fields(
        customer_id=customer.id, channel=channel, tier=tier, now=ctx.now, subject="Check-in", source="agent"
    )
    ticket = await tickets_repo.open_ticket(ctx.session, **fields)
    tickets_repo.add_event(
        ctx.session,
        ticket.id,
        "opened",
        actor=call.actor.label,
        agent_id=call.agent.id,
        at=ctx.now,
        channel=channel,
        source="agent",
    )
    ctx.opened.add(ticket.id)
    await send_reply(call, ticket, text)
