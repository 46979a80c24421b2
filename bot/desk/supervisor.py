"""Supervisor commands: /tier (pin a customer's tier), /sla (breaches and tickets at risk), /report (the
figures, read from `crm_store.repositories.figures` like the dashboard and the API)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.core.names import readable_name
from bot.desk.access import visible_customer
from bot.desk.router import DeskCall, DeskError, DeskRouter
from bot.tickets import SUPERVISOR_ROLES
from bot.web.formatting import duration
from crm_store.models import TIERS
from crm_store.repositories import desk as desk_repo
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories import tiering as tiering_repo
from crm_store.repositories.figures import Figures, Slice, figures

router = DeskRouter(__name__)
AT_RISK_WITHIN = timedelta(minutes=30)
MAX_DAYS = 366
REPORT_USAGE = "Usage: /report [today|week] or /report YYYY-MM-DD [YYYY-MM-DD]"


def report_days(args: list[str], today: date) -> tuple[date, date]:
    """The inclusive days a report covers, as the dashboard's From/To: today (the default), the last seven days
    ("week"), one day, or two days and those between."""
    words = [a.lower() for a in args]
    if not words or words == ["today"]:
        return today, today
    if words == ["week"]:
        return today - timedelta(days=6), today
    try:
        days = sorted(date.fromisoformat(w) for w in words)
    except ValueError:
        raise DeskError(REPORT_USAGE) from None
    if len(days) > 2:
        raise DeskError(REPORT_USAGE)
    first, last = days[0], days[-1]
    if last == date.max:
        raise DeskError(REPORT_USAGE)
    if (last - first).days >= MAX_DAYS:
        raise DeskError(f"A report covers at most {MAX_DAYS} days.")
    return first, last


def share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def csat(f: Slice) -> str:
    return f"{f.csat:.2f} ({f.csat_n})" if f.csat is not None else "—"


SLICE_LEGEND = ("conversations · bot-resolved · handed off · first reply p50/p90 · resolution p50/p90 · "
                "SLA breaches · CSAT (answers)")


def slice_line(label: str, f: Slice) -> str:
    """One group's figures on one line, in the order of SLICE_LEGEND."""
    return (f"{label}: {f.conversations} · {f.bot_resolved} ({share(f.bot_resolved_share)}) · {f.handed_off} · "
            f"{duration(f.first_response.p50)}/{duration(f.first_response.p90)} · {duration(f.resolution.p50)}/"
            f"{duration(f.resolution.p90)} · {f.breached} · {csat(f)}")


def report_text(numbers: Figures, label: str) -> str:
    lines = [f"Report for {label} (UTC; tickets opened then, imported history not counted)",
             f"Columns: {SLICE_LEGEND}", slice_line("All", numbers.total), "By tier:"]
    lines += [slice_line(t, numbers.by_tier[t]) for t in numbers.tiers()] or ["no tickets opened"]
    lines += ["By channel:", *(slice_line(c, numbers.by_channel[c]) for c in numbers.channels())]
    lines.append("By agent: handled · replies to customers · their tickets: first reply p50 · resolution p50 · "
                 "SLA breaches · CSAT · open/capacity · status")
    for a in numbers.agents:
        f = a.tickets
        lines.append(f"{a.name}: {a.handled} · {a.replies} · {duration(f.first_response.p50)} · "
                     f"{duration(f.resolution.p50)} · {f.breached} · {csat(f)} · {a.load}/{a.capacity} · {a.status}")
    return "\n".join(lines)


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
    """Open tickets past or near a due time, after today's breach figure (the same one /report shows)."""
    now = call.ctx.now
    midnight = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
    today = (await figures(call.ctx.session, midnight, midnight + timedelta(days=1), at=now)).total
    summary = f"SLA breaches today: {today.breached} of {today.handed_off} tickets handed to a person (see /report)."
    due = await desk_repo.tickets_due_before(call.ctx.session, now + AT_RISK_WITHIN)
    if not due:
        call.answer(f"{summary}\nNo SLA breaches open now and nothing due in the next 30 minutes.")
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
        name = readable_name(names.get(t.customer_id), t.channel)
        return f"T-{t.id} · {t.tier_at_open} · {what} {timing} · {who} · {name}"

    lines = [summary, f"Breached ({len(breached)}):", *(line(t) for t in breached[:20]),
             f"At risk within 30 min ({len(at_risk)}):", *(line(t) for t in at_risk[:20])]
    call.answer("\n".join(lines))


@router.command("report", usage="/report [today|week|YYYY-MM-DD [YYYY-MM-DD]]",
                help="conversations, bot-resolved, response times, SLA breaches, CSAT by tier, channel and agent",
                roles=SUPERVISOR_ROLES)
async def report(call: DeskCall) -> None:
    now = call.ctx.now
    first, last = report_days(call.args, now.astimezone(UTC).date())
    since = datetime.combine(first, datetime.min.time(), UTC)
    until = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC)
    span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    word = " ".join(call.args).lower() or "today"
    label = {"today": f"today ({span})", "week": f"the last 7 days ({span})"}.get(word, span)
    call.answer(report_text(await figures(call.ctx.session, since, until, at=now), label))
