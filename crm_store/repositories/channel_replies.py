"""Replies an API channel's caller pulls: the channel's outbound customer contacts to one endpoint's addresses,
after a cursor (the contact id), oldest first."""

from __future__ import annotations

from sqlalchemy import false, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Contact


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def replies_after(session: AsyncSession, channel: str, prefix: str, after: int, limit: int) -> list[Contact]:
    """Up to `limit` delivered replies whose address starts with `prefix`, with ids above `after`."""
    query = (
        select(Contact)
        .where(
            Contact.channel == channel,
            Contact.direction == "out",
            Contact.desk == false(),
            Contact.id > after,
            Contact.address.like(_escape_like(prefix) + "%", escape="\\"),
        )
        .order_by(Contact.id)
        .limit(limit)
    )
    return list(await session.scalars(query))
