"""Contact retention: contacts older than `privacy.retain_contacts_days` are anonymised (text, subject,
attachments and raw message blanked; the rows and so the figures stay). Run by a background job inside
`tierdesk run` and once by `tierdesk customers retain`."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.locks import JobTurns
from crm_store.repositories import privacy

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(hours=1)
BATCH = 1000
"""Contacts blanked per transaction: short transactions, so live traffic never waits long for the writer."""


def cutoff(days: int, at: datetime | None = None) -> datetime | None:
    """Contacts created before this are anonymised; None when retention is off (0 days)."""
    if days <= 0:
        return None
    return (at or datetime.now(UTC)) - timedelta(days=days)


async def retain_contacts(sessions: async_sessionmaker[AsyncSession], days: int, *, at: datetime | None = None,
                          actor: str = "system") -> int:
    """Anonymise every contact older than `days` days, in batches; how many were blanked (audited when any)."""
    before = cutoff(days, at)
    if before is None:
        return 0
    total, after = 0, 0
    while after is not None:
        async with sessions() as session, session.begin():
            done, after = await privacy.anonymise_contacts_before(session, before, after_id=after, limit=BATCH)
            total += done
    if total:
        async with sessions() as session, session.begin():
            privacy.record_retention(session, before, total, actor=actor)
    return total


async def retention_job(app, stop_event: asyncio.Event) -> None:
    """`App(background=[retention_job])`: apply the retention setting every hour, one worker at a time."""
    days = int(app.settings.privacy.retain_contacts_days)
    if days <= 0:
        return
    turns = JobTurns(app.redis, app.settings.redis_prefix)
    sessions = getattr(app, "writer_sessions", None) or app.sessions
    while not stop_event.is_set():
        try:
            async with turns.turn("retention") as ours:
                if ours:
                    blanked = await retain_contacts(sessions, days)
                    if blanked:
                        log.info("retention: %d contacts older than %d days anonymised", blanked, days)
        except Exception:
            log.exception("contact retention failed; trying again later")
        try:
            await asyncio.wait_for(stop_event.wait(), timeout=CHECK_EVERY.total_seconds())
        except TimeoutError:
            pass
