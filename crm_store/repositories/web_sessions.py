"""Dashboard sessions kept on the server (web_sessions): the cookie carries a random token, the row its hash.

Nothing here decides whether a session is still good (idle and absolute timeouts are the web layer's rule);
these are the reads and writes, in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Agent, now
from crm_store.trust import WebSession


def add(session: AsyncSession, *, session_id: str, agent_id: int, csrf: str, expires_at: datetime,
        client: str = "", at: datetime | None = None) -> WebSession:
    """A new session row; `session_id` is the hash of the cookie's token (the token itself is never stored)."""
    at = at or now()
    row = WebSession(id=session_id, agent_id=agent_id, csrf=csrf, created_at=at, last_seen_at=at,
                     expires_at=expires_at, client=client[:255])
    session.add(row)
    return row


async def get(session: AsyncSession, session_id: str) -> WebSession | None:
    return await session.get(WebSession, session_id)


async def with_agent(session: AsyncSession, session_id: str) -> tuple[WebSession, Agent] | None:
    """A session row and its agent in one read (every dashboard request asks)."""
    row = (
        await session.execute(
            select(WebSession, Agent).join(Agent, Agent.id == WebSession.agent_id).where(WebSession.id == session_id)
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


async def touch(session: AsyncSession, session_id: str, at: datetime) -> None:
    """Move the idle clock of a session that is still open."""
    await session.execute(
        update(WebSession).where(WebSession.id == session_id, WebSession.revoked_at.is_(None))
        .values(last_seen_at=at)
    )


async def pass_second_factor(session: AsyncSession, session_id: str, at: datetime) -> bool:
    result = await session.execute(
        update(WebSession).where(WebSession.id == session_id, WebSession.revoked_at.is_(None))
        .values(second_factor_at=at, last_seen_at=at)
    )
    return bool(result.rowcount)


async def revoke(session: AsyncSession, session_id: str, at: datetime | None = None) -> int:
    result = await session.execute(
        update(WebSession).where(WebSession.id == session_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=at or now())
    )
    return result.rowcount or 0


async def revoke_agent(session: AsyncSession, agent_id: int, *, at: datetime | None = None,
                       keep: str | None = None, ids: list[str] | None = None) -> int:
    """End an agent's open sessions (all, all but `keep`, or only those whose id starts with one of `ids`)."""
    stmt = update(WebSession).where(WebSession.agent_id == agent_id, WebSession.revoked_at.is_(None))
    if keep:
        stmt = stmt.where(WebSession.id != keep)
    if ids is not None:
        if not ids:
            return 0
        stmt = stmt.where(or_(*(WebSession.id.startswith(prefix, autoescape=True) for prefix in ids)))
    result = await session.execute(stmt.values(revoked_at=at or now()))
    return result.rowcount or 0


async def of_agent(session: AsyncSession, agent_id: int, *, open_at: datetime | None = None) -> list[WebSession]:
    """An agent's sessions, newest first; with `open_at`, only those neither revoked nor past their absolute
    timeout then (the idle timeout is checked by the caller, which knows its setting)."""
    stmt = select(WebSession).where(WebSession.agent_id == agent_id)
    if open_at is not None:
        stmt = stmt.where(WebSession.revoked_at.is_(None), WebSession.expires_at > open_at)
    return list(await session.scalars(stmt.order_by(WebSession.created_at.desc(), WebSession.id)))


async def purge(session: AsyncSession, before: datetime) -> int:
    """Forget sessions that ended (revoked or expired) before `before`: the table does not grow forever."""
    result = await session.execute(
        delete(WebSession).where(or_(WebSession.expires_at < before, WebSession.revoked_at < before))
    )
    return result.rowcount or 0


async def set_password(session: AsyncSession, agent_id: int, password_hash: str, at: datetime) -> None:
    """A new password hash and the time it changed (sessions older than that no longer stand)."""
    await session.execute(
        update(Agent).where(Agent.id == agent_id).values(password_hash=password_hash, password_changed_at=at)
    )
