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
        changed = sorted(name for name in state.committed_state if state.attrs[name].history.has_changes())
        groups.setdefault((type(obj).__name__, *changed), []).append(obj)
    if len(groups) > 1:
        for key in sorted(groups):  # a fixed order of tables and rows: two workers never wait on each other in a ring
            session.flush(sorted(groups[key], key=lambda o: inspect(o).identity or ()))
    session.flush()
