"""Live updates for the inbox and the ticket page by server-sent events, and who else is looking at a ticket.

Each open page holds one event stream. The stream looks at the database every `POLL_S` seconds (a handful of
indexed aggregates) and tells the page what changed: `queues` (the viewer's counts), `ticket` (a message, note,
event or field of the open ticket) and `presence` (the other agents viewing it). Presence lives in this
process's memory: a stream registers its viewer while it is open."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from bot.web import ticket_actions as actions
from bot.web.auth import Viewer
from bot.web.dashboard.common import current_viewer, int_or_none
from bot.web.inbox.pages import inbox_counts
from crm_store.repositories import tickets as tickets_repo

router = APIRouter(include_in_schema=False)
POLL_S = 1.0
HEARTBEAT_S = 15.0
_viewing: dict[int, dict[int, str]] = {}
_streams = itertools.count(1)


def viewers_of(ticket_id: int, *, besides: str = "") -> list[str]:
    """The names of the agents with the ticket open (in this process), other than `besides`."""
    return sorted({name for name in _viewing.get(ticket_id, {}).values() if name != besides})


def _frame(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def _stream(request: Request, viewer: Viewer, ticket_id: int | None) -> AsyncIterator[bytes]:
    sessions = request.app.state.ctx.sessions
    stream_id = next(_streams)
    if ticket_id is not None:
        _viewing.setdefault(ticket_id, {})[stream_id] = viewer.name
    last: dict[str, Any] = {}
    idle = 0.0
    try:
        yield b"retry: 2000\n\n"
        while not await request.is_disconnected():
            async with sessions() as session:
                counts = await inbox_counts(session, viewer.actor)
                now = {"queues": {"queues": counts.queues, "mine": counts.mine, "unassigned": counts.unassigned}}
                if ticket_id is not None:
                    now["ticket"] = await tickets_repo.ticket_marks(session, ticket_id)
                    now["presence"] = viewers_of(ticket_id, besides=viewer.name)
            sent = False
            for name, value in now.items():
                # the first state too: the page may have been rendered a moment before it
                if name not in last or last[name] != value:
                    yield _frame(name, value if name != "ticket" else {"ticket": ticket_id})
                    sent = True
            last = now
            idle = 0.0 if sent else idle + POLL_S
            if idle >= HEARTBEAT_S:
                yield b": keep-alive\n\n"
                idle = 0.0
            await asyncio.sleep(POLL_S)
    finally:
        if ticket_id is not None:
            _viewing.get(ticket_id, {}).pop(stream_id, None)
            if not _viewing.get(ticket_id):
                _viewing.pop(ticket_id, None)


@router.get("/inbox/live")
async def live(request: Request, viewer: Viewer = Depends(current_viewer)) -> StreamingResponse:
    """The event stream of one page: the inbox (no ticket) or one ticket the viewer may see."""
    ticket_id = int_or_none(request.query_params.get("ticket"))
    if ticket_id is not None:
        async with request.app.state.ctx.sessions() as session:
            await actions.visible_ticket(session, viewer.actor, ticket_id)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_stream(request, viewer, ticket_id), media_type="text/event-stream", headers=headers)
