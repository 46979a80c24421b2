"""The contacts-per-day rollup behind the overview charts: whole UTC days, recomputed when something touched them.

It counts customer contacts only: desk traffic (`contacts.desk`) is never counted, in the rollup or live.

Each contact is counted once, by the refresh whose window [mark, new mark) holds its `logged_at` (whatever its
created_at: imports log old mail): new contacts are added to their days' counts, an index range on logged_at, so
a refresh costs what was logged since the last one, not a recount of today. A day where a customer with contacts
changed since the last refresh (a new tier, a merge) is recounted whole instead, from the contacts logged before
the new mark. The mark lags `MARGIN` behind the clock, so a contact whose transaction commits late is still in
the window that counts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, delete, false, func, insert, literal, select, text, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Contact, Customer
from crm_store.repositories._sql import adding_upserts, dialect, utc_date
from crm_store.rollups import ContactDay, RollupMark

MARK = "contact_days:logged"
"""The mark of this counting (contacts by `logged_at` window). The previous one, "contact_days", recounted whole
days: a database that has only that mark is counted afresh once."""
OLD_MARKS = ("contact_days",)
MARGIN = timedelta(minutes=1)
"""How long a contact's transaction may take between logging it and committing it and still be counted. Days
touched within the margin are recounted by every refresh until it has passed, so it stays short: our writers
commit within seconds."""


def utc_day(session: AsyncSession, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, as the database computes it."""
    return utc_date(dialect(session), column)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _runs(days: Sequence[date]) -> list[tuple[date, date]]:
    """Consecutive days as inclusive (first, last) runs, so each run is one range scan of the contact log."""
    runs: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if runs and d == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def live_counts(session: AsyncSession, since: datetime | None = None, until: datetime | None = None) -> Any:
    """(day, channel, tier, direction, contacts) of customer contacts, counted from the contact log itself, for
    [since, until)."""
    day = utc_day(session, Contact.created_at).label("day")
    tier = func.coalesce(Customer.tier, "unknown").label("tier")
    stmt = (
        select(day, Contact.channel, tier, Contact.direction, func.count().label("contacts"))
        .select_from(Contact)
        .join(Customer, Customer.id == Contact.customer_id, isouter=True)
        .where(Contact.desk == false())
    )
    if since is not None:
        stmt = stmt.where(Contact.created_at >= since)
    if until is not None:
        stmt = stmt.where(Contact.created_at < until)
    return stmt.group_by(day, Contact.channel, tier, Contact.direction)


def _whole_days(session: AsyncSession, first: date, end: date) -> tuple[Any, Any]:
    """created_at within the days [first, end). SQLite compares timestamps as text, and a timestamp written
    without fractional seconds sorts before the same instant with them; bare dates bound a day exactly."""
    if dialect(session) == "sqlite":
        lo, hi = literal(first.isoformat(), String()), literal(end.isoformat(), String())
        return Contact.created_at >= lo, Contact.created_at < hi
    return Contact.created_at >= day_start(first), Contact.created_at < day_start(end)


async def _moved_days(session: AsyncSession, mark: datetime) -> list[date]:
    """Days with contacts of customers changed since `mark`: their tier (or the customer itself) may differ."""
    day = utc_day(session, Contact.created_at)
    changed = select(Customer.id).where(Customer.updated_at >= mark)
    moved = select(day.label("day")).where(Contact.customer_id.in_(changed)).distinct()
    return [_as_date(d) for d in await session.scalars(moved) if d is not None]


COLUMNS = ["day", "channel", "tier", "direction", "contacts"]


async def _add_logged(session: AsyncSession, mark: datetime, new_mark: datetime, skip: list[date]) -> set[date]:
    """Add the contacts logged in [mark, new_mark) to their days' counts (days in `skip` are recounted whole)."""
    stmt = live_counts(session).where(Contact.logged_at >= mark, Contact.logged_at < new_mark)
    fresh = sorted(  # by key: two refreshes never wait on each other's rows crosswise
        (_as_date(d), c, t, w, int(n)) for d, c, t, w, n in (await session.execute(stmt)).all()
        if _as_date(d) not in set(skip)
    )
    if not fresh:
        return set()
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in fresh]
    for add in adding_upserts(dialect(session), ContactDay.__table__, rows, ["contacts"]):
        await session.execute(add)
    return {row[0] for row in fresh}


async def refresh_contact_days(session: AsyncSession, *, full: bool = False, at: datetime | None = None) -> int:
    """Bring the rollup up to date; returns how many days changed (recounted or added to).

    The first refresh (or `full=True`) counts the whole log. Refreshes serialise on a lock (PostgreSQL's advisory
    lock; SQLite has one writer anyway), so two dashboards refreshing at once cannot count a day twice.
    """
    at = at or datetime.now(UTC)
    if dialect(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('tierdesk.contact_days'))"))
    mark = await session.scalar(select(RollupMark.mark).where(RollupMark.name == MARK))
    new_mark = at - MARGIN
    if full or mark is None:
        await session.execute(delete(ContactDay))
        await session.execute(delete(RollupMark).where(RollupMark.name.in_(OLD_MARKS)))
        counted = live_counts(session).where(Contact.logged_at < new_mark)
        await session.execute(insert(ContactDay).from_select(COLUMNS, counted))
        recomputed = int(await session.scalar(select(func.count(func.distinct(ContactDay.day)))) or 0)
    else:
        moved = await _moved_days(session, mark)
        if moved:
            await session.execute(delete(ContactDay).where(ContactDay.day.in_(moved)))
        for first, last in _runs(moved):
            stmt = live_counts(session).where(
                *_whole_days(session, first, last + timedelta(days=1)), Contact.logged_at < new_mark
            )
            await session.execute(insert(ContactDay).from_select(COLUMNS, stmt))
        added = await _add_logged(session, mark, new_mark, moved)
        recomputed = len(set(moved) | added)
    if mark is None:
        session.add(RollupMark(name=MARK, mark=new_mark))
        await session.flush()
    else:
        await session.execute(update(RollupMark).where(RollupMark.name == MARK).values(mark=new_mark))
    return recomputed


async def since_mark(session: AsyncSession) -> Any:
    """A condition on contacts: logged since the rollup's mark, i.e. not counted in it yet (all, before any)."""
    mark = await session.scalar(select(RollupMark.mark).where(RollupMark.name == MARK))
    return true() if mark is None else Contact.logged_at >= mark


async def contacts_by_day(
    session: AsyncSession, since: datetime, until: datetime
) -> list[tuple[date, str, str, str, int]]:
    """(day, channel, tier, direction, contacts) for [since, until): whole days from the rollup plus what was logged
    since its mark (a short range of the logged_at index), the partial days at either end counted from the log.
    Call `refresh_contact_days` first to keep that tail short."""
    first_full = since.astimezone(UTC).date()
    if day_start(first_full) < since:
        first_full += timedelta(days=1)
    end_full = until.astimezone(UTC).date()  # exclusive
    rows: list[tuple[date, str, str, str, int]] = []
    if first_full >= end_full:
        parts = [(since, until)]
    else:
        parts = [(since, day_start(first_full)), (day_start(end_full), until)]
        stored = await session.execute(
            select(ContactDay.day, ContactDay.channel, ContactDay.tier, ContactDay.direction, ContactDay.contacts)
            .where(ContactDay.day >= first_full, ContactDay.day < end_full)
        )
        rows.extend((_as_date(d), c, t, w, int(n)) for d, c, t, w, n in stored.all())
        tail = live_counts(session).where(*_whole_days(session, first_full, end_full), await since_mark(session))
        rows.extend((_as_date(d), c, t, w, int(n)) for d, c, t, w, n in (await session.execute(tail)).all())
    for lo, hi in parts:
        if lo < hi:
            live = await session.execute(live_counts(session, lo, hi))
            rows.extend((_as_date(d), c, t, w, int(n)) for d, c, t, w, n in live.all())
    return rows
