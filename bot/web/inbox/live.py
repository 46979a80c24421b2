"""Live updates for the inbox and the ticket page by server-sent events, and who else is looking at a ticket.

Each open page holds one event stream, fed by the web process's one poller (`bot.web.inbox.hub`): `queues`
(the viewer's counts), `ticket` (a message, note, event or field of the open ticket changed) and `presence`
(the other agents viewing it, on any web process when Redis is configured). A comment line every
`HEARTBEAT_S` keeps proxies from closing a quiet stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.types import Send

from bot.web import ticket_actions as actions
from bot.web.auth import Viewer
from bot.web.dashboard.common import current_viewer, int_or_none
from bot.web.inbox.hub import LiveHub, Page, live_hub

router = APIRouter(include_in_schema=False)
HEARTBEAT_S = 15.0
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class LiveResponse(StreamingResponse):
    """One page's event stream: the page is registered with the hub while the response is being sent."""

    def __init__(self, hub: LiveHub, viewer: Viewer, ticket_id: int | None) -> None:
        self.hub, self.viewer, self.ticket_id = hub, viewer, ticket_id
        self.page: Page | None = None
        super().__init__(self._frames(), media_type="text/event-stream", headers=HEADERS)

    async def stream_response(self, send: Send) -> None:
        self.page = page = await self.hub.join(self.viewer, self.ticket_id)
        try:
            with anyio.CancelScope() as page.scope:
                await super().stream_response(send)
        finally:
            with anyio.move_on_after(5, shield=True):
                await self.hub.leave(page)

    async def _frames(self) -> AsyncIterator[bytes]:
        assert self.page is not None
        frames = self.page.frames
        yield b"retry: 2000\n\n"
        while True:
            try:
                chunk = await asyncio.wait_for(frames.get(), HEARTBEAT_S)
            except TimeoutError:
                chunk = b": keep-alive\n\n"
            if chunk is None:  # dropped for reading too slowly: the browser reconnects
                return
            yield chunk


@router.get("/inbox/live")
async def live(request: Request, viewer: Viewer = Depends(current_viewer)) -> StreamingResponse:
    """The event stream of one page: the inbox (no ticket) or one ticket the viewer may see."""
    ticket_id = int_or_none(request.query_params.get("ticket"))
    if ticket_id is not None:
        async with request.app.state.ctx.sessions() as session:
            await actions.visible_ticket(session, viewer.actor, ticket_id)
    return LiveResponse(live_hub(request.app), viewer, ticket_id)
