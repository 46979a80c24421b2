"""Dialect helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, false, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for whichever database the session is on."""
    ins = postgresql.insert if dialect(session) == "postgresql" else sqlite.insert
    return ins(getattr(table, "__table__", table)).on_conflict_do_nothing()


def chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    """Bound IN-lists and multi-row statements (SQLite allows ~32k parameters)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


async def insert_returning_ids(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in few statements and return their new ids, in the order given.

    PostgreSQL returns them from a multi-row INSERT ... RETURNING. SQLite cannot promise the order of a multi-row
    RETURNING, so ids are assigned here: a writer there holds the database's single write lock for the whole
    transaction (BEGIN IMMEDIATE), so max(id) cannot move under us.
    """
    if not rows:
        return []
    table = getattr(model, "__table__", model)
    if dialect(session) == "postgresql":
        ids: list[int] = []
        for part in chunks(rows, 1000):
            result = await session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), part)
            ids.extend(result.scalars().all())
        return ids
    start = int(await session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1
    ids = list(range(start, start + len(rows)))
    for part_ids, part in zip(chunks(ids, 500), chunks(rows, 500), strict=True):
        await session.execute(insert(table), [{**row, "id": i} for i, row in zip(part_ids, part, strict=True)])
    return ids


def keys_match(columns: Sequence[Any], keys: Iterable[tuple[Any, ...]], *, vary: int) -> Any:
    """WHERE clause for rows whose `columns` equal one of `keys`.

    Written as `(a = ? AND c = ? AND b IN (...)) OR ...`, one group per value of the other columns, `columns[vary]`
    taking the IN-list. SQLite plans the plain row-value form `(a, b) IN (VALUES ...)` of two or more keys as a
    scan of the whole index; these groups are index searches on both databases.
    """
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for key in keys:
        groups.setdefault(key[:vary] + key[vary + 1 :], []).append(key[vary])
    fixed = list(columns[:vary]) + list(columns[vary + 1 :])
    return or_(
        false(),
        *(and_(*(c == v for c, v in zip(fixed, values, strict=True)), columns[vary].in_(sorted(set(varying))))
          for values, varying in groups.items()),
    )
