"""/atrisk: the valuable customers at risk, as on the dashboard's tiers page (the same list, from
`bot.routing.tier_history`), with their key-account manager and why."""

from __future__ import annotations

from bot.core.messages import Button
from bot.desk.router import DeskCall, DeskError, DeskRouter
from bot.routing import tier_history
from bot.tickets import SUPERVISOR_ROLES

router = DeskRouter(__name__)
DEFAULT_SHOWN = 10
MAX_SHOWN = 50


def shown_count(args: list[str]) -> int:
    if not args:
        return DEFAULT_SHOWN
    if len(args) > 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= MAX_SHOWN:
        raise DeskError(f"Usage: /atrisk [how many, 1-{MAX_SHOWN}]")
    return int(args[0])


@router.command("atrisk", usage="/atrisk [n]", roles=SUPERVISOR_ROLES,
                help="valuable customers at risk: probability alive falling, complaints, low ratings")
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
        lines.append(f"C-{r.customer_id} {r.name} · {r.tier} · 12-month value {value} · alive {alive} · "
                     f"KAM {r.key_account_manager or '—'} — {'; '.join(r.reasons)}")
    call.answer("\n".join(lines), tuple(Button(f"C-{r.customer_id}", f"/customer C-{r.customer_id}")
                                        for r in found[:5]))
