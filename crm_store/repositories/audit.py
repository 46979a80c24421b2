"""The audit log: who exported, merged, linked, erased or revoked what, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import now
from crm_store.trust import AuditEntry


def record(session: AsyncSession, action: str, *, subject: str = "", agent_id: int | None = None,
           actor: str = "agent", at: datetime | None = None, **data: Any) -> AuditEntry:
    """Add an entry in the caller's transaction."""
    entry = AuditEntry(action=action[:32], subject=subject[:64], agent_id=agent_id, actor=actor[:16],
                       at=at or now(), data=data)
    session.add(entry)
    return entry


async def entries(session: AsyncSession, *, action: str | None = None, subject: str | None = None,
                  limit: int = 100) -> list[AuditEntry]:
    """The newest entries, optionally of one action or about one subject."""
    q = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    if action:
        q = q.where(AuditEntry.action == action)
    if subject:
        q = q.where(AuditEntry.subject == subject)
    return list(await session.scalars(q))
