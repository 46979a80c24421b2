"""A named PostgreSQL advisory lock held by one open connection: taken by one process at a time, and released by
the server when that connection ends, however the process ended (kill -9 included)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

LOCK_CLASS = 0x7D35
"""The first key of tierdesk's two-key advisory locks; the second is hashtext(name)."""


class NamedLock:
    """`take()` on a connection of its own, kept open until `release()`; `held()` tells whether it still is."""

    def __init__(self, url: str, name: str, *, application_name: str = "tierdesk") -> None:
        self.name = name
        self.engine: AsyncEngine = create_async_engine(
            url, poolclass=NullPool, connect_args={"server_settings": {"application_name": application_name[:63]}}
        )
        self.conn: AsyncConnection | None = None

    async def take(self) -> bool:
        """True when this process holds the lock now (taken now or before); False when another session holds it."""
        if self.conn is None:
            self.conn = await self.engine.connect()
        locked = await self.conn.scalar(
            text("SELECT pg_try_advisory_lock(:cls, hashtext(:name))"), {"cls": LOCK_CLASS, "name": self.name}
        )
        await self.conn.commit()  # the lock belongs to the session, not to the transaction
        return bool(locked)

    async def held(self) -> bool:
        """Whether our connection still holds the lock; False (and the connection dropped) when it was lost."""
        if self.conn is None:
            return False
        try:
            count = await self.conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                    "AND classid = :cls AND objid = hashtext(:name)::oid AND objsubid = 2 AND granted"
                ),
                {"cls": LOCK_CLASS, "name": self.name},
            )
            await self.conn.commit()
        except Exception:
            await self._drop(broken=True)
            raise
        return bool(count)

    async def holder(self) -> str:
        """Who holds the lock, as PostgreSQL knows them ("" when nobody does now)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT a.pid, a.application_name, coalesce(host(a.client_addr), 'local') FROM pg_locks l "
                        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                        "AND l.classid = :cls AND l.objid = hashtext(:name)::oid AND l.objsubid = 2 AND l.granted"
                    ),
                    {"cls": LOCK_CLASS, "name": self.name},
                )
            ).first()
        return f"{row[1] or 'a session'} (PostgreSQL backend {row[0]}, from {row[2]})" if row else ""

    async def release(self) -> None:
        if self.conn is not None:
            try:
                await self.conn.execute(
                    text("SELECT pg_advisory_unlock(:cls, hashtext(:name))"), {"cls": LOCK_CLASS, "name": self.name}
                )
                await self.conn.commit()
            finally:
                await self._drop()
        await self.engine.dispose()

    async def _drop(self, *, broken: bool = False) -> None:
        """Forget our connection; a broken one is invalidated (terminated at once, no goodbye to a dead peer)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                await (conn.invalidate() if broken else conn.close())
            except Exception:  # the connection is already gone; closing it is all that was left to do
                pass
