"""An export's single pass over the log reads SQLite through the page cache, and leaves the connection as it was."""

from __future__ import annotations

from sqlalchemy import text

from crm_store.repositories import contacts as contacts_repo


async def test_one_pass_unmaps_sqlite_for_the_pass_only(sqlite_db):
    async with sqlite_db.sessions() as s:
        before = await s.scalar(text("PRAGMA mmap_size"))
        assert before > 0  # the engine maps the file for the dashboard's index walks
        async with contacts_repo.one_pass(s):
            assert await s.scalar(text("PRAGMA mmap_size")) == 0
            assert [r async for r in contacts_repo.stream_contacts(s)] == []
        assert await s.scalar(text("PRAGMA mmap_size")) == before


async def test_one_pass_is_a_no_op_elsewhere(db):
    async with db.sessions() as s, contacts_repo.one_pass(s):
        assert await contacts_repo.count_contacts(s) == 0
