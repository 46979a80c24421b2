"""Identity claims: an address a customer typed but nobody vouched for, waiting for the code sent there."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.trust import IdentityClaim


def add_claim(session: AsyncSession, **fields: object) -> IdentityClaim:
    """A new claim in the caller's transaction (flushed with the batch)."""
    claim = IdentityClaim(**fields)
    session.add(claim)
    return claim


def change(claim: IdentityClaim, **values: object) -> None:
    """Set a claim's status, tries or verification time (written with the batch)."""
    for name, value in values.items():
        setattr(claim, name, value)


async def codes_sent_since(session: AsyncSession, channel: str, address: str, since: datetime) -> int:
    """How many codes went to this address since `since`, whoever asked for them (the rate limit is the
    address's, so nobody can flood someone's mailbox by asking from many chats)."""
    count = await session.scalar(
        select(func.count(IdentityClaim.id)).where(
            IdentityClaim.channel == channel, IdentityClaim.address == address, IdentityClaim.sent_at >= since
        )
    )
    return int(count or 0)


async def open_claims(session: AsyncSession, customer_id: int, channel: str, address: str) -> list[IdentityClaim]:
    """The claimant's pending claims of this address: a new code replaces them."""
    rows = await session.scalars(
        select(IdentityClaim).where(
            IdentityClaim.customer_id == customer_id, IdentityClaim.channel == channel,
            IdentityClaim.address == address, IdentityClaim.status == "pending",
        )
    )
    return list(rows)


async def claims_made_from(
    session: AsyncSession, via_channel: str, via_address: str, since: datetime
) -> list[IdentityClaim]:
    """Claims with a code made from this chat since `since`, newest first: a code typed there is checked
    against these (by the chat, not the customer: after a link the chat's customer is the owner's)."""
    rows = await session.scalars(
        select(IdentityClaim)
        .where(
            IdentityClaim.via_channel == via_channel,
            IdentityClaim.via_address == via_address, IdentityClaim.code_hash != "",
            IdentityClaim.created_at >= since,
        )
        .order_by(IdentityClaim.created_at.desc(), IdentityClaim.id.desc())
    )
    return list(rows)


async def claims_of(session: AsyncSession, *, customer_id: int | None = None, address: str | None = None,
                    ) -> list[IdentityClaim]:
    """Claims by a claimant or of an address, oldest first (for the dashboard and tests)."""
    q = select(IdentityClaim).order_by(IdentityClaim.id)
    if customer_id is not None:
        q = q.where(IdentityClaim.customer_id == customer_id)
    if address is not None:
        q = q.where(IdentityClaim.address == address)
    return list(await session.scalars(q))
