"""The ticket rollups against the tickets: a history written through the ticket core's one writer (guarded and
unguarded changes), whose figures are worked out below by hand, reads the same through the rollups
(`figures`) and through the tickets (`figures_from_tickets`); the rollups equal a recount from the tickets.

Day D0, range [D0, D0+1d), figures as of AT = D0+2d; due times are first reply / resolution after opening:

 ticket tier      channel   history                                                     counts as
 T1     VIP       telegram  Ann takes, replies +60 s, closes +3600 s, rated 5             fr 60, res 3600
 T2     VIP       email     Ann takes, transfers to Bob, Bob replies +600 s (due +300),   Bob's; breach (late
                            closes +7200 s, rated 2                                       reply); fr 600, res 7200
 T3     ordinary  webchat   Bob takes, replies +120 s, closes +1800 s, reopened +4000 s   open again: no resolution,
                            (due: resolution +2 h)                                        breach at AT (unmarked)
 T4     ordinary  telegram  never handed off: the bot solves it +30 s, CSAT 4             bot-resolved
 T5     VIP       email     imported history (handed off, Ann's, closed)                   in no figure
 T6     ordinary  email     handed off, nobody replies; the SLA clock marks it +930 s     breach (marked)
 T7     VIP       telegram  Ann takes, replies +100 s, sets it pending (resolution +8 h)  breach at AT (pending)
 T8     VIP       email     opened the day before, Ann closes it at D0+2h                 handled by Ann only
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, inspect, select

from bot.routing.policy import AgentState
from bot.tickets import Actor, Decision, apply, lifecycle, ticket_work, work
from bot.tickets.access import BOT, SYSTEM
from crm_store.grouped_flush import flush_grouped
from crm_store.models import Agent, Customer, Ticket
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories.figures import backlog_by_queue, figures
from crm_store.repositories.figures_from_tickets import figures_from_tickets
from crm_store.repositories.ticket_rollup import BUCKET_ERROR, TABLES, rebuild_ticket_rollup
from crm_store.rollups import ticket_backlog
from tests.bot.conftest import settings_for
from tests.conftest import migrate

D0 = datetime(2026, 3, 2, tzinfo=UTC)
UNTIL = D0 + timedelta(days=1)
AT = D0 + timedelta(days=2)
H = timedelta(hours=1)
ANN = Actor("agent", 1, "agent", "Ann")
BOB = Actor("agent", 2, "agent", "Bob")
SUE = Actor("agent", 3, "supervisor", "Sue")


def _flat(value, path: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{path}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, f"{path}[{i}]").items()}
    return {path: value}


def differences(rollup: dict, exact: dict) -> dict[str, tuple]:
    """Every figure that differs: counts must be equal, percentiles within a bucket's width (BUCKET_ERROR)."""
    fa, fb = _flat(rollup), _flat(exact)

    def same(key: str) -> bool:
        a, b = fa.get(key), fb.get(key)
        if key.endswith((".p50", ".p90")) and a is not None and b is not None:
            return a == pytest.approx(b, rel=BUCKET_ERROR)
        return a == b

    return {k: (fa.get(k), fb.get(k)) for k in fa.keys() | fb.keys() if not same(k)}


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


async def _open(
    ctx,
    n: int,
    tier: str,
    channel: str,
    opened: datetime,
    *,
    handed: bool = True,
    fr: float = 300,
    res: float = 8 * 3600,
    source: str = "live",
) -> Ticket:
    return await tickets_repo.open_ticket(
        ctx.session,
        id=n,
        customer_id=1 if tier == "VIP" else 2,
        channel=channel,
        tier_at_open=tier,
        queue="vip" if tier == "VIP" else "general",
        status="open",
        source=source,
        created_at=opened,
        handoff_reason="needs a person" if handed else None,
        first_response_due=opened + s(fr) if handed else None,
        resolution_due=opened + s(res) if handed else None,
    )


async def _do(ctx, ticket: Ticket, decision: Decision, actor: Actor, at: datetime) -> None:
    ctx.now = at
    await apply(ctx, ticket, decision, actor, cause=f"t{ticket.id}:{at.timestamp()}")


def _replied(at: datetime) -> Decision:
    """A person's first reply, as the ticket core records it (the reply's message itself is the outbox's)."""
    return Decision(changes={"first_responded_at": at, "updated_at": at})


async def write_history(db) -> None:
    settings = settings_for(db)
    async with db.sessions() as ses, ses.begin():
        ses.add_all(
            [
                Agent(id=1, name="Ann", role="agent"),
                Agent(id=2, name="Bob", role="agent"),
                Agent(id=3, name="Sue", role="supervisor"),
                Customer(id=1, name="Vera", tier="VIP"),
                Customer(id=2, name="Olaf", tier="ordinary"),
            ]
        )
    async with db.sessions() as ses, ses.begin(), ticket_work(ses, settings) as ctx:
        at = lambda hour, secs=0: D0 + hour * H + s(secs)  # noqa: E731
        t1 = await _open(ctx, 1, "VIP", "telegram", at(9))
        await _do(ctx, t1, work.take(t1, ANN, now=at(9, 10)), ANN, at(9, 10))
        await _do(ctx, t1, _replied(at(9, 60)), ANN, at(9, 60))
        await _do(ctx, t1, lifecycle.close(t1, ANN, now=at(9, 3600), language=None), ANN, at(9, 3600))
        await _do(ctx, t1, lifecycle.rate(t1, 5, now=at(10)), SYSTEM, at(10))

        t2 = await _open(ctx, 2, "VIP", "email", at(10))
        await _do(ctx, t2, work.take(t2, ANN, now=at(10, 10)), ANN, at(10, 10))
        bob = AgentState(2, tiers=("VIP", "ordinary"))
        await _do(ctx, t2, work.transfer(t2, SUE, now=at(10, 20), to_agent=bob, to_agent_name="Bob"), SUE, at(10, 20))
        await _do(ctx, t2, _replied(at(10, 600)), BOB, at(10, 600))
        await _do(ctx, t2, lifecycle.close(t2, BOB, now=at(10, 7200), language=None), BOB, at(10, 7200))
        await _do(ctx, t2, lifecycle.rate(t2, 2, now=at(13)), SYSTEM, at(13))

        t3 = await _open(ctx, 3, "ordinary", "webchat", at(12), fr=600, res=2 * 3600)
        await _do(ctx, t3, work.take(t3, BOB, now=at(12, 10)), BOB, at(12, 10))
        await _do(ctx, t3, _replied(at(12, 120)), BOB, at(12, 120))
        await _do(ctx, t3, lifecycle.close(t3, BOB, now=at(12, 1800), language=None), BOB, at(12, 1800))
        await _do(ctx, t3, lifecycle.reopen(t3, BOB, now=at(12, 4000)), BOB, at(12, 4000))

        t4 = await _open(ctx, 4, "ordinary", "telegram", at(13), handed=False)
        solved = Decision(changes={"status": "solved", "solved_at": at(13, 30)}, guard={"status": "open"})
        await _do(ctx, t4, solved, BOT, at(13, 30))
        await _do(ctx, t4, Decision(changes={"csat": 4}, guard={"csat": None}), SYSTEM, at(14))

        t5 = await _open(ctx, 5, "VIP", "email", at(14), source="imported")
        await _do(ctx, t5, Decision(changes={"assignee_id": 1, "first_responded_at": at(14, 5)}), SYSTEM, at(14))
        await _do(ctx, t5, lifecycle.close(t5, SUE, now=at(14, 10), language=None), SUE, at(14, 10))

        t6 = await _open(ctx, 6, "ordinary", "email", at(15), fr=900)
        marked = Decision(
            changes={"sla_breached_at": at(15, 930), "escalation_level": 1}, guard={"escalation_level": 0}
        )
        await _do(ctx, t6, marked, SYSTEM, at(15, 930))

        t7 = await _open(ctx, 7, "VIP", "telegram", at(16), fr=1800)
        await _do(ctx, t7, work.take(t7, ANN, now=at(16, 10)), ANN, at(16, 10))
        await _do(ctx, t7, _replied(at(16, 100)), ANN, at(16, 100))
        await _do(ctx, t7, lifecycle.pending(t7, ANN, now=at(16, 200)), ANN, at(16, 200))

        t8 = await _open(ctx, 8, "VIP", "email", at(-4))
        await _do(ctx, t8, work.take(t8, ANN, now=at(-4, 10)), ANN, at(-4, 10))
        await _do(ctx, t8, _replied(at(-4, 60)), ANN, at(-4, 60))
        await _do(ctx, t8, lifecycle.close(t8, ANN, now=at(2), language=None), ANN, at(2))


async def _rollup_rows(ses) -> dict[str, set[tuple]]:
    """Every rollup row with a count in it (a row whose counts went back to zero is as good as none)."""
    found = {}
    for kind, (table, columns) in TABLES.items():
        rows = (await ses.execute(select(table))).all()
        found[kind] = {tuple(r) for r in rows if any(getattr(r, c) for c in columns)}
    return found


async def test_figures_by_hand_through_the_rollups_and_the_tickets(db):
    await write_history(db)
    async with db.sessions() as ses:
        new = await figures(ses, D0, UNTIL, at=AT)
        old = await figures_from_tickets(ses, D0, UNTIL, at=AT)
    assert new.as_dict() == old.as_dict()  # its durations all fall in buckets of their own: exact
    t = new.total
    # T1, T2, T3, T4, T6, T7 (T5 imported, T8 opened the day before); all but T4 handed off; T4 bot-resolved
    assert (t.conversations, t.handed_off, t.bot_resolved) == (6, 5, 1)
    # breaches: T2's late reply, T3 past its resolution due since it was reopened, T6 marked, T7 pending past due
    assert t.breached == 4
    # CSAT [5, 2, 4] (imported T5 is in no figure)
    assert (t.csat_n, t.csat_sum) == (3, 11)
    # first replies [60, 100, 120, 600]: p50 at 1.5 = 110; p90 at 2.7 = 120 + 480 * 0.7 = 456
    assert (t.first_response.n, t.first_response.p50, t.first_response.p90) == (4, 110.0, 456.0)
    # resolutions [3600, 7200] (T3 is open again): p50 5400; p90 = 3600 + 3600 * 0.9 = 6840
    assert (t.resolution.n, t.resolution.p50, t.resolution.p90) == (2, 5400.0, 6840.0)
    # by tier: VIP T1, T2, T7 (3, breaches T2 and T7); ordinary T3, T4, T6 (3, breaches T3 and T6)
    assert {k: (v.conversations, v.breached) for k, v in new.by_tier.items()} == {"VIP": (3, 2), "ordinary": (3, 2)}
    assert new.by_tier["VIP"].first_response.p50 == 100.0  # [60, 100, 600]
    assert {k: v.conversations for k, v in new.by_channel.items()} == {"telegram": 3, "email": 2, "webchat": 1}
    # by assignee now: T2 was transferred, so it is Bob's with its late reply and rating
    assert {k: (v.conversations, v.breached, v.csat_n) for k, v in new.by_agent.items()} == {
        1: (2, 1, 1),
        2: (2, 2, 1),
        None: (2, 1, 1),
    }
    agents = {a.name: (a.load, a.handled) for a in new.agents}
    # load: Ann's pending T7, Bob's reopened T3; handled: Ann T1 and T8 (closed in the range), Bob T2
    assert agents == {"Ann": (1, 2), "Bob": (1, 1), "Sue": (0, 0)}


async def test_the_same_at_other_moments_and_over_part_days(db):
    await write_history(db)
    async with db.sessions() as ses:
        for since, until, at in (
            (D0, UNTIL, D0 + 13 * H),
            (D0, UNTIL, D0 + 17 * H),
            (D0 + 10.5 * H, UNTIL + 6 * H, AT),
            (D0 - 6 * H, D0 + 12.5 * H, AT),
            (D0 + 9 * H, D0 + 9.5 * H, AT),
            (D0 - 2 * H, UNTIL + 2 * H, AT),
        ):
            new = await figures(ses, since, until, at=at)
            old = await figures_from_tickets(ses, since, until, at=at)
            assert differences(new.as_dict(), old.as_dict()) == {}, (since, until, at)
    # from D0-6h T8's first reply (60 s) shares T1's bucket: the two are placed around their exact mean
    async with db.sessions() as ses:
        both = (await figures(ses, D0 - 6 * H, UNTIL, at=AT)).by_agent[1].first_response
        assert both.n == 3 and both.p50 == pytest.approx(60, rel=BUCKET_ERROR) and both.p50 != 60
    # as of D0+13h (on today's facts): T2's late reply and T6's mark; T3 is due at 14:00, T7 at 24:00
    async with db.sessions() as ses:
        assert (await figures(ses, D0, UNTIL, at=D0 + 13 * H)).total.breached == 2


async def test_the_rollups_equal_a_recount_and_the_backlog_is_kept(db):
    await write_history(db)
    async with db.sessions() as ses:
        kept = await _rollup_rows(ses)
        backlog = await backlog_by_queue(ses)
    async with db.sessions() as ses, ses.begin():
        assert await rebuild_ticket_rollup(ses) == 8
    async with db.sessions() as ses:
        assert await _rollup_rows(ses) == kept
        # T3 open in general (Bob's), T6 open in general (nobody's), T7 pending in vip (Ann's)
        assert backlog == [("general", "open", 2), ("vip", "pending", 1)]
        rows = (
            await ses.execute(
                select(ticket_backlog.c.queue, ticket_backlog.c.agent_id, ticket_backlog.c.n).where(
                    ticket_backlog.c.n != 0
                )
            )
        ).all()
        assert sorted(rows) == [("general", 0, 1), ("general", 2, 1), ("vip", 1, 1)]


async def test_a_refused_change_and_a_rollback_leave_the_rollups_alone(db):
    await write_history(db)
    async with db.sessions() as ses:
        before = await _rollup_rows(ses)
    settings = settings_for(db)
    with pytest.raises(RuntimeError):
        async with db.sessions() as ses, ses.begin(), ticket_work(ses, settings) as ctx:
            t6 = await ses.get(Ticket, 6)
            await _do(ctx, t6, work.take(t6, ANN, now=AT), ANN, AT)
            await _open(ctx, 9, "VIP", "email", AT)
            raise RuntimeError("the batch fails after both")
    async with db.sessions() as ses:
        assert await _rollup_rows(ses) == before


async def test_the_migration_goes_down_and_up_and_fills_the_rollups_from_the_tickets(db):
    await write_history(db)
    async with db.sessions() as ses:
        kept = await _rollup_rows(ses)
    await migrate(db, "0014_canned", down=True)
    async with db.engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names(schema=db.schema)))
    assert not names & {"ticket_days", "ticket_duration_days", "ticket_backlog"}
    await migrate(db, "head")
    async with db.sessions() as ses:
        assert await _rollup_rows(ses) == kept
        exact = await figures_from_tickets(ses, D0, UNTIL, at=AT)
        assert (await figures(ses, D0, UNTIL, at=AT)).as_dict() == exact.as_dict()


async def test_tickets_opened_and_changed_in_one_batch_are_counted_without_reading_them_back(db):
    """A batch opens tickets and changes them in the same transaction (routing assigns, the bot solves, a person
    replies and closes, the SLA clock marks): the columns they were opened without are known to hold NULL, so no
    change reads its ticket back, and the rollups still equal a recount.

     ticket tier      channel   in the batch                                              counts as
     A      VIP       telegram  handed off at open; Ann takes +10 s, replies +60 s,       fr 60, res 600
                                closes +600 s (due +300 s / +8 h)                          handled by Ann
     B      ordinary  email     the bot solves it +30 s                                   bot-resolved
     C      ordinary  webchat   opened by the bot, handed off +5 s (due +900 s), marked   breach (marked)
                                by the SLA clock +1000 s (a guarded UPDATE)
    """
    async with db.sessions() as ses, ses.begin():
        ses.add_all(
            [
                Agent(id=1, name="Ann", role="agent"),
                Customer(id=1, name="Vera", tier="VIP"),
                Customer(id=2, name="Olaf", tier="ordinary"),
                Customer(id=3, name="Ines", tier="ordinary"),
            ]
        )
    reads: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().startswith("SELECT") and "WHERE tickets.id = " in statement:  # one ticket read back
            reads.append(statement)

    at = lambda hour, secs=0: D0 + hour * H + s(secs)  # noqa: E731
    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.sessions() as ses, ses.begin(), ticket_work(ses, settings_for(db)) as ctx:
            opened = [
                {
                    "customer_id": 1,
                    "channel": "telegram",
                    "tier_at_open": "VIP",
                    "queue": "vip",
                    "created_at": at(9),
                    "handoff_reason": "needs a person",
                    "first_response_due": at(9, 300),
                    "resolution_due": at(17),
                },
                {"customer_id": 2, "channel": "email", "tier_at_open": "ordinary", "created_at": at(10)},
                {"customer_id": 3, "channel": "webchat", "tier_at_open": "ordinary", "created_at": at(11)},
            ]
            a, b, c = await tickets_repo.open_tickets(ses, opened)
            await _do(ctx, a, work.take(a, ANN, now=at(9, 10)), ANN, at(9, 10))
            await _do(ctx, b, Decision(changes={"status": "solved", "solved_at": at(10, 30)}), BOT, at(10, 30))
            handed = {"handoff_reason": "asked for a person", "first_response_due": at(11, 905)}
            await _do(ctx, c, Decision(changes=handed), BOT, at(11, 5))
            await flush_grouped(ses)
            await _do(ctx, a, _replied(at(9, 60)), ANN, at(9, 60))
            await _do(ctx, a, lifecycle.close(a, ANN, now=at(9, 600), language=None), ANN, at(9, 600))
            await flush_grouped(ses)
            marked = Decision(
                changes={"sla_breached_at": at(11, 1000), "escalation_level": 1}, guard={"escalation_level": 0}
            )
            await _do(ctx, c, marked, SYSTEM, at(11, 1000))
            reads_in_batch = list(reads)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert reads_in_batch == []
    async with db.sessions() as ses:
        kept = await _rollup_rows(ses)
        new = await figures(ses, D0, UNTIL, at=AT)
        exact = await figures_from_tickets(ses, D0, UNTIL, at=AT)
    t = new.total
    assert (t.conversations, t.handed_off, t.bot_resolved, t.breached) == (3, 2, 1, 1)
    assert (t.first_response.n, t.first_response.p50, t.resolution.n, t.resolution.p50) == (1, 60.0, 1, 600.0)
    assert {a.name: (a.load, a.handled) for a in new.agents} == {"Ann": (0, 1)}
    assert new.as_dict() == exact.as_dict()
    async with db.sessions() as ses, ses.begin():
        assert await rebuild_ticket_rollup(ses) == 3
    async with db.sessions() as ses:
        assert await _rollup_rows(ses) == kept
