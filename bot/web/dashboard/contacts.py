"""The contact log: search, filters, keyset pages, and exports of exactly what is filtered
(bot/web/exports.py: formula cells neutralised, an optional BOM, audited).

Customer contacts by default; the "include desk traffic" filter (`desk=1`) adds agent commands and the notices
and answers sent to agents, marked as such in the table and in a `desk` column of the exports."""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.auth import Viewer
from bot.web.dashboard.common import current_viewer, int_or_none, page_viewer, parse_day, render
from bot.web.exports import FORMATS, export_response
from bot.web.sessions import read_session
from channels.base import known_channels
from crm_store.repositories import reports
from crm_store.repositories.agents import list_agents

router = APIRouter(include_in_schema=False)
INTENTS_FOR = 300.0
"""Seconds the intent filter's list is kept per process: a new intent is offered a few minutes late (a typed one
filters at once), and a page does not read the newest contacts' intents again each time."""
FILTER_KEYS = ("q", "channel", "tier", "agent", "intent", "direction", "from", "to", "customer", "ticket", "desk")


def channel_choices() -> list[str]:
    """Every channel a customer can write on (not the in-memory test channel, not outbound webhook events)."""
    return [name for name in known_channels() if name not in ("memory", "webhook")]


def contact_filter(params: Any, viewer: Viewer) -> reports.ContactFilter:
    """The filter the query string asks for, limited to what the viewer may see."""
    first, last = parse_day(params.get("from")), parse_day(params.get("to"))
    since = datetime.combine(first, time.min, UTC) if first else None
    until = datetime.combine(last + timedelta(days=1), time.min, UTC) if last else None
    direction = params.get("direction", "")
    return reports.ContactFilter(
        q=params.get("q", "")[:200],
        channel=params.get("channel", "")[:32],
        tier=params.get("tier", "")[:20],
        agent_id=int_or_none(params.get("agent")),
        intent=params.get("intent", "")[:64],
        direction=direction if direction in ("in", "out") else "",
        since=since,
        until=until,
        customer_id=int_or_none(params.get("customer")),
        ticket_id=int_or_none(params.get("ticket")),
        scope_tiers=viewer.scope_tiers,
        include_desk=params.get("desk", "") in ("1", "on", "true"),
    )


def _cursor(value: str | None) -> tuple[datetime, int] | None:
    if not value or "_" not in value:
        return None
    at, _, cid = value.rpartition("_")
    try:
        return datetime.fromisoformat(at), int(cid)
    except ValueError:
        return None


async def _intents(request: Request, session: AsyncSession) -> list[str]:
    state = request.app.state
    kept = getattr(state, "log_intents", None)
    at = clock.monotonic()
    if kept is None or at - kept[0] > INTENTS_FOR:
        kept = (at, await reports.known_intents(session))
        state.log_intents = kept
    return kept[1]


@router.get("/contacts")
async def contact_log(
    request: Request, viewer: Viewer = Depends(page_viewer), session: AsyncSession = Depends(read_session)
) -> Response:
    params = request.query_params
    f = contact_filter(params, viewer)
    page_size = 50
    rows = await reports.search_contacts(session, f, before=_cursor(params.get("before")), limit=page_size + 1)
    more = len(rows) > page_size
    rows = rows[:page_size]
    kept = {k: params[k] for k in FILTER_KEYS if params.get(k)}
    next_url = None
    if more:
        last = rows[-1]
        next_url = "/contacts?" + urlencode({**kept, "before": f"{last['created_at'].isoformat()}_{last['id']}"})
    query = urlencode(kept)
    agents = await list_agents(session)
    return render(
        request, "contacts.html", viewer, rows=rows, filters=kept, next_url=next_url, query=query,
        agents=agents, agent_names={a.id: a.name for a in agents}, intents=await _intents(request, session),
        first_page=not params.get("before"), include_desk=f.include_desk, channel_choices=channel_choices(),
    )


@router.get("/contacts/export.{fmt}")
async def export(fmt: str, request: Request, viewer: Viewer = Depends(current_viewer)) -> Response:
    """Exactly what the log shows this viewer (an agent: the tiers they serve), as a download; `bom=1` starts a
    CSV with a UTF-8 BOM for Excel. Audited."""
    if fmt not in FORMATS:
        return Response("Export as .csv or .jsonl", status_code=404)
    f = contact_filter(request.query_params, viewer)
    bom = request.query_params.get("bom", "") in ("1", "on", "true")
    return export_response(request, f, fmt, bom=bom, agent_id=viewer.agent_id, actor="agent", via="dashboard")
