"""Dialect helpers shared by the repositories."""

from __future__ import annotations

from typing import Any

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
