"""`tierdesk run` and `tierdesk chat`: build the configured channels and background jobs, run until told to
stop (Ctrl-C or SIGTERM), then stop in order so the outbox drains."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
from typing import Any

from bot.app import App, Background, freeze_startup_heap
from bot.core.sender_lease import sender_guard
from bot.settings import Settings
from channels.base import Channel, UnknownChannel, build, known_channels, section_of, traits_of
from crm_store.engine import is_sqlite

log = logging.getLogger(__name__)
EXIT_SENDER_LOST = 3
"""Exit status when another process took this sender id while we ran (we stop at once, sending nothing more)."""


def build_channel(name: str, settings: Settings, *, send_only: bool = False) -> Channel:
    """One configured channel, built by its own class from its own settings section; `send_only` builds it to
    send without receiving. A channel that cannot be built as configured stops startup with its reason."""
    try:
        return build(name, settings, send_only=send_only)
    except UnknownChannel as exc:
        raise SystemExit(str(exc)) from None
    except ValueError as exc:
        raise SystemExit(f"channel {name!r} is configured but cannot start: {exc}") from None


def configured_names(settings: Settings, *, send_only: bool = False) -> list[str]:
    """The channels named in settings, plus those whose own section turns them on (the webhook sender once a
    URL is set); `send_only` leaves out the channels only a receiving process can send on."""
    names = list(dict.fromkeys(settings.channels))
    names += [n for n in known_channels() if n not in names and traits_of(n).implied_by(section_of(settings, n))]
    return [n for n in names if not send_only or traits_of(n).can_send_only]


def configured_channels(settings: Settings, *, send_only: bool = False) -> list[Channel]:
    return [build_channel(n, settings, send_only=send_only) for n in configured_names(settings, send_only=send_only)]


def worker_problem(settings: Settings) -> str | None:
    """Why this configuration cannot run `tierdesk worker`, or None."""
    if not settings.redis_url or settings.dispatch.ingest != "stream":
        return (
            "tierdesk worker consumes the Redis inbound stream: set TIERDESK_REDIS_URL and "
            "TIERDESK_DISPATCH__INGEST=stream (for `tierdesk run` too, so its channels publish to the stream)"
        )
    if is_sqlite(settings.database_url):
        return "tierdesk worker shares the database with other processes: use PostgreSQL (TIERDESK_DATABASE_URL)"
    return None


async def work(settings: Settings) -> None:
    """`tierdesk worker`: a dispatcher consuming the inbound stream, the outbox for the channels it can send on,
    and the scheduled jobs; no receiving channels and no web app. Start as many as the load needs."""
    problem = worker_problem(settings)
    if problem:
        raise SystemExit(problem)
    if settings.web.metrics_port:
        from bot.core.metrics import serve_port

        serve_port(settings.web.metrics_port, settings.web.host)
    await serve(settings, configured_channels(settings, send_only=True), web=False)


def feature(module: str, attr: str) -> Any:
    """A part of tierdesk loaded by name (so that a process imports only what it runs). Every part ships in every
    build: one that cannot be imported is a broken install, and says so instead of quietly not running."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"tierdesk is not installed correctly: {module}.{attr} cannot be loaded ({exc})") from exc


def background_jobs(settings: Settings) -> list[Background]:
    """Scheduled work inside `tierdesk run`: re-tiering, the SLA clock and contact retention."""
    return [
        feature("bot.routing.tier_service", "retier_job"),
        feature("bot.routing.sla_worker", "sla_job"),
        feature("bot.core.retention", "retention_job"),
    ]


async def serve(settings: Settings, channels: list[Channel] | None = None, *, web: bool = True) -> None:
    guard = sender_guard(settings)
    if guard is None:
        await _serve(settings, channels, web=web)
        return
    await guard.start()  # before the outbox takes back what a sender of this id held: one live process per id
    serving = asyncio.create_task(_serve(settings, channels, web=web), name="tierdesk")
    lost = asyncio.create_task(guard.lost.wait(), name="sender-lease-lost")
    try:
        await asyncio.wait({serving, lost}, return_when=asyncio.FIRST_COMPLETED)
        if lost.done() and not serving.done():
            # Another process holds this sender id now and resends its unconfirmed replies: stopping cleanly would
            # drain the outbox and send some of them a second time, so stop as a crash would.
            logging.shutdown()
            os._exit(EXIT_SENDER_LOST)
        await serving
    finally:
        lost.cancel()
        await guard.stop()


async def _serve(settings: Settings, channels: list[Channel] | None, *, web: bool) -> None:
    channels = channels if channels is not None else configured_channels(settings)
    app = App(settings, channels=channels, background=background_jobs(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await app.start()
    freeze_startup_heap()
    tasks = []
    web_serve = feature("bot.web", "serve") if web and settings.web.enabled else None
    if web_serve is not None:
        tasks.append(asyncio.create_task(web_serve(app, settings.web.host, settings.web.port)))
        log.info("web app on http://%s:%s", settings.web.host, settings.web.port)
    for channel in channels:
        closed = getattr(channel, "closed", None)
        if isinstance(closed, asyncio.Event):
            tasks.append(asyncio.create_task(_set_when(closed, stop)))
    log.info("tierdesk running with channels: %s", ", ".join(app.registry.names()) or "none")
    try:
        await stop.wait()
    finally:
        log.info("stopping: closing channels, draining the outbox")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await app.stop()


async def _set_when(event: asyncio.Event, target: asyncio.Event) -> None:
    await event.wait()
    target.set()
