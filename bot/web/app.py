"""The one ASGI app of a running tierdesk: web chat, Telegram webhook, dashboard, REST API, health.

`create_web_app(app_ctx)` takes the running application (anything with `.sessions`, `.settings`, `.deliver`,
`.registry`; optionally `.health()` -> {worker: alive} for readiness and `.redis` for shared login limits).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from itsdangerous import URLSafeSerializer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import text

from bot.app import freeze_startup_heap
from bot.web.auth import SessionSigner
from bot.web.headers import SecurityHeaders
from bot.web.keys import secret_key
from bot.web.login_guard import warm_up as warm_up_logins

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def _templates(time_zone: str = "UTC") -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    from bot.web import formatting

    env.filters.update(formatting.FILTERS)
    env.filters["dt"] = formatting.dt_in(time_zone)
    env.globals["time_zone"] = time_zone
    return env


def create_web_app(app_ctx: Any) -> FastAPI:
    settings = app_ctx.settings
    key = secret_key(settings)
    app = FastAPI(
        title="tierdesk",
        version="1",
        description="Customers, identities, contacts, tickets and notes of a tierdesk contact center.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.ctx = app_ctx
    app.state.signer = SessionSigner(key)
    app.state.visitors = URLSafeSerializer(key, salt="tierdesk-visitor")
    warm_up_logins()  # login throttles live in the database; unknown emails cost as much as known ones
    app.state.templates = _templates(settings.web.time_zone)
    app.add_middleware(SecurityHeaders, widget_origins=settings.web.widget_origins)

    from bot.web import channel_hooks, chat, chat_files
    from bot.web.api import router as api_router
    from bot.web.dashboard import install as install_dashboard

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(chat.router)
    app.include_router(chat_files.router)
    app.include_router(channel_hooks.router)  # before /{name}/webhook: WhatsApp's own
    app.include_router(api_router)
    install_dashboard(app)
    _health_routes(app)
    _metrics_route(app)
    _webhook_routes(app)
    return app


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _metrics_route(app: FastAPI) -> None:
    """GET /metrics for Prometheus: with `web.metrics_token` set, a scraper presents it as a bearer token;
    without one, only this machine may scrape (the counts are the business's own)."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        from bot.core import metrics as m

        ctx = request.app.state.ctx
        token = ctx.settings.web.metrics_token
        if token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return PlainTextResponse("a bearer token is needed for /metrics", status_code=401)
        elif (request.client.host if request.client else "") not in LOOPBACK:
            return PlainTextResponse("/metrics answers this machine only (set web.metrics_token)", status_code=403)
        sessions = getattr(ctx, "writer_sessions", None) or ctx.sessions
        body = await m.render(sessions, getattr(ctx, "ingest", None))
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        ctx = request.app.state.ctx
        problems: list[str] = []
        try:
            async with ctx.sessions() as session:
                await asyncio.wait_for(session.execute(text("SELECT 1")), 5)
        except Exception as exc:
            problems.append(f"database: {type(exc).__name__}")
        check = getattr(ctx, "workers_alive", None) or getattr(ctx, "health", None)
        if callable(check):
            try:
                alive = check()
                if inspect.isawaitable(alive):
                    alive = await alive
                if isinstance(alive, dict):
                    # True: running; False: not running; a string: why it is stalled (ingestion)
                    problems.extend(
                        f"{name}: {ok if isinstance(ok, str) and ok else 'not running'}"
                        for name, ok in alive.items()
                        if ok is not True
                    )
                elif not alive:
                    problems.append("workers: not running")
            except Exception as exc:
                problems.append(f"workers: {type(exc).__name__}")
        if problems:
            return JSONResponse({"ready": False, "problems": problems}, status_code=503)
        return JSONResponse({"ready": True})


def _webhook_routes(app: FastAPI) -> None:
    """POST /<channel>/webhook hands the headers and body to that running channel, when it takes webhooks
    (Telegram in webhook mode): `handle_webhook(headers, body) -> (status, reason)` checks its own secret and
    size limit; 200 only once the update is stored."""

    @app.post("/{name}/webhook", include_in_schema=False)
    async def channel_webhook(name: str, request: Request) -> Response:
        registry = getattr(request.app.state.ctx, "registry", None)
        channel = registry.get(name) if registry is not None and name in registry else None
        handle = getattr(channel, "handle_webhook", None)
        if handle is None:
            return PlainTextResponse(f"{name[:40]} webhook not configured", status_code=404)
        body = await request.body()
        if len(body) > 5_000_000:
            return PlainTextResponse("too large", status_code=413)
        try:
            status, reason = await handle(dict(request.headers), body)
        except Exception:
            log.exception("%s webhook failed", name[:40])
            return PlainTextResponse("error", status_code=500)
        return PlainTextResponse(reason, status_code=status)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the application owns SIGINT/SIGTERM and cancels us."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app_ctx: Any, host: str | None = None, port: int | None = None) -> None:
    """Run the web app with uvicorn until cancelled (`tierdesk run` starts this as a task)."""
    settings = app_ctx.settings
    web = create_web_app(app_ctx)
    for name in web.state.templates.list_templates(extensions=["html"]):  # compiled now, not on a first request
        web.state.templates.get_template(name)
    freeze_startup_heap()  # the web app and its compiled templates live as long as the process, like the App
    config = uvicorn.Config(
        web,
        host=host or settings.web.host,
        port=port if port is not None else settings.web.port,
        log_level="warning",
        lifespan="off",
        proxy_headers=True,
        ws_max_size=2_000_000,
        timeout_graceful_shutdown=5,
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(), name="tierdesk-web")
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        raise
