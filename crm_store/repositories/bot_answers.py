"""How often the bot answered each customer lately: the per-sender cap that stops reply storms, read for a whole
batch of customers in one query instead of one per message."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import OutboxItem
from crm_store.repositories._sql import chunks, in_values, is_pg


@cache
def _answers_query(pg: bool) -> Any:
    return (
        select(OutboxItem.customer_id, func.count(OutboxItem.id))
        .where(
            in_values(OutboxItem.customer_id, "ids", pg=pg),
            OutboxItem.author == "bot",
            OutboxItem.created_at >= bindparam("since", type_=OutboxItem.created_at.type),
        )
        .group_by(OutboxItem.customer_id)
    )


async def bot_answers_since(session: AsyncSession, customer_ids: Iterable[int], since: datetime) -> dict[int, int]:
    """Bot answers written for each customer since `since` (sent or not yet); every customer asked is in the
    result, those without any with 0."""
    ids = sorted(set(customer_ids))
    found = dict.fromkeys(ids, 0)
    query = _answers_query(is_pg(session))
    for part in chunks(ids):
        for customer_id, count in await session.execute(query, {"ids": part, "since": since}):
            found[customer_id] = int(count)
    return found
