"""Ticket work outside the dispatcher (dashboard, REST API, SLA clock, importers): the same batch context the
dispatcher uses, so every caller goes through the one writer and its outbox rows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from bot.assistant.responder import HumanOnly
from bot.core.messages import utcnow
from bot.core.outbound import BatchContext
from bot.routing.policy import RoutingPolicy
from bot.settings import Settings
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import outbox as outbox_repo


def request_cause() -> str:
    """A cause for outbox keys when no contact caused the change (a web request, a timer)."""
    return f"r{uuid4().hex[:16]}"


@asynccontextmanager
async def ticket_work(
    session: AsyncSession, settings: Settings, policy: RoutingPolicy | None = None
) -> AsyncIterator[BatchContext]:
    """A context for ticket operations inside the caller's transaction; what they queued is written at the end
    (unless the block raised)."""
    ctx = BatchContext(session=session, now=utcnow(), settings=settings, policy=policy or RoutingPolicy.default(),
                       responder=HumanOnly())
    yield ctx
    await finish(ctx)


async def finish(ctx: BatchContext) -> None:
    updates = ctx.changed_contacts()
    if updates:
        await contacts_repo.update_contacts(ctx.session, updates)
    if rows := ctx.rows_to_write():
        await outbox_repo.enqueue(ctx.session, rows)
        ctx.outbox.clear()
