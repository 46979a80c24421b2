"""Contact retention: contacts older than `privacy.retain_contacts_days` are anonymised (text, subject,
attachments and raw message blanked; the rows and so the figures stay). Run by a background job inside
`tierdesk run` and once by `tierdesk customers retain`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


def remove_stored_files(refs: Iterable[str], root: str) -> int:
    """Delete the stored raw messages and attachments an erasure or retention left unreferenced (after its
    commit); only files inside the store's own folder, whatever a reference says. Returns how many went."""
    base = Path(root).resolve()
    removed = 0
    for ref in refs:
        path = Path(ref).resolve()
        if base in path.parents and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


async def retain_contacts(sessions: async_sessionmaker[AsyncSession], days: int, *, at: datetime | None = None,
                          actor: str = "system", files_root: str | None = None) -> int:
    """Anonymise every contact older than `days` days, in batches; how many were blanked (audited when any)."""
    before = cutoff(days, at)
    if before is None:
        return 0
    total, after = 0, 0
    while after is not None:
        async with sessions() as session, session.begin():
            files: set[str] = set()
            done, after = await privacy.anonymise_contacts_before(session, before, after_id=after, limit=BATCH,
                                                                  files=files)
            total += done
        if files_root:
            remove_stored_files(files, files_root)
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
                    blanked = await retain_contacts(sessions, days, files_root=app.settings.email.attachment_dir)
                    if blanked:
                        log.info("retention: %d contacts older than %d days anonymised", blanked, days)
        except Exception:
            log.exception("contact retention failed; trying again later")
        try:
            await asyncio.wait_for(stop_event.wait(), timeout=CHECK_EVERY.total_seconds())
        except TimeoutError:
            pass
