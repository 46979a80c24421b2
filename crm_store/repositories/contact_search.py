"""The searchable, filterable contact log (the dashboard's log page, a customer's history, exports).

A text search never leaves the planner to guess a word's frequency, so neither a common word nor a rare or
absent one costs a scan of the log.

SQLite: the FTS5 index answers "which contacts have this term, if at most PROBE do" in a few milliseconds for any
term; a query with a rare or absent term is then read by id, one of common terms by walking the log newest first
and checking each row.

PostgreSQL: counting a common word's matches in the GIN index costs tens of milliseconds, so unless the planner's
statistics call the word rare (then the index is asked first, as in step 2), the walk comes first:
1. read a window of the newest contacts that pass the row filters (by the created_at/channel/... indexes) and
   check each one's text; a common word fills the page here;
2. if the window is full but its matches are too sparse to fill the page soon, ask the text index for up to PROBE
   matches: for a rare or absent word the same statement sorts them and returns the page (`_rare_stmt`: each
   match's heap page is read once, by the bitmap scan, and only the page's customers are looked up);
3. otherwise keep reading windows, larger each time (a common word with sparse filters).
The text condition is never beside an ORDER BY ... LIMIT the planner could satisfy from either index.

Desk traffic (`contacts.desk`) is left out unless the filter includes it: `desk = false` is one more row filter
beside channel, direction, ..., checked on each row an index walk or a read by id yields, so it changes no plan.
Desk rows are logged without a customer or ticket, so a customer's or a ticket's walk never even meets them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, bindparam, false, func, literal_column, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_store.models import Contact, Customer
from crm_store.repositories._sql import dialect, in_values
from crm_store.repositories.text_match import TextQuery, estimated_log_rows, text_query

WINDOW = 400
"""Contacts read in the first window of a text search (at least four pages): a word in one contact of eight
fills a page from it, and a rare word costs little more than the index lookup."""
PROBE = 10_000
"""A word matching at most this many contacts is read from the text index (one bitmap scan, ~15 ms for 2,000
matches at ten million contacts). Past it, the walk must read log rows per match until a page is full: at 2,000
the first word just over it (one contact in 5,000) took 2.4 s to walk, while the scan grows only with the
matches."""
WALK_BUDGET = 20_000
"""Rows the window walk may still read before the text index is asked instead."""
COMMON_WALK = 5
"""A word the statistics call common is asked of the text index only after COMMON_WALK * WALK_BUDGET rows walked:
the index then builds the bitmap of all its matches (about 0.3 s for a word in one contact of six at ten million)
only to answer "more than PROBE", while recent contacts that lack the word (a burst of other traffic) cost about as
much per 10,000 rows walked past."""
MAX_WINDOW = 4000
"""Larger windows would tempt the planner to sort all the filtered rows instead of reading them in index order."""

Cursor = tuple[datetime, int]


@dataclass(frozen=True)
class ContactFilter:
    """What a supervisor asked the contact log for. `scope_tiers` is the viewer's own limit (agents);
    `include_desk` adds desk traffic (agent commands, notices to agents) to the customer contacts."""

    q: str = ""
    channel: str = ""
    tier: str = ""
    agent_id: int | None = None
    intent: str = ""
    direction: str = ""
    since: datetime | None = None
    until: datetime | None = None
    customer_id: int | None = None
    ticket_id: int | None = None
    scope_tiers: tuple[str, ...] = field(default=())
    include_desk: bool = False


def log_columns(c: Any) -> tuple[Any, ...]:
    """The columns of a log row, read from the contacts table or a window over it."""
    return (
        c.id, c.created_at, c.channel, c.direction, c.author, c.address, c.customer_id,
        Customer.name.label("customer_name"), Customer.tier, c.agent_id, c.ticket_id,
        c.nlu["intent"].as_string().label("intent"), c.text, c.desk,
    )


LOG_COLUMNS = log_columns(Contact)


def _local(f: ContactFilter, c: Any) -> list[Any]:
    """Conditions on the contact row itself (an index can order by them)."""
    conds: list[Any] = [] if f.include_desk else [c.desk == false()]
    if f.channel:
        conds.append(c.channel == f.channel)
    if f.agent_id is not None:
        conds.append(c.agent_id == f.agent_id)
    if f.intent:
        conds += [c.nlu.is_not(None), c.nlu["intent"].as_string() == f.intent]  # the is-not: a partial index
    if f.direction:
        conds.append(c.direction == f.direction)
    if f.since is not None:
        conds.append(c.created_at >= f.since)
    if f.until is not None:
        conds.append(c.created_at < f.until)
    if f.customer_id is not None:
        conds.append(c.customer_id == f.customer_id)
    if f.ticket_id is not None:
        conds.append(c.ticket_id == f.ticket_id)
    return conds


def _tiers(session: AsyncSession, f: ContactFilter, c: Any) -> list[Any]:
    """Conditions on the contact's customer.

    SQLite would start from the customers of a tier and sort all their contacts (or hash every customer first);
    reading the log newest first and checking each contact's customer stops after one page."""
    if dialect(session) != "sqlite":
        return _tier_conds(f, Customer.tier)
    cu = aliased(Customer)
    return [select(cu.id).where(cu.id == c.customer_id, cond).exists() for cond in _tier_conds(f, cu.tier)]


def _tier_conds(f: ContactFilter, tier: Any) -> list[Any]:
    """Conditions on a customer's tier (a column, or a subquery reading it)."""
    conds: list[Any] = []
    if f.tier:
        conds.append(tier == f.tier)
    if f.scope_tiers:
        conds.append(tier.in_(list(f.scope_tiers)))
    return conds


def _order(c: Any, oldest_first: bool) -> list[Any]:
    return [c.created_at, c.id] if oldest_first else [c.created_at.desc(), c.id.desc()]


def _after(c: Any, cursor: tuple[Any, Any] | None, oldest_first: bool) -> list[Any]:
    """Rows after the keyset cursor in reading order. The bare created_at bound is implied by the row comparison;
    it is there so an index on created_at (alone or after channel, agent, ...) starts at the cursor instead of
    filtering every row before it."""
    if cursor is None:
        return []
    key = tuple_(c.created_at, c.id)
    if oldest_first:
        return [c.created_at >= cursor[0], key > tuple_(*cursor)]
    return [c.created_at <= cursor[0], key < tuple_(*cursor)]


def _page(c: Any, conds: Sequence[Any], cursor: Cursor | None, oldest_first: bool,
          limit: int) -> Any:
    stmt = select(*log_columns(c)).select_from(c).join(Customer, Customer.id == c.customer_id, isouter=True)
    where = [*conds, *_after(c, cursor, oldest_first)]
    if where:
        stmt = stmt.where(and_(*where))
    return stmt.order_by(*_order(c, oldest_first)).limit(limit)


async def _rows(session: AsyncSession, stmt: Any) -> list[dict[str, Any]]:
    return [row._asdict() for row in (await session.execute(stmt)).all()]


_ROW_COLUMNS = (
    Contact.id, Contact.created_at, Contact.channel, Contact.direction, Contact.author, Contact.address,
    Contact.customer_id, Contact.agent_id, Contact.ticket_id, Contact.nlu, Contact.text, Contact.desk,
)
_WINDOW_COLUMNS = (*_ROW_COLUMNS, literal_column("contacts.search_tsv").label("search_tsv"))


@lru_cache(maxsize=256)
def _window_stmt(f: ContactFilter, tq: TextQuery, after: bool, oldest_first: bool) -> Any:
    """The window query of one filter, built once: building it costs ~2 ms of Python, more than reading a small
    window. The cursor, the window's size and the page's limit are parameters (`at`, `id`, `size`, `limit`)."""
    order = _order(Contact, oldest_first)
    cursor = (bindparam("at", type_=Contact.created_at.type), bindparam("id", type_=BigInteger)) if after else None
    size = bindparam("size", type_=Integer)
    inner = (
        select(*_WINDOW_COLUMNS, func.row_number().over(order_by=order).label("rn"))
        .where(*_local(f, Contact), *_after(Contact, cursor, oldest_first))
        .order_by(*order).limit(size).subquery("w")
    )
    c = aliased(Contact, inner)
    hit = and_(tq.row_match(c, inner.c.search_tsv), *_tier_conds(f, Customer.tier))
    return (
        select(*log_columns(c), hit.label("hit"), inner.c.rn).select_from(inner)
        .join(Customer, Customer.id == c.customer_id, isouter=True)
        .where(or_(hit, inner.c.rn == size)).order_by(*_order(c, oldest_first)).limit(bindparam("limit"))
    )


async def _window(
    session: AsyncSession, f: ContactFilter, tq: TextQuery, cursor: Cursor | None, oldest_first: bool, size: int,
    limit: int,
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """Matches among the next `size` contacts that pass the row filters, and the last of those contacts when the
    window was full (where the next window starts). PostgreSQL only."""
    params: dict[str, Any] = {"size": size, "limit": limit + 1}
    if cursor is not None:
        params.update(at=cursor[0], id=cursor[1])
    stmt = _window_stmt(f, tq, cursor is not None, oldest_first)
    hits: list[dict[str, Any]] = []
    last: Cursor | None = None
    for row in (await session.execute(stmt, params)).all():
        item = row._asdict()
        if item.pop("rn") == size:
            last = (item["created_at"], item["id"])
        if item.pop("hit") and len(hits) < limit:
            hits.append(item)
    return hits, last


async def _by_ids(
    session: AsyncSession, f: ContactFilter, tq: TextQuery, ids: list[int], cursor: Cursor | None,
    oldest_first: bool, limit: int,
) -> list[dict[str, Any]]:
    """The page among a few known matches (SQLite: the FTS5 index's answer), every filter checked again."""
    if not ids:
        return []
    among = in_values(Contact.id, "ids", pg=tq.postgres, value=ids)
    conds = [among, tq.row_match(Contact), *_local(f, Contact), *_after(Contact, cursor, oldest_first)]
    # OFFSET 0 fences the lookup by id off from the ORDER BY ... LIMIT: the planner cannot turn it into a walk of
    # the created_at index that checks each row against the id list.
    c = aliased(Contact, select(*_ROW_COLUMNS).where(*conds).offset(0).subquery("m"))
    return await _rows(session, _page(c, _tiers(session, f, c), None, oldest_first, limit))


@lru_cache(maxsize=256)
def _rare_stmt(f: ContactFilter, tq: TextQuery, after: bool, oldest_first: bool) -> Any:
    """The page among a word's few matches, in one statement (PostgreSQL): up to `cap` matches from the text
    index (a bitmap scan reads each one's heap page once, no second lookup by id), their count, and the page among
    them. The matches are sorted first and a tier filter looks up each one's customer by primary key as they come,
    stopping when the page is full: a page's worth of lookups rather than one per match, whatever the planner thinks
    of the customers table. One row at least (the count; the page's columns are NULL when no match passes)."""
    # The text condition twice (the same rows): a prefix the statistics cannot size counts as 0.02 of the rows, and
    # beside a LIMIT that makes a sequential scan look cheap (it expects to stop early; for a rare word it reads the
    # whole table). Squared, the estimate is small enough that only the text index answers, without a round trip
    # to turn sequential scans off and on again.
    matches = (
        select(*_ROW_COLUMNS).where(tq.row_match(Contact), tq.row_match(Contact)).limit(bindparam("cap")).cte("m")
    )
    total = select(func.count().label("total")).select_from(matches).subquery("n")
    m = aliased(Contact, matches)
    cursor = (bindparam("at", type_=Contact.created_at.type), bindparam("id", type_=BigInteger)) if after else None
    # OFFSET 0 keeps the sort a step of its own, below the tier check (a correlated subquery, never made a join).
    ordered = (
        select(matches).where(*_local(f, m), *_after(m, cursor, oldest_first))
        .order_by(*_order(m, oldest_first)).offset(0).subquery("s")
    )
    s = aliased(Contact, ordered)
    cu = aliased(Customer)
    tier = select(cu.tier).where(cu.id == s.customer_id).scalar_subquery()
    picked = (
        select(ordered).where(*_tier_conds(f, tier))
        .order_by(*_order(s, oldest_first)).limit(bindparam("limit")).subquery("k")
    )
    c = aliased(Contact, picked)
    page = (
        select(*log_columns(c)).select_from(picked).join(Customer, Customer.id == c.customer_id, isouter=True)
        .order_by(*_order(c, oldest_first)).lateral("p")
    )
    return select(total.c.total, page).select_from(total.outerjoin(page, literal_column("true")))


async def _rare(
    session: AsyncSession, f: ContactFilter, tq: TextQuery, cursor: Cursor | None, oldest_first: bool, limit: int
) -> list[dict[str, Any]] | None:
    """The page among the word's matches if it has at most PROBE of them (PostgreSQL), else None: then the log is
    walked instead (and for a search without a word, which the text index cannot answer)."""
    if not tq.tsquery:
        return None
    params: dict[str, Any] = {"cap": PROBE + 1, "limit": limit}
    if cursor is not None:
        params.update(at=cursor[0], id=cursor[1])
    stmt = _rare_stmt(f, tq, cursor is not None, oldest_first)
    rows = [row._asdict() for row in (await session.execute(stmt, params)).all()]
    if not rows or rows[0]["total"] > PROBE:
        return None
    return [{k: v for k, v in row.items() if k != "total"} for row in rows if row["id"] is not None]


def _first_window(size: int, limit: int, rows_per_match: float, f: ContactFilter) -> int:
    """A window the statistics expect to fill the page twice over (eight times with a filter on the customer, which
    the window does not apply): one round trip instead of three for a word in a contact of fifty. Reading stops
    once the page is full, so a window too large for a common word costs nothing."""
    spare = 8 if f.tier or f.scope_tiers else 2
    return int(min(MAX_WINDOW, max(size, spare * limit * rows_per_match)))


async def _search_text(
    session: AsyncSession, f: ContactFilter, tq: TextQuery, before: Cursor | None, limit: int, oldest_first: bool
) -> list[dict[str, Any]]:
    if not tq.postgres:
        ids = await tq.probe(session, PROBE)
        if ids is not None and len(ids) <= PROBE:
            return await _by_ids(session, f, tq, ids, before, oldest_first, limit)
        conds = [tq.row_match(Contact), *_local(f, Contact), *_tiers(session, f, Contact)]
        return await _rows(session, _page(Contact, conds, before, oldest_first, limit))
    found: list[dict[str, Any]] = []
    cursor, size, walked, probed = before, max(WINDOW, 4 * limit), 0, False
    estimate = await tq.estimated_matches(session)
    common = estimate is not None and estimate > 4 * PROBE
    if estimate:
        size = _first_window(size, limit, await estimated_log_rows(session) / estimate, f)
    if estimate is not None and estimate < PROBE / 4:  # rare by the statistics: the index first
        probed = True
        page = await _rare(session, f, tq, cursor, oldest_first, limit)
        if page is not None:
            return page
    while True:
        hits, last = await _window(session, f, tq, cursor, oldest_first, size, limit - len(found))
        found.extend(hits)
        if len(found) >= limit or last is None:
            return found
        cursor, need, walked = last, limit - len(found), walked + size
        rows_needed = need * size / len(hits) if hits else float("inf")
        # A word the statistics call common is only counted once a long walk has not found it (recent contacts
        # may lack it; see COMMON_WALK); any other is counted as soon as its matches look sparse.
        if not probed and rows_needed > WALK_BUDGET and (not common or walked >= COMMON_WALK * WALK_BUDGET):
            probed = True
            page = await _rare(session, f, tq, cursor, oldest_first, need)
            if page is not None:
                return found + page
        size = int(min(MAX_WINDOW, max(size * 4, rows_needed * 1.5)))


async def search_contacts(
    session: AsyncSession, f: ContactFilter, *, before: Cursor | None = None, limit: int = 50,
    oldest_first: bool = False,
) -> list[dict[str, Any]]:
    """One page of the contact log, newest first, after the keyset cursor `before` (created_at, id)."""
    if dialect(session) == "postgresql" and f.customer_id is None and f.ticket_id is None:
        # A page stops after 50 rows; starting parallel workers costs more than it saves (tens of ms). A customer's
        # or a ticket's contacts are read from their own index: no plan to keep from the planner, no round trip.
        await session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    q = f.q.strip()
    if q:
        return await _search_text(session, f, text_query(session, q), before, limit, oldest_first)
    conds = [*_local(f, Contact), *_tiers(session, f, Contact)]
    return await _rows(session, _page(Contact, conds, before, oldest_first, limit))


async def iter_contacts(session: AsyncSession, f: ContactFilter, *, page: int = 2000) -> AsyncIterator[dict[str, Any]]:
    """Every contact the filter matches, oldest first, fetched page by page so memory stays flat (exports)."""
    cursor: Cursor | None = None
    while True:
        rows = await search_contacts(session, f, before=cursor, limit=page, oldest_first=True)
        for row in rows:
            yield row
        if len(rows) < page:
            return
        cursor = (rows[-1]["created_at"], rows[-1]["id"])
