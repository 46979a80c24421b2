"""Dashboard sessions kept on the server, so that logging out, changing a password or an admin really ends them.

The cookie holds only a random token; the web_sessions row is keyed by its SHA-256, carries the session's CSRF
token, and ends after `web.session_idle_minutes` without a request or `web.session_hours` after login, whichever
comes first. An agent with a second factor (`agents.totp_secret`) has no rights in a session until
`pass_second_factor` marks it. A replayed cookie of an ended session is worth nothing.

The login page calls `start_session` / `end_session` (and `pending_agent` / `pass_second_factor` for the
second factor); a password change goes through `change_password`, an admin's revocation `revoke_agent_sessions`.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web.auth import SESSION_COOKIE, Viewer
from crm_store.models import Agent, now
from crm_store.repositories import audit
from crm_store.repositories import web_sessions as repo
from crm_store.trust import WebSession

TOUCH_EVERY = timedelta(seconds=60)
"""How stale `last_seen_at` may get before a request writes it again (one write a minute, not one a request)."""


def session_id(token: str) -> str:
    """The row id of a cookie token: a database reader learns no usable cookie."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_https(request: Request) -> bool:
    """Served over https: directly, behind a proxy that says so, or at an https public URL."""
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    public = request.app.state.ctx.settings.web.public_url
    return request.url.scheme == "https" or proto == "https" or public.startswith("https://")


def _client(request: Request) -> str:
    ip = request.client.host if request.client else "?"
    return f"{ip} {request.headers.get('user-agent', '')}"[:255]


def _writer(request: Request) -> Any:
    ctx = request.app.state.ctx
    return getattr(ctx, "writer_sessions", None) or ctx.sessions


def _limits(request: Request) -> tuple[timedelta, timedelta]:
    web = request.app.state.ctx.settings.web
    return timedelta(minutes=web.session_idle_minutes), timedelta(hours=web.session_hours)


def is_open(row: WebSession | None, agent: Agent | None, *, idle: timedelta, at: datetime) -> bool:
    """Whether a session still stands: not revoked, inside both timeouts, and younger than the agent's last
    password change (so a change made anywhere ends older sessions even if nobody revoked them)."""
    if row is None or agent is None or row.revoked_at is not None or not agent.password_hash:
        return False
    if at >= row.expires_at or at - row.last_seen_at >= idle:
        return False
    return agent.password_changed_at is None or row.created_at >= agent.password_changed_at


def _token(request: Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    return token if token and 20 <= len(token) <= 200 else None


async def _open_session(request: Request, session: AsyncSession | None = None) -> tuple[WebSession, Agent] | None:
    """The cookie's session and its agent, if it still stands; moves its idle clock. Read in `session` (the
    page's own) when given, so a page costs one read transaction, not two."""
    token = _token(request)
    if token is None:
        return None
    sid = session_id(token)
    idle, _ = _limits(request)
    at = now()
    if session is None:
        async with request.app.state.ctx.sessions() as own:
            found = await repo.with_agent(own, sid)
    else:
        found = await repo.with_agent(session, sid)
    if found is None or not is_open(*found, idle=idle, at=at):
        return None
    row, agent = found
    if at - row.last_seen_at >= TOUCH_EVERY:
        async with _writer(request)() as session, session.begin():
            await repo.touch(session, sid, at)
    return row, agent


async def load_viewer(request: Request, session: AsyncSession | None = None) -> Viewer | None:
    """Who is looking, or None when the cookie's session is missing, ended, or still waits for its second factor."""
    found = await _open_session(request, session)
    if found is None:
        return None
    row, agent = found
    if agent.totp_secret and row.second_factor_at is None:
        return None
    return Viewer(agent.id, agent.name, agent.role, tuple(agent.tiers or ()), row.csrf, tuple(agent.queues or ()))


async def pending_agent(request: Request) -> Agent | None:
    """The agent of a standing session that still needs its second factor (for the code page); else None."""
    found = await _open_session(request)
    if found is None:
        return None
    row, agent = found
    return agent if agent.totp_secret and row.second_factor_at is None else None


async def start_session(request: Request, response: Response, agent: Agent) -> str:
    """Open a session for `agent` once their password was checked, set its cookie on `response`, and return its
    CSRF token. If the agent has a second factor, the session has no rights until `pass_second_factor`."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    _, absolute = _limits(request)
    at = now()
    async with _writer(request)() as session, session.begin():
        repo.add(session, session_id=session_id(token), agent_id=agent.id, csrf=csrf, expires_at=at + absolute,
                 client=_client(request), at=at)
        await repo.purge(session, at - timedelta(days=30))
    response.set_cookie(SESSION_COOKIE, token, max_age=int(absolute.total_seconds()), httponly=True,
                        samesite="lax", secure=is_https(request), path="/")
    return csrf


async def pass_second_factor(request: Request) -> bool:
    """Mark the cookie's session as past its second factor (call once the code was checked)."""
    token = _token(request)
    if token is None:
        return False
    async with _writer(request)() as session, session.begin():
        return await repo.pass_second_factor(session, session_id(token), now())


async def end_session(request: Request, response: Response) -> None:
    """Log out: the cookie's session is revoked on the server (a saved copy of the cookie no longer works)."""
    token = _token(request)
    if token is not None:
        async with _writer(request)() as session, session.begin():
            await repo.revoke(session, session_id(token))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request))


async def revoke_agent_sessions(session: AsyncSession, agent_id: int, *, reason: str, by: int | None = None,
                                actor: str = "agent", ids: list[str] | None = None) -> int:
    """End an agent's sessions in the caller's transaction (an admin's revocation, a password change), audited.

    `ids` limits it to sessions whose id starts with one of these prefixes (what `tierdesk agents sessions`
    and the agents page show)."""
    count = await repo.revoke_agent(session, agent_id, ids=ids)
    if count:
        audit.record(session, "sessions_revoked", subject=f"agent:{agent_id}", agent_id=by, actor=actor,
                     reason=reason, count=count)
    return count


async def change_password(session: AsyncSession, agent_id: int, password_hash: str, *, by: int | None = None,
                          actor: str = "agent") -> int:
    """Store a new password hash and end every session of that agent (a stolen cookie dies with the old
    password); returns how many sessions ended. In the caller's transaction."""
    await repo.set_password(session, agent_id, password_hash, now())
    return await revoke_agent_sessions(session, agent_id, reason="password changed", by=by, actor=actor)


def describe(row: WebSession, *, idle: timedelta, at: datetime) -> str:
    """A session's state in a word, for the CLI and the agents page."""
    if row.revoked_at is not None:
        return "revoked"
    if at >= row.expires_at:
        return "expired"
    if at - row.last_seen_at >= idle:
        return "idle"
    return "open"
