"""The export's stream of the contact log: every row once, in id order, in the export's columns, page by page;
its single pass reads SQLite through the page cache and leaves the connection as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bot.cli.log import EXPORT_COLUMNS, export_record
from crm_store.models import Contact
from crm_store.repositories import contacts as contacts_repo

T0 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
NLU = [{"intent": "refund", "confidence": 0.9}, None, {"confidence": 0.2}, ["not", "a", "dict"], {"intent": "hi"}]


async def test_stream_pages_through_every_contact_in_the_export_columns(db):
    async with db.sessions() as s, s.begin():
        s.add_all([Contact(channel="telegram" if i % 2 else "email", external_id=f"x{i}", direction="in",
                           text=f"text {i}", attachments=[], nlu=NLU[i % 5], created_at=T0 + timedelta(minutes=i))
                   for i in range(7)])
    async with db.sessions() as s:
        rows = [r async for r in contacts_repo.stream_contacts(s, page=2)]
        telegram = [r async for r in contacts_repo.stream_contacts(s, channel="telegram", page=2)]
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert [r["external_id"] for r in rows] == [f"x{i}" for i in range(7)]
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert [r["intent"] for r in rows] == ["refund", None, None, None, "hi", "refund", None]
    assert [r["external_id"] for r in telegram] == ["x1", "x3", "x5"]
    record = export_record(rows[1])
    assert record["created_at"] == (T0 + timedelta(minutes=1)).isoformat() and record["text"] == "text 1"


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
