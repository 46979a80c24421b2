"""One poller per web process for every live inbox page.

While at least one page is open, the poller reads the database once per tick (`POLL_S`, one statement: the
active tickets' grouped counts and the marks of the tickets pages have open), asks the presence store who is
viewing those tickets, and hands each page what changed for its viewer through a bounded queue. A page that
does not keep up (its queue is full) is dropped rather than buffered: its stream ends and the browser
reconnects to a fresh first state. A change made here (a form written, a page opened or closed) wakes the
poller at once, and with Redis configured it is published so the other processes' pollers wake too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bot.tickets import Actor
from bot.web.auth import Viewer
from bot.web.inbox.counts import Counts, counts_of
from bot.web.inbox.shared import (
    BEAT_S,
    FormClaims,
    LocalFormClaims,
    LocalPresence,
    Presence,
    RedisFormClaims,
    RedisPresence,
    new_viewer_token,
)
from crm_store.repositories import inbox as inbox_repo

log = logging.getLogger(__name__)
POLL_S = 1.0
QUEUE_FRAMES = 32
"""Frames a page may have waiting before it counts as too slow."""
STUCK_S = 10.0
"""A dropped page whose stream is still blocked on its client after this long is cut off."""
WOKEN_GAP_S = 0.2
"""A wake-up waits this long first, so a burst of changes (from any process) is read once."""
POLLER = "tierdesk-inbox-live"


def frame(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@dataclass(eq=False)
class Page:
    """One open page: who looks, at which ticket (None: the inbox), and the frames waiting to be sent."""

    viewer: Viewer
    ticket_id: int | None
    who: str = field(default_factory=new_viewer_token)
    frames: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_FRAMES))
    last: dict[str, Any] = field(default_factory=dict)
    dropped: bool = False
    ended: bool = False
    scope: Any = None
    """The cancel scope its response runs in, to cut off a dropped page that stays blocked."""

    def changes(self, now: dict[str, Any]) -> list[bytes]:
        """The frames for what differs from what the page was last told (everything, the first time: the page
        may have been rendered a moment before its stream opened)."""
        out = [
            frame(name, value if name != "ticket" else {"ticket": self.ticket_id})
            for name, value in now.items()
            if name not in self.last or self.last[name] != value
        ]
        self.last = now
        return out

    def cut_off(self) -> None:
        if not self.ended and self.scope is not None:
            self.scope.cancel()


def _queues(counts: Counts) -> dict[str, Any]:
    return {"queues": counts.queues, "mine": counts.mine, "unassigned": counts.unassigned}


class LiveHub:
    def __init__(
        self,
        sessions: Any,
        presence: Presence,
        *,
        redis: Any = None,
        prefix: str = "tierdesk",
        queue_frames: int = QUEUE_FRAMES,
    ) -> None:
        self.sessions, self.presence, self.redis = sessions, presence, redis
        self.channel = f"{prefix}:inbox:changed"
        self.queue_frames = queue_frames
        self.pages: list[Page] = []
        self.ticks = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._renewed = 0.0
        self._failing = False

    async def join(self, viewer: Viewer, ticket_id: int | None, *, poll: bool = True) -> Page:
        """Register a page (and its viewer on the ticket); the poller runs while pages are open."""
        page = Page(viewer, ticket_id, frames=asyncio.Queue(self.queue_frames))
        self.pages.append(page)
        if ticket_id is not None:
            await self._quietly(self.presence.join(ticket_id, page.who, viewer.name), "presence")
            await self.changed()
        self._wake.set()  # its first state at once
        if poll and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name=POLLER)
        return page

    async def leave(self, page: Page) -> None:
        page.ended = True
        with contextlib.suppress(ValueError):
            self.pages.remove(page)
        if page.ticket_id is not None:
            await self._quietly(self.presence.leave(page.ticket_id, page.who, page.viewer.name), "presence")
            await self.changed()
        self._wake.set()

    async def changed(self) -> None:
        """Something live pages show changed in this process: look now, and tell the other processes."""
        self._wake.set()
        if self.redis is not None:
            await self._quietly(self.redis.publish(self.channel, b"1"), "change notice")

    def drop(self, page: Page) -> None:
        """Stop feeding a page that does not keep up: its stream ends (the browser reconnects), and if its
        client does not even take that, the response is cut off after `STUCK_S`."""
        log.info("inbox live page of %s dropped: its client reads too slowly", page.viewer.name)
        page.dropped = True
        with contextlib.suppress(ValueError):
            self.pages.remove(page)
        while not page.frames.empty():
            page.frames.get_nowait()
        page.frames.put_nowait(None)
        asyncio.get_running_loop().call_later(STUCK_S, page.cut_off)

    async def tick(self) -> None:
        """One read for every open page, then each page's changes into its queue."""
        pages = list(self.pages)
        watched = sorted({p.ticket_id for p in pages if p.ticket_id is not None})
        if watched and time.monotonic() - self._renewed >= BEAT_S:
            viewing = [(p.ticket_id, p.who, p.viewer.name) for p in pages if p.ticket_id is not None]
            await self._quietly(self.presence.renew(viewing), "presence")
            self._renewed = time.monotonic()
        async with self.sessions() as session:
            state = await inbox_repo.live_state(session, watched)
        viewers = await self._quietly(self.presence.viewers(watched), "presence") or {}
        counts: dict[Actor, dict[str, Any]] = {}
        for page in pages:
            actor = page.viewer.actor
            if actor not in counts:
                counts[actor] = _queues(counts_of(state.groups, actor))
            now: dict[str, Any] = {"queues": counts[actor]}
            if page.ticket_id is not None:
                now["ticket"] = state.marks.get(page.ticket_id)
                names = viewers.get(page.ticket_id, [])
                now["presence"] = [n for n in names if n != page.viewer.name]
            for chunk in page.changes(now):
                try:
                    page.frames.put_nowait(chunk)
                except asyncio.QueueFull:
                    self.drop(page)
                    break
        self.ticks += 1

    async def _run(self) -> None:
        listener = asyncio.create_task(self._listen()) if self.redis is not None else None
        try:
            while self.pages:
                self._wake.clear()
                await self._tick_once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
                    await asyncio.sleep(WOKEN_GAP_S)
            self._task = None  # before any await: a page joining from now on starts a new poller
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)

    async def _tick_once(self) -> None:
        try:
            await self.tick()
            self._failing = False
        except Exception as exc:
            if not self._failing:  # once per outage, not once a second
                log.warning("inbox live pages could not be read (%s); trying again each tick", exc)
            self._failing = True

    async def _listen(self) -> None:
        """Wake the poller when another process publishes a change."""
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                async for _message in pubsub.listen():
                    self._wake.set()
            except Exception as exc:
                log.warning("inbox change notices unavailable (%s); the tick still reads every %ss", exc, POLL_S)
                await asyncio.sleep(POLL_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _quietly(self, work: Any, what: str) -> Any:
        """Presence and change notices are a courtesy: Redis being away must not break a page or a form."""
        try:
            return await work
        except Exception as exc:
            log.warning("inbox %s unavailable: %s", what, exc)
            return None


def live_hub(app: Any) -> LiveHub:
    """The web app's hub, made on first use: shared through Redis when the application has a Redis client,
    in this process's memory otherwise."""
    hub = getattr(app.state, "inbox_hub", None)
    if hub is None:
        ctx = app.state.ctx
        redis, prefix = getattr(ctx, "redis", None), ctx.settings.redis_prefix
        presence = RedisPresence(redis, prefix) if redis is not None else LocalPresence()
        hub = app.state.inbox_hub = LiveHub(ctx.sessions, presence, redis=redis, prefix=prefix)
    return hub


def form_claims(app: Any) -> FormClaims:
    """The web app's store of form keys being posted (Redis when configured, else this process's memory)."""
    claims = getattr(app.state, "inbox_form_claims", None)
    if claims is None:
        ctx = app.state.ctx
        redis = getattr(ctx, "redis", None)
        claims = RedisFormClaims(redis, ctx.settings.redis_prefix) if redis is not None else LocalFormClaims()
        app.state.inbox_form_claims = claims
    return claims
