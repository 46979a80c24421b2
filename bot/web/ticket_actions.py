"""Ticket changes made from the web (dashboard or REST API): each records a ticket event and, when webhooks
are configured, queues a signed event through the outbox in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.events import ticket_event
from bot.settings import Settings
from crm_store.models import Ticket, now
from crm_store.repositories import web as web_repo


async def emit(session: AsyncSession, settings: Settings, event: str, ticket: Ticket, **data: Any) -> None:
    """Queue webhook `event` for `ticket` (no-op without web.webhook_url)."""
    await ticket_event(session, settings, event, ticket, **data)


async def created(session: AsyncSession, settings: Settings, ticket: Ticket, *, actor: str) -> None:
    web_repo.record_event(session, ticket.id, "opened", actor=actor)
    await emit(session, settings, "ticket.created", ticket)


async def assign(
    session: AsyncSession, settings: Settings, ticket: Ticket, agent_id: int | None, *, actor: str
) -> None:
    previous = ticket.assignee_id
    ticket.assignee_id = agent_id
    ticket.updated_at = now()
    web_repo.record_event(session, ticket.id, "assigned", actor=actor, previous=previous, assignee_id=agent_id)
    await emit(session, settings, "ticket.assigned", ticket, previous_assignee_id=previous)


async def close(session: AsyncSession, settings: Settings, ticket: Ticket, resolution: str, *, actor: str) -> None:
    at = now()
    ticket.status = "closed"
    ticket.closed_at = at
    ticket.solved_at = ticket.solved_at or at
    ticket.resolution = resolution or ticket.resolution
    ticket.updated_at = at
    web_repo.record_event(session, ticket.id, "closed", actor=actor, resolution=resolution)
    await emit(session, settings, "ticket.closed", ticket)
