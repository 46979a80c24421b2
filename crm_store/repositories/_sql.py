"""Dialect helpers shared by the repositories.

Hot statements are built once and reused with bind parameters (`functools.cache` on a builder keyed by dialect
and shape): SQLAlchemy spends more CPU building an expression and its cache key than running it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, any_, bindparam, false, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

MAX_ROW_ID = 2**63 - 1


def as_row_id(text: str) -> int | None:
    """A typed number as a row id, or None when no row can have it (too long, negative, beyond 64 bits): a
    lookup by it finds nothing instead of overflowing the database's integer."""
    digits = text.strip()
    if not digits.isdigit() or len(digits) > 19 or not digits.isascii():
        return None
    value = int(digits)
    return value if 1 <= value <= MAX_ROW_ID else None


def dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def utc_date(dialect_name: str, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, as the database computes it."""
    if dialect_name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def adding_upserts(dialect_name: str, table: Any, rows: list[dict[str, Any]], counters: Sequence[str],
                   size: int = 256) -> list[Any]:
    """Statements that add `rows`' counters to the rows of `table` with their primary key (inserting the missing
    ones), `size` rows each: how every writer-kept rollup adds to its counts. Give the rows in key order, so two
    writers take their row locks in the same order."""
    upsert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    keys = [c.name for c in table.primary_key.columns]
    out = []
    for part in row_chunks(rows, size):
        stmt = upsert(table).values(part)
        out.append(stmt.on_conflict_do_update(
            index_elements=keys, set_={c: table.c[c] + stmt.excluded[c] for c in counters}
        ))
    return out


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime (SQLite hands back naive ones, which our columns store in UTC)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def is_pg(session: AsyncSession) -> bool:
    return dialect(session) == "postgresql"


def insert_ignoring_conflicts(session: AsyncSession, table: Any, returning: tuple[str, ...] = ()) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING [RETURNING columns]` for whichever database the session is on."""
    return _insert_ignoring(dialect(session), getattr(table, "__table__", table), returning)


@cache
def _insert_ignoring(dialect_name: str, table: Any, returning: tuple[str, ...]) -> Any:
    ins = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    stmt = ins(table).on_conflict_do_nothing()
    return stmt.returning(*(table.c[name] for name in returning)) if returning else stmt


@cache
def _max_id(table: Any) -> Any:
    return select(func.coalesce(func.max(table.c.id), 0))


async def next_id(session: AsyncSession, table: Any) -> int:
    """The next free id of a table on SQLite, where a writer holds the database's single write lock for the whole
    transaction (BEGIN IMMEDIATE), so max(id) cannot move under us (see `insert_returning_ids`)."""
    return int(await session.scalar(_max_id(getattr(table, "__table__", table))) or 0) + 1


@cache
def _insert_returning(table: Any) -> Any:
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


def chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    """Bound IN-lists and multi-row statements (SQLite allows ~32k parameters)."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def row_chunks(rows: list[Any], largest: int = 256) -> list[list[Any]]:
    """Rows for multi-row statements in a few fixed counts (powers of two up to `largest`: 200 rows are 128 + 64
    + 8). Each row count is another statement text, and the driver keeps a prepared statement per text and
    connection: with any count allowed, that cache grew with every count seen (megabytes of SQL and parameter
    metadata in a long-running worker, and a server-side prepare for each new one)."""
    if largest & (largest - 1):
        raise ValueError("largest must be a power of two")
    out, i, size = [], 0, largest
    while i < len(rows):
        while size > len(rows) - i:
            size //= 2
        out.append(rows[i : i + size])
        i += size
    return out


async def insert_returning_ids(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows in few statements and return their new ids, in the order given.

    PostgreSQL returns them from a multi-row INSERT ... RETURNING. SQLite cannot promise the order of a multi-row
    RETURNING, so ids are assigned here: a writer there holds the database's single write lock for the whole
    transaction (BEGIN IMMEDIATE), so max(id) cannot move under us.
    """
    if not rows:
        return []
    table = getattr(model, "__table__", model)
    if is_pg(session) or len(rows) == 1:  # one row's RETURNING has no order to doubt
        ids: list[int] = []
        for part in row_chunks(rows, 512):
            result = await session.execute(_insert_returning(table), part)
            ids.extend(result.scalars().all())
        return ids
    start = await next_id(session, table)
    ids = list(range(start, start + len(rows)))
    for part_ids, part in zip(chunks(ids, 500), chunks(rows, 500), strict=True):
        await session.execute(insert(table), [{**row, "id": i} for i, row in zip(part_ids, part, strict=True)])
    return ids


def in_values(column: Any, name: str, *, pg: bool, value: Any = None) -> Any:
    """`column IN (:name)`, the list bound at execution (or given as `value`). On PostgreSQL `column = ANY(:name)`:
    one statement text (one prepared statement) whatever the list's length; on SQLite an expanding IN."""
    if pg:
        return column == any_(bindparam(name, value, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, value, expanding=True))


def keys_clause(columns: Sequence[Any], *, vary: int, groups: int, pg: bool) -> Any:
    """WHERE clause for rows whose `columns` equal one of the keys given by `keys_params` (of `groups` groups).

    Written as `(a = :k0_0 AND c = :k0_1 AND b IN (:v0)) OR ...`, one group per value of the other columns,
    `columns[vary]` taking the list. SQLite plans the plain row-value form `(a, b) IN (VALUES ...)` of two or more
    keys as a scan of the whole index; these groups are index searches on both databases.
    """
    fixed = [c for i, c in enumerate(columns) if i != vary]
    return or_(
        false(),
        *(
            and_(*(c == bindparam(f"k{g}_{i}") for i, c in enumerate(fixed)),
                 in_values(columns[vary], f"v{g}", pg=pg))
            for g in range(groups)
        ),
    )


def keys_params(keys: Iterable[tuple[Any, ...]], *, vary: int) -> tuple[int, dict[str, Any]]:
    """The groups of `keys` (see `keys_clause`) and their bind parameters."""
    grouped: dict[tuple[Any, ...], set[Any]] = {}
    for key in keys:
        grouped.setdefault(key[:vary] + key[vary + 1 :], set()).add(key[vary])
    params: dict[str, Any] = {}
    for g, (fixed, values) in enumerate(sorted(grouped.items())):
        params.update({f"k{g}_{i}": v for i, v in enumerate(fixed)})
        params[f"v{g}"] = sorted(values)
    return len(grouped), params
