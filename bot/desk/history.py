"""/history, /customer and /merge: everything an agent needs to know about a customer, across every channel, and
joining two records of the same person (the core's `bot.tickets.customers` decides and writes the merge)."""

from __future__ import annotations

from datetime import UTC

from bot.core.attachments import said
from bot.core.messages import Button
from bot.core.names import readable_name
from bot.desk.access import customer_by_number, visible_customer
from bot.desk.router import DeskCall, DeskError, DeskRouter
from bot.routing import tier_history
from bot.tickets import SUPERVISOR_ROLES
from bot.tickets.customers import merge, write_merge
from channels.base import traits_of
from crm_store.models import Contact
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customer_card as card_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo

router = DeskRouter(__name__)
MAX_PAGE = 50


def contact_line(c: Contact, width: int = 160) -> str:
    arrow = "→" if c.direction == "in" else "←"
    who = {"customer": "customer", "agent": "agent", "bot": "bot", "system": "system"}.get(c.author, c.author)
    text = said(" ".join(c.text.split()), c.attachments or ())
    if len(text) > width:
        text = text[: width - 1] + "…"
    ticket = f" T-{c.ticket_id}" if c.ticket_id else ""
    edited = " (edited)" if c.edit_of_id else ""
    when = c.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return f"{when} {arrow} {c.channel}{ticket} · {who}{edited}: {text}"


def identity_label(channel: str, address: str, display_name: str = "") -> str:
    """An identity as agents read it: a web chat visitor by their readable name, never by the id."""
    if channel == customers_repo.USERNAME_CHANNEL:
        return f"telegram:@{address}"
    return f"{channel}:{traits_of(channel).readable(address, display_name)}"


@router.command(
    "history",
    "h",
    usage="/history <customer|T-ticket> [n] [page]",
    help="the customer's contacts on every channel, newest first",
)
async def history(call: DeskCall) -> None:
    if not call.args:
        raise DeskError("Usage: /history <customer|T-ticket> [n] [page]")
    ref = call.args[0]
    try:
        n = int(call.args[1]) if len(call.args) > 1 else 10
        page = int(call.args[2]) if len(call.args) > 2 else 1
    except ValueError as exc:
        raise DeskError("n and page must be numbers, e.g. /history 42 10 2") from exc
    n, page = max(1, min(n, MAX_PAGE)), max(page, 1)
    customer = await visible_customer(call, ref)
    rows = await contacts_repo.customer_history(call.ctx.session, customer.id, limit=n + 1, offset=(page - 1) * n)
    more = len(rows) > n
    rows = rows[:n]
    identities = await customers_repo.identities_of(call.ctx.session, customer.id)
    name = readable_name(customer.name, [i.channel for i in identities])
    if not rows:
        call.answer(f"No contacts for {name} (C-{customer.id})" + (" on this page." if page > 1 else "."))
        return
    head = f"History of {name} (C-{customer.id}), page {page}:"
    buttons = []
    if page > 1:
        buttons.append(Button("Newer", f"/history C-{customer.id} {n} {page - 1}"))
    if more:
        buttons.append(Button("Older", f"/history C-{customer.id} {n} {page + 1}"))
    call.answer("\n".join([head, *(contact_line(c) for c in rows)]), tuple(buttons))


@router.command(
    "customer",
    "c",
    usage="/customer <id|@username|email|phone>",
    help="the 360° card: identities, tier and why, value, tickets, notes",
)
async def customer_card(call: DeskCall) -> None:
    if not call.args:
        raise DeskError("Usage: /customer <id|@username|email|phone>")
    session = call.ctx.session
    customer = await visible_customer(call, call.rest)
    identities = await customers_repo.identities_of(session, customer.id)
    card = await card_repo.card_figures(session, customer.id)  # value, outlook and manager in one read
    open_tickets = await tickets_repo.customer_tickets(session, customer.id, active_only=True)
    recent = await contacts_repo.customer_history(session, customer.id, limit=5)
    notes = await tickets_repo.notes_of(session, customer.id, limit=3)
    kam = card.key_account_manager
    tier = customer.manual_tier or customer.tier
    why = "set by hand" if customer.manual_tier else customer.tier_reason
    last = card.last.strftime("%Y-%m-%d") if card.last else "never"
    lines = [
        f"{readable_name(customer.name, [i.channel for i in identities], 'Customer')} (C-{customer.id})"
        + (f" · ref {customer.external_ref}" if customer.external_ref else ""),
        f"Tier: {tier} — {why}",
        f"Value: {card.total:,.2f} over {card.purchases} purchases, last {last}",
        tier_history.outlook_of(card.predicted_value, card.p_alive, card.purchases, card.last, call.ctx.now).line(),
        f"Key-account manager: {kam.name if kam else '—'}",
        f"Stage: {customer.lifecycle_stage} · language: {customer.language or '?'}",
        "Identities: " + (", ".join(identity_label(i.channel, i.address, i.display_name) for i in identities) or "—"),
        "Open tickets: " + (", ".join(f"T-{t.id} ({t.status}, {t.queue})" for t in open_tickets) or "none"),
    ]
    if recent:
        lines += ["Last contacts:", *(contact_line(c, 100) for c in recent)]
    if notes:
        lines += ["Notes:", *(f"- {n.text[:200]}" for n in notes)]
    call.answer("\n".join(lines), (Button("History", f"/history C-{customer.id}"),))


@router.command("merge", usage="/merge <customer> <into-customer>",
                help="join two records of the same person (C-7 C-3: C-7's history becomes C-3's)",
                roles=SUPERVISOR_ROLES)
async def merge_customers(call: DeskCall) -> None:
    if len(call.args) != 2:
        raise DeskError("Usage: /merge <customer> <into-customer>, e.g. /merge C-7 C-3")
    source = await customer_by_number(call, call.args[0])
    target = await customer_by_number(call, call.args[1])
    decided = merge(source, target, call.actor, now=call.ctx.now)
    moved = await write_merge(call.ctx, decided, call.actor, cause=call.cause)
    shown = ", ".join(f"T-{t}" for t in moved[:10]) + (" …" if len(moved) > 10 else "")
    call.answer(f"C-{source.id} ({source.name or 'customer'}) merged into C-{target.id} "
                f"({target.name or 'customer'}): {len(moved)} tickets moved{': ' + shown if moved else ''}.",
                (Button("History", f"/history C-{target.id}"),))
