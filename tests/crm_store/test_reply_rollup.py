"""Agents' replies per day (agent_reply_days) against the contact log: a history logged through each writer (the
outbox's mark-sent, the batch's insert, the ORM), whose counts are worked out below by hand, reads the same through
the rollup (`figures`) and through the log (`figures_from_tickets`); the rollup equals a rebuild.

D0 = 2026-03-02 UTC. Ann = 1, Bob = 2, Sue = 3 (no replies).

 contact                                                          written by       counts as
 o1  Ann's reply on telegram, D0 09:00 (marked sent twice)         outbox           Ann, D0 (once)
 o2  Bob's reply by email, D0 10:00                                outbox           Bob, D0
 o3  a notice to Ann (desk traffic, author agent), D0 10:00        outbox           nothing
 o4  the bot's answer, D0 11:00                                    outbox           nothing
 o5  Ann's reply, D0 23:59:59                                      outbox           Ann, D0
 o6  Ann's reply, D0+1d 00:00                                      outbox           Ann, D0+1
 b1  Bob's reply, D0 - 1 s (logged twice: the second is skipped)   insert_contacts  Bob, D0-1 (once)
 b2  Ann writing in from her desk (inbound, desk)                  insert_contacts  nothing
 m1  Bob's reply, D0 12:00                                         ORM              Bob, D0
 m2  an agent's outbound message with no agent, D0 12:00           ORM              nothing
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, inspect, select

from crm_store.models import Agent, Contact
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import outbox
from crm_store.repositories.figures import figures
from crm_store.repositories.figures_from_tickets import figures_from_tickets
from crm_store.repositories.reply_rollup import rebuild_reply_rollup
from crm_store.rollups import agent_reply_days
from tests.conftest import migrate

D0 = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)
DAY = timedelta(days=1)
ROWS = {(2, date(2026, 3, 1), 1), (1, date(2026, 3, 2), 2), (2, date(2026, 3, 2), 2), (1, date(2026, 3, 3), 1)}
"""agent_reply_days after the history: (agent, day, replies)."""


async def _sent(ses, key: str, at: datetime, *, author: str = "agent", agent_id: int | None = 1,
                audience: str = "customer", channel: str = "telegram") -> outbox.Reply:
    row = {"idempotency_key": key, "channel": channel, "recipient": "r", "text": key, "author": author,
           "agent_id": agent_id, "audience": audience, "attempts": 0}
    reply = outbox.Reply.from_row((await outbox.enqueue(ses, [row]))[key], row)
    assert await outbox.mark_sent_many(ses, [(reply, f"x-{key}")], at=at) == 1
    return reply


def _logged(ext: str, at: datetime, direction: str, agent_id: int, *, desk: bool = False) -> dict:
    return {"channel": "telegram", "external_id": ext, "direction": direction, "author": "agent",
            "agent_id": agent_id, "desk": desk, "created_at": at, "logged_at": at, "text": ext}


async def write_history(db) -> None:
    async with db.sessions() as ses, ses.begin():
        ses.add_all([Agent(id=1, name="Ann", role="agent"), Agent(id=2, name="Bob", role="agent"),
                     Agent(id=3, name="Sue", role="supervisor")])
    async with db.sessions() as ses, ses.begin():
        o1 = await _sent(ses, "o1", D0 + 9 * H)
        await _sent(ses, "o2", D0 + 10 * H, agent_id=2, channel="email")
        await _sent(ses, "o3", D0 + 10 * H, audience="desk")
        await _sent(ses, "o4", D0 + 11 * H, author="bot", agent_id=None)
    async with db.sessions() as ses, ses.begin():
        assert await outbox.mark_sent_many(ses, [(o1, "x-o1")], at=D0 + 9.5 * H) == 0  # sent already: skipped
        await _sent(ses, "o5", D0 + DAY - timedelta(seconds=1))
        await _sent(ses, "o6", D0 + DAY)
    for _ in range(2):
        async with db.sessions() as ses, ses.begin():
            await contacts_repo.insert_contacts(ses, [_logged("b1", D0 - timedelta(seconds=1), "out", 2),
                                                      _logged("b2", D0 + 8 * H, "in", 1, desk=True)])
    async with db.sessions() as ses, ses.begin():
        ses.add_all([Contact(channel="telegram", external_id="m1", direction="out", author="agent", agent_id=2,
                             created_at=D0 + 12 * H),
                     Contact(channel="telegram", external_id="m2", direction="out", author="agent",
                             created_at=D0 + 12 * H)])


async def _rows(ses) -> set[tuple]:
    return {tuple(r) for r in (await ses.execute(select(agent_reply_days))).all() if r.replies}


def _replies(f) -> dict[str, int]:
    return {a.name: a.replies for a in f.agents}


async def test_replies_by_hand_through_the_rollup_and_the_log(db):
    await write_history(db)
    async with db.sessions() as ses:
        assert await _rows(ses) == ROWS
        for since, until, want in (
            (D0, D0 + DAY, {"Ann": 2, "Bob": 2, "Sue": 0}),  # whole days: the rollup alone
            (D0 - DAY, D0 + 2 * DAY, {"Ann": 3, "Bob": 3, "Sue": 0}),
            (D0 - H, D0 + DAY + H, {"Ann": 3, "Bob": 3, "Sue": 0}),  # part-days on both sides
            (D0 + 9.5 * H, D0 + DAY, {"Ann": 1, "Bob": 2, "Sue": 0}),  # o2 10:00, m1 12:00, o5 23:59:59
            (D0 + 9 * H, D0 + 9 * H + timedelta(seconds=1), {"Ann": 1, "Bob": 0, "Sue": 0}),  # one part-day
            (D0 + DAY, D0 + DAY, {"Ann": 0, "Bob": 0, "Sue": 0}),
        ):
            new = await figures(ses, since, until, at=D0 + 2 * DAY)
            old = await figures_from_tickets(ses, since, until, at=D0 + 2 * DAY)
            assert _replies(new) == _replies(old) == want, (since, until)
            assert new.as_dict() == old.as_dict(), (since, until)
        agents_only = await figures(ses, D0, D0 + DAY, durations=("agent",))
        assert _replies(agents_only) == {"Ann": 2, "Bob": 2, "Sue": 0}


async def test_the_rollup_equals_a_rebuild(db):
    await write_history(db)
    async with db.sessions() as ses, ses.begin():
        assert await rebuild_reply_rollup(ses) == 6  # o1, o2, o5, o6, b1, m1
    async with db.sessions() as ses:
        assert await _rows(ses) == ROWS
    async with db.sessions() as ses, ses.begin():  # and the writers keep counting on top of a rebuild
        await _sent(ses, "o7", D0 + 13 * H, agent_id=3)
    async with db.sessions() as ses:
        assert await _rows(ses) == ROWS | {(3, date(2026, 3, 2), 1)}


async def test_a_rollback_leaves_the_rollup_alone_and_a_reader_sees_its_own_replies(db):
    await write_history(db)
    with pytest.raises(RuntimeError):
        async with db.sessions() as ses, ses.begin():
            await _sent(ses, "o8", D0 + 14 * H)
            await contacts_repo.insert_contacts(ses, [_logged("b3", D0 + 15 * H, "out", 2)])
            assert _replies(await figures(ses, D0, D0 + DAY)) == {"Ann": 3, "Bob": 3, "Sue": 0}
            raise RuntimeError("the batch fails after both")
    async with db.sessions() as ses:
        assert await _rows(ses) == ROWS
        assert _replies(await figures(ses, D0, D0 + DAY)) == {"Ann": 2, "Bob": 2, "Sue": 0}


async def test_the_migration_goes_down_and_up_and_fills_the_rollup_from_the_log(db):
    await write_history(db)
    await migrate(db, "0016_inbox_keys", down=True)
    async with db.engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names(schema=db.schema)))
    assert "agent_reply_days" not in names and "contacts" in names
    async with db.sessions() as ses, ses.begin():  # a reply logged (in SQL alone) while the rollup is not there
        await ses.execute(insert(Contact.__table__).values(_logged("m3", D0 + 16 * H, "out", 1)))
    await migrate(db, "head")
    async with db.sessions() as ses:
        assert await _rows(ses) == ROWS - {(1, date(2026, 3, 2), 2)} | {(1, date(2026, 3, 2), 3)}
