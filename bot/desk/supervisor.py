"""Supervisor commands: /tier (pin a customer's tier), /sla (breaches and tickets at risk), /report."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.desk.access import visible_customer
from bot.desk.router import DeskCall, DeskError, DeskRouter
from bot.tickets import SUPERVISOR_ROLES
from crm_store.models import TIERS
from crm_store.repositories import desk as desk_repo
from crm_store.repositories import reports as reports_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories import tiering as tiering_repo

router = DeskRouter(__name__)
AT_RISK_WITHIN = timedelta(minutes=30)
PERIODS = ("today", "week")


def period_start(period: str, now: datetime) -> datetime:
    """"today" starts at midnight UTC; "week" is the last seven days."""
    if period == "week":
        return now - timedelta(days=7)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = seconds / 60
    return f"{minutes:.0f}m" if minutes < 120 else f"{minutes / 60:.1f}h"


@router.command("tier", usage="/tier <customer> <VIP|important|ordinary|potential|auto>",
                help="set a customer's tier by hand (auto: back to the computed one)", roles=SUPERVISOR_ROLES)
async def set_tier(call: DeskCall) -> None:
    if len(call.args) < 2:
        raise DeskError("Usage: /tier <customer> <VIP|important|ordinary|potential|auto>")
    wanted = call.args[-1]
    tiers = {t.lower(): t for t in TIERS}
    if wanted.lower() not in (*tiers, "auto"):
        raise DeskError(f"{wanted!r} is not a tier; use one of {', '.join(TIERS)} or auto.")
    customer = await visible_customer(call, " ".join(call.args[:-1]))
    tier = None if wanted.lower() == "auto" else tiers[wanted.lower()]
    ctx = call.ctx
    await tiering_repo.set_manual_tier(ctx.session, customer.id, tier, by_agent_id=call.agent.id)
    for ticket in await tickets_repo.customer_tickets(ctx.session, customer.id, active_only=True):
        tickets_repo.add_event(ctx.session, ticket.id, "tier_set", actor="agent", agent_id=call.agent.id, at=ctx.now,
                               tier=tier or "auto")
    shown = tier or f"computed ({customer.tier})"
    call.answer(f"{customer.name or 'Customer'} (C-{customer.id}) is now {shown}. Open tickets keep their queue; "
                f"new ones route by the new tier.")


@router.command("sla", usage="/sla", help="SLA breaches and tickets at risk", roles=SUPERVISOR_ROLES)
async def sla(call: DeskCall) -> None:
    now = call.ctx.now
    due = await desk_repo.tickets_due_before(call.ctx.session, now + AT_RISK_WITHIN)
    if not due:
        call.answer("No SLA breaches and nothing due in the next 30 minutes.")
        return
    names = await desk_repo.customer_names(call.ctx.session, [t.customer_id for t in due])
    breached = [t for t in due if (desk_repo.next_due(t) or now) <= now]
    at_risk = [t for t in due if t not in breached]

    def line(t) -> str:
        when = desk_repo.next_due(t) or now
        delta = (when - now).total_seconds()
        what = "first response" if t.first_responded_at is None and t.first_response_due else "resolution"
        timing = f"{duration(-delta)} late" if delta <= 0 else f"due in {duration(delta)}"
        who = f"agent {t.assignee_id}" if t.assignee_id else "unassigned"
        return f"T-{t.id} · {t.tier_at_open} · {what} {timing} · {who} · {names.get(t.customer_id) or 'customer'}"

    lines = [f"Breached ({len(breached)}):", *(line(t) for t in breached[:20]),
             f"At risk within 30 min ({len(at_risk)}):", *(line(t) for t in at_risk[:20])]
    call.answer("\n".join(lines))


@router.command("report", usage="/report [today|week]", help="volumes, response times, CSAT by tier and agent",
                roles=SUPERVISOR_ROLES)
async def report(call: DeskCall) -> None:
    period = (call.args[0].lower() if call.args else "today")
    if period not in PERIODS:
        raise DeskError("Usage: /report [today|week]")
    session, now = call.ctx.session, call.ctx.now
    since = period_start(period, now)
    until = now + timedelta(seconds=1)
    figures = await reports_repo.ticket_figures_by_tier(session, since, until)
    times = await reports_repo.response_times(session, since, until)
    agents = await reports_repo.agent_figures(session, since, until)
    lines = [f"Report for {period} (since {since:%Y-%m-%d %H:%M} UTC)", "By tier: opened · breached · "
             "first response p50 · resolution p50 · CSAT"]
    for tier in TIERS:
        f = figures.get(tier)
        if not f:
            continue
        t = times.get(tier) or {}
        first = (t.get("first") or {}).get("p50")
        resolved = (t.get("resolution") or {}).get("p50")
        csat = f"{f['csat']:.1f} ({f['csat_n']})" if f["csat"] is not None else "—"
        lines.append(f"{tier}: {f['opened']} · {f['breached']} · {duration(first)} · {duration(resolved)} · {csat}")
    if not figures:
        lines.append("no tickets opened")
    lines.append("By agent: handled · replies · open/capacity · status")
    for a in agents:
        lines.append(f"{a['name']}: {a['handled']} · {a['replies']} · {a['load']}/{a['capacity']} · {a['status']}")
    call.answer("\n".join(lines))
