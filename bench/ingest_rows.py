"""A second baseline for the ingestion benchmark: plain batched INSERTs of copies of every row the service wrote
in the round, not only the inbound contacts.

Per message the service writes its inbound contact, and for the replies it caused (about two) an outbox row and
an outbound contact, plus a ticket and its events for those that need a person. The first baseline writes one
contact row per message, so its ratio compares the whole service with a fifth of what it stores. This one copies
the round's own rows (contacts, outbox, tickets, ticket events) and inserts them again, in one transaction per
`batch` messages' worth, with nothing else: no dedup, no NLU, no routing, no reading. Its ratio says how close
the service comes to the cost of writing what it must write.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import Table, insert, select

from crm_store.engine import make_engine
from crm_store.models import Contact, OutboxItem, Ticket, TicketEvent

TABLES: tuple[Table, ...] = (Ticket.__table__, TicketEvent.__table__, Contact.__table__, OutboxItem.__table__)
"""In an order that keeps foreign keys whole (copied events and contacts point at the round's tickets)."""
UNIQUE_TEXT = {"contacts": "external_id", "outbox": "idempotency_key"}
"""The text column of each table's unique key, marked on the copies so they do not collide with the originals."""


def copies(rows: list[dict], table: Table, mark: str) -> list[dict]:
    """The rows without their ids, unique keys marked."""
    key = UNIQUE_TEXT.get(table.name)
    out = []
    for row in rows:
        copy = {k: v for k, v in row.items() if k != "id"}
        if key:
            copy[key] = f"{mark}{copy[key]}"
        out.append(copy)
    return out


def shares(total: int, parts: int) -> list[tuple[int, int]]:
    """`parts` consecutive (start, end) slices covering `total` rows, as even as may be."""
    return [(total * i // parts, total * (i + 1) // parts) for i in range(parts)]


async def same_rows(url: str, schema: str | None, messages: int, mark: str, *, skip: str, batch: int = 500) -> float:
    """Copies of the round's rows inserted again; returns messages/s (`messages` ÷ the time of the inserts).
    Contacts whose external id starts with `skip` (the first baseline's own rows) are not the round's."""
    engine = make_engine(url, schema=schema)
    try:
        async with engine.connect() as conn:
            found = {t.name: [dict(r._mapping) for r in await conn.execute(select(t).order_by(t.c.id))] for t in TABLES}
        found["contacts"] = [r for r in found["contacts"] if not r["external_id"].startswith(skip)]
        rows = {t.name: copies(found[t.name], t, mark) for t in TABLES}
        parts = max(math.ceil(messages / batch), 1)
        slices = {t.name: shares(len(rows[t.name]), parts) for t in TABLES}
        t0 = time.perf_counter()
        for i in range(parts):
            async with engine.begin() as conn:
                for table in TABLES:
                    start, end = slices[table.name][i]
                    if end > start:
                        await conn.execute(insert(table), rows[table.name][start:end])
        return messages / (time.perf_counter() - t0)
    finally:
        await engine.dispose()
