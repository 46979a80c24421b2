"""Flushing a batch's changed rows in as few statements as there are kinds of change.

The unit of work writes changed rows in primary-key order and starts a new UPDATE whenever the next row changed
other columns: a batch's tickets, some answered by the bot (intent, solved), some written to again (updated),
some routed, become one statement for every two or three rows. Flushed a group of same-column changes at a
time, each group is one executemany.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.base import NO_VALUE


async def flush_grouped(session: AsyncSession) -> None:
    """Write the session's pending changes, rows changing the same columns together."""
    await session.run_sync(_flush_grouped)


def _flush_grouped(session: Session) -> None:
    if session.new or session.deleted:  # inserts and deletes may depend on each other: the unit of work orders them
        session.flush()
        return
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for obj in session.dirty:
        state = inspect(obj)
        current = state.dict
        changed = sorted(n for n, old in state.committed_state.items() if not _same(old, current.get(n, NO_VALUE)))
        groups.setdefault((type(obj).__name__, *changed), []).append(obj)
    if len(groups) > 1:
        for key in sorted(groups):  # a fixed order of tables and rows: two workers never wait on each other in a ring
            session.flush(sorted(groups[key], key=lambda o: inspect(o).identity or ()))
    session.flush()


def _same(loaded: Any, value: Any) -> bool:
    """Whether an attribute set since it was loaded holds what it held (the attribute history's "no change", read
    without building a history per attribute; a value never loaded, or deleted, is a change)."""
    return loaded is value or (loaded is not NO_VALUE and value is not NO_VALUE and (loaded == value) is True)
