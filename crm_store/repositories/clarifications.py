"""Clarifications: questions the bot asked, the customers' choices, and the review of those choices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.clarifications import Clarification


def add_clarification(session: AsyncSession, **fields: object) -> Clarification:
    """A new question in the caller's transaction (flushed with the batch)."""
    row = Clarification(**fields)
    session.add(row)
    return row


async def by_token(session: AsyncSession, token: str) -> Clarification | None:
    return await session.scalar(select(Clarification).where(Clarification.token == token))


async def newest_asked(session: AsyncSession, customer_id: int, since: datetime) -> Clarification | None:
    """The customer's newest question still waiting for a choice, asked after `since`."""
    return await session.scalar(
        select(Clarification)
        .where(
            Clarification.customer_id == customer_id,
            Clarification.status == "asked",
            Clarification.created_at >= since,
        )
        .order_by(Clarification.created_at.desc(), Clarification.id.desc())
        .limit(1)
    )


async def open_tokens(session: AsyncSession, tokens: list[str], since: datetime) -> set[str]:
    """Of these questions, those still waiting for a choice and asked after `since`."""
    if not tokens:
        return set()
    rows = await session.scalars(
        select(Clarification.token).where(
            Clarification.token.in_(sorted(set(tokens))),
            Clarification.status == "asked",
            Clarification.created_at >= since,
        )
    )
    return set(rows)


async def unanswered(session: AsyncSession, before: datetime, *, limit: int = 200) -> list[Clarification]:
    """Questions still waiting for a choice that were asked before `before`, oldest first."""
    rows = await session.scalars(
        select(Clarification)
        .where(Clarification.status == "asked", Clarification.created_at < before)
        .order_by(Clarification.created_at, Clarification.id)
        .limit(limit)
    )
    return list(rows)


async def expire(session: AsyncSession, row_id: int, at: datetime) -> bool:
    """Close a question nobody answered; False when a choice (or another worker) got there first."""
    result = await session.execute(
        update(Clarification)
        .where(Clarification.id == row_id, Clarification.status == "asked")
        .values(status="expired")
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def take_choice(session: AsyncSession, row_id: int, intent: str, at: datetime, *, for_review: bool) -> bool:
    """Record the choice if the question is still open; False when another press got there first. A choice
    `for_review` waits for an admin to accept it as a training example."""
    result = await session.execute(
        update(Clarification)
        .where(Clarification.id == row_id, Clarification.status == "asked")
        .values(status="chosen", chosen_intent=intent, chosen_at=at, review="pending" if for_review else None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def for_review(session: AsyncSession, *, review: str = "pending", limit: int | None = 100) -> list[Clarification]:
    """Chosen questions in `review` state, oldest choice first (all of them when `limit` is None)."""
    query = (
        select(Clarification)
        .where(Clarification.status == "chosen", Clarification.review == review)
        .order_by(Clarification.chosen_at, Clarification.id)
    )
    rows = await session.scalars(query if limit is None else query.limit(limit))
    return list(rows)


async def set_review(session: AsyncSession, row_ids: list[int], review: str, by: str, at: datetime) -> int:
    """Mark pending choices accepted or rejected; returns how many were still pending."""
    if not row_ids:
        return 0
    result = await session.execute(
        update(Clarification)
        .where(Clarification.id.in_(row_ids), Clarification.review == "pending")
        .values(review=review, reviewed_by=by[:255], reviewed_at=at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


async def pending_review(session: AsyncSession, row_ids: list[int]) -> list[Clarification]:
    """Those of `row_ids` that are chosen and waiting for review."""
    if not row_ids:
        return []
    rows = await session.scalars(
        select(Clarification).where(
            Clarification.id.in_(row_ids), Clarification.status == "chosen", Clarification.review == "pending"
        )
    )
    return list(rows)
