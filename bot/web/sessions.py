"""Database sessions as FastAPI dependencies, shared by the dashboard and the REST API."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession


async def read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.ctx.sessions() as session:
        yield session


async def write_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for a write transaction (on SQLite it takes the write lock up front)."""
    ctx = request.app.state.ctx
    async with (getattr(ctx, "writer_sessions", None) or ctx.sessions)() as session:
        yield session
