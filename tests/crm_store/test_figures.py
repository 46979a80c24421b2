"""The supervisors' figures on a history built by hand, whose right answers are worked out below by hand.

The history (day D0, range [D0, D0+1d), figures as of D0+2d):

 ticket tier      channel   assignee  handed  status  first reply  resolved     due fr / res    csat  breach
 T1     VIP       telegram  Ann       yes     closed  +60 s        +3600 s      +300 / +8h      5     no
 T2     VIP       email     Ann       yes     closed  +120 s       +7200 s      +300 / +8h      4     no
 T3     VIP       email     Bob       yes     closed  +600 s       +1800 s      +300 / +8h      2     late reply
 T4     VIP       telegram  —         no      solved  —            (bot +30 s)  —               —     never
 T5     ordinary  webchat   Bob       yes     open    +300 s       —            +600 / +12h     —     open, past res due
 T6     ordinary  webchat   —         yes     open    —            —            +900 / +8h      —     clock recorded it
 T7     ordinary  webchat   Ann       yes     closed  +900 s       +5400 s (*)  +1800 / +8h     3     no
 T8     ordinary  webchat   —         no      closed  —            (bot)        —               5     never
 T9     ordinary  telegram  —         no      open    —            —            —               —     no
 T10    ordinary  email     Bob       yes     closed  +60 s        +36000 s     +600 / +8h      1     resolved late (**)
 T11    VIP       email     Ann       imported history: in no figure (it would move every VIP number)
 T12    VIP       email     Ann       opened the day before, closed at D0+2h: handled by Ann in the range only
 T13    VIP       email     Bob       opened after the range: in no figure

 (*) T7 was answered by the bot at +40 s (solved_at), then escalated: its resolution is the close, not the bot.
 (**) the SLA clock was not running, so nothing recorded it: the figure counts it from the facts.
"""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from crm_store.models import Agent, Contact, Customer, Ticket
from crm_store.repositories.figures import AGENT_REPLY, COUNTED, Figures, figures, resolved_between
from crm_store.repositories.figures_from_tickets import figures_from_tickets
from crm_store.repositories.ticket_rollup import BUCKET_ERROR, rebuild_ticket_rollup
from tests.conftest import migrate

D0 = datetime(2026, 3, 2, tzinfo=UTC)
UNTIL = D0 + timedelta(days=1)
AT = D0 + timedelta(days=2)
H = timedelta(hours=1)


def within_buckets(rollup: Figures, exact: Figures) -> None:
    """The rollup's percentiles are the exact ones within a bucket's width; every count is the same."""
    for got, want in [(rollup.total, exact.total), *((rollup.by_tier[k], v) for k, v in exact.by_tier.items()),
                      *((rollup.by_channel[k], v) for k, v in exact.by_channel.items()),
                      *((rollup.by_agent[k], v) for k, v in exact.by_agent.items())]:
        for g, w in ((got.first_response, want.first_response), (got.resolution, want.resolution)):
            assert g.n == w.n
            for a, b in ((g.p50, w.p50), (g.p90, w.p90)):
                assert (a is None and b is None) or a == pytest.approx(b, rel=BUCKET_ERROR, abs=1e-3)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _ticket(n: int, tier: str, channel: str, assignee: int | None, opened: datetime, *, handed: bool = True,
            status: str = "closed", fr: float | None = None, done: float | None = None, fr_due: float | None = None,
            res_due: float | None = None, csat: int | None = None, **extra) -> Ticket:
    closed = opened + s(done) if done is not None and status == "closed" else None
    return Ticket(
        id=n, customer_id=1 if tier == "VIP" else 2, channel=channel, tier_at_open=tier, assignee_id=assignee,
        status=status, handoff_reason="needs a person" if handed else None, created_at=opened,
        first_responded_at=opened + s(fr) if fr is not None else None,
        solved_at=extra.pop("solved_at", closed), closed_at=closed,
        first_response_due=opened + s(fr_due) if fr_due is not None else None,
        resolution_due=opened + s(res_due) if res_due is not None else None, csat=csat, **extra,
    )


async def seed(db) -> dict[str, int]:
    """The history above, by direct inserts."""
    async with db.sessions() as ses, ses.begin():
        ses.add_all([Agent(id=1, name="Ann", role="agent"), Agent(id=2, name="Bob", role="agent"),
                     Agent(id=3, name="Sue", role="supervisor"),
                     Customer(id=1, name="Vera", tier="VIP"), Customer(id=2, name="Olaf", tier="ordinary")])
        await ses.flush()
        at = lambda hour: D0 + hour * H  # noqa: E731
        ses.add_all([
            _ticket(1, "VIP", "telegram", 1, at(9), fr=60, done=3600, fr_due=300, res_due=8 * 3600, csat=5),
            _ticket(2, "VIP", "email", 1, at(10), fr=120, done=7200, fr_due=300, res_due=8 * 3600, csat=4),
            _ticket(3, "VIP", "email", 2, at(11), fr=600, done=1800, fr_due=300, res_due=8 * 3600, csat=2),
            _ticket(4, "VIP", "telegram", None, at(11.5), handed=False, status="solved", solved_at=at(11.5) + s(30)),
            _ticket(5, "ordinary", "webchat", 2, at(12), status="open", fr=300, fr_due=600, res_due=12 * 3600),
            _ticket(6, "ordinary", "webchat", None, at(13), status="open", fr_due=900, res_due=8 * 3600,
                    sla_breached_at=at(13) + s(930)),
            _ticket(7, "ordinary", "webchat", 1, at(14), fr=900, done=5400, fr_due=1800, res_due=8 * 3600, csat=3,
                    solved_at=at(14) + s(40)),
            _ticket(8, "ordinary", "webchat", None, at(14.5), handed=False, done=100, csat=5,
                    solved_at=at(14.5) + s(50)),
            _ticket(9, "ordinary", "telegram", None, at(15.5), handed=False, status="open"),
            _ticket(10, "ordinary", "email", 2, at(15), fr=60, done=36000, fr_due=600, res_due=8 * 3600, csat=1),
            _ticket(11, "VIP", "email", 1, at(16), fr=5, done=10, csat=1, source="imported",
                    sla_breached_at=at(16) + s(1)),
            _ticket(12, "VIP", "email", 1, at(-1), fr=1000, done=3 * 3600, fr_due=300, res_due=8 * 3600),
            _ticket(13, "VIP", "email", 2, at(25), fr=1, done=2, csat=1),
        ])
        await ses.flush()

        def out(n: int, agent: int | None, ticket: int | None, when: datetime, *, author: str = "agent",
                desk: bool = False, direction: str = "out") -> Contact:
            return Contact(channel="console" if desk else "telegram", external_id=f"c{n}", direction=direction,
                           author=author, agent_id=agent, ticket_id=ticket, desk=desk, text="…", created_at=when)

        ses.add_all([
            out(1, 1, 1, at(9) + s(60)), out(2, 1, 2, at(10) + s(120)), out(3, 1, 7, at(14) + s(900)),  # Ann: 3
            out(4, 2, 3, at(11) + s(600)), out(5, 2, 5, at(12) + s(300)),  # Bob: 2
            out(6, 2, 12, at(-1) + s(60)),  # Bob, before the range
            out(7, 1, 1, at(9), author="system", desk=True),  # the notice sent to Ann: desk traffic
            out(8, 1, None, at(9.1), author="agent", desk=True, direction="in"),  # Ann's command
            out(9, 1, None, at(9.1), author="system", desk=True),  # the desk's answer to Ann
            out(10, 2, 3, at(11), author="agent", desk=True),  # a desk copy of Bob's reply (forum mirror)
            out(11, None, 4, at(11.5) + s(30), author="bot"),  # the bot's FAQ answer
        ])
    return {"ann": 1, "bob": 2, "sue": 3}


async def test_first_response_and_resolution_percentiles_per_tier_channel_and_agent(db):
    """Exact from the tickets; the rollup's within a bucket's width of them."""
    await seed(db)
    async with db.sessions() as ses:
        f = await figures_from_tickets(ses, D0, UNTIL, at=AT)
        within_buckets(await figures(ses, D0, UNTIL, at=AT), f)
    vip, ordinary = f.by_tier["VIP"], f.by_tier["ordinary"]
    # VIP first replies [60, 120, 600] (T11's imported 5 s is not one): p50 = 120;
    # p90 at rank (3-1)*0.9 = 1.8: 120 + (600-120)*0.8 = 504
    assert (vip.first_response.n, vip.first_response.p50, vip.first_response.p90) == (3, 120.0, 504.0)
    # ordinary [60, 300, 900] (T6 has no reply yet): p50 = 300; p90 = 300 + 600*0.8 = 780
    assert (ordinary.first_response.n, ordinary.first_response.p50, ordinary.first_response.p90) == (3, 300.0, 780.0)
    # all six [60, 60, 120, 300, 600, 900]: p50 at 2.5 = 120 + 180*0.5 = 210; p90 at 4.5 = 600 + 300*0.5 = 750
    assert (f.total.first_response.n, f.total.first_response.p50, f.total.first_response.p90) == (6, 210.0, 750.0)
    # VIP resolutions [1800, 3600, 7200]: p50 = 3600, p90 = 3600 + 3600*0.8 = 6480
    assert (vip.resolution.n, vip.resolution.p50, vip.resolution.p90) == (3, 3600.0, 6480.0)
    # ordinary [5400 (T7's close, not the bot's 40 s), 36000]: p50 = 20700; p90 = 5400 + 30600*0.9 = 32940
    assert (ordinary.resolution.n, ordinary.resolution.p50, ordinary.resolution.p90) == (2, 20700.0, 32940.0)
    # all five [1800, 3600, 5400, 7200, 36000]: p50 = 5400; p90 at 3.6 = 7200 + 28800*0.6 = 24480
    assert (f.total.resolution.n, f.total.resolution.p50, f.total.resolution.p90) == (5, 5400.0, 24480.0)
    # by channel: email first replies [60, 120, 600] → 120 / 504; resolutions [1800, 7200, 36000] → p50 7200,
    # p90 = 7200 + 28800*0.8 = 30240. webchat [300, 900] → p50 600, p90 = 300 + 600*0.9 = 840. telegram [60].
    email, webchat, telegram = (f.by_channel[c] for c in ("email", "webchat", "telegram"))
    assert (email.first_response.p50, email.first_response.p90) == (120.0, 504.0)
    assert (email.resolution.p50, email.resolution.p90) == (7200.0, 30240.0)
    assert (webchat.first_response.p50, webchat.first_response.p90, webchat.resolution.p50) == (600.0, 840.0, 5400.0)
    assert (telegram.first_response.n, telegram.first_response.p50, telegram.resolution.p50) == (1, 60.0, 3600.0)
    # by agent: Ann [60, 120, 900] → 120, 120 + 780*0.8 = 744; resolutions [3600, 5400, 7200] → 5400, 6840
    ann, bob = f.by_agent[1], f.by_agent[2]
    assert (ann.first_response.p50, ann.first_response.p90) == (120.0, 744.0)
    assert (ann.resolution.p50, ann.resolution.p90) == (5400.0, 6840.0)
    # Bob [60, 300, 600] → 300, 300 + 300*0.8 = 540; resolutions [1800, 36000] → 18900, 1800 + 34200*0.9 = 32580
    assert (bob.first_response.p50, bob.first_response.p90) == (300.0, 540.0)
    assert (bob.resolution.p50, bob.resolution.p90) == (18900.0, 32580.0)
    # unassigned: T6 (handed off, no reply yet) and bot conversations: no durations at all
    assert f.by_agent[None].first_response.n == 0 and f.by_agent[None].first_response.p50 is None


async def test_conversations_bot_resolved_and_breaches(db):
    await seed(db)
    async with db.sessions() as ses:
        f = await figures(ses, D0, UNTIL, at=AT)
    # T1..T10: T11 is imported, T12 opened before the range, T13 after it
    assert (f.total.conversations, f.total.handed_off) == (10, 7)
    # bot-resolved: T4 (solved) and T8 (closed); T9 is still open, so not resolved by anyone yet
    assert f.total.bot_resolved == 2 and f.total.bot_resolved_share == pytest.approx(2 / 10)
    assert (f.by_tier["VIP"].bot_resolved, f.by_tier["ordinary"].bot_resolved) == (1, 1)
    assert f.by_tier["VIP"].bot_resolved_share == pytest.approx(1 / 4)
    assert (f.by_channel["telegram"].bot_resolved, f.by_channel["webchat"].bot_resolved) == (1, 1)
    # breaches: T3 (late first reply, the clock never saw it), T5 (open past its resolution due at D0+2d),
    # T6 (recorded by the clock and still unanswered: once), T10 (resolved 2 h late, not recorded): 4. Imported T11's
    # recorded breach is not one; T1, T2, T7 met both due times; bot conversations never breach.
    assert f.total.breached == 4
    assert (f.by_tier["VIP"].breached, f.by_tier["ordinary"].breached) == (1, 3)
    assert (f.by_agent[1].breached, f.by_agent[2].breached, f.by_agent[None].breached) == (0, 3, 1)
    assert (f.by_channel["email"].breached, f.by_channel["webchat"].breached,
            f.by_channel["telegram"].breached) == (2, 2, 0)
    # the same history a day earlier (D0+1d minus a minute): T5's resolution is not due yet (D0+12h+12h = D0+1d)
    async with db.sessions() as ses:
        early = await figures(ses, D0, UNTIL, at=UNTIL - s(60))
    assert early.total.breached == 3


async def test_a_breach_is_a_missed_due_time_whenever_the_clock_looked(db):
    """Tickets the SLA clock never recorded, each opened at D0 with due times +10 min / +8 h."""
    async with db.sessions() as ses, ses.begin():
        ses.add(Customer(id=1, name="Vera", tier="VIP"))
        await ses.flush()
        due = {"fr_due": 600, "res_due": 8 * 3600}
        ses.add_all([
            _ticket(1, "VIP", "email", None, D0, done=300, **due),  # closed unanswered within 10 min: met
            _ticket(2, "VIP", "email", None, D0, done=900, **due),  # closed unanswered after 15 min: missed
            _ticket(3, "VIP", "email", None, D0, fr=60, done=3600, **due),  # both in time: met
            _ticket(4, "VIP", "email", None, D0, status="pending", fr=60, **due),  # waiting, not resolved yet
            _ticket(5, "VIP", "email", None, D0, handed=False, done=60, sla_breached_at=D0),  # the bot's: never
        ])
    async with db.sessions() as ses:
        # at D0+9h T4 is an hour past its resolution due: T2 and T4
        assert (await figures(ses, D0, UNTIL, at=D0 + 9 * H)).total.breached == 2
        # at D0+7h T4 still has an hour: T2 only
        assert (await figures(ses, D0, UNTIL, at=D0 + 7 * H)).total.breached == 1


async def test_csat_per_tier_agent_and_channel(db):
    await seed(db)
    async with db.sessions() as ses:
        f = await figures(ses, D0, UNTIL, at=AT)
    # VIP [5, 4, 2] = 11/3; ordinary [3, 5, 1] = 9/3 = 3.0; all six = 20/6; imported T11's 1 is not counted
    assert (f.by_tier["VIP"].csat_n, f.by_tier["VIP"].csat) == (3, pytest.approx(11 / 3))
    assert (f.by_tier["ordinary"].csat_n, f.by_tier["ordinary"].csat) == (3, 3.0)
    assert (f.total.csat_n, f.total.csat) == (6, pytest.approx(20 / 6))
    # Ann [5, 4, 3] = 4.0; Bob [2, 1] = 1.5; unassigned [5] (T8, the bot's)
    assert (f.by_agent[1].csat_n, f.by_agent[1].csat) == (3, 4.0)
    assert (f.by_agent[2].csat_n, f.by_agent[2].csat) == (2, 1.5)
    assert (f.by_agent[None].csat_n, f.by_agent[None].csat) == (1, 5.0)
    # telegram [5]; email [4, 2, 1] = 7/3; webchat [3, 5] = 4.0
    assert (f.by_channel["telegram"].csat_n, f.by_channel["telegram"].csat) == (1, 5.0)
    assert (f.by_channel["email"].csat_n, f.by_channel["email"].csat) == (3, pytest.approx(7 / 3))
    assert (f.by_channel["webchat"].csat_n, f.by_channel["webchat"].csat) == (2, 4.0)


async def test_agent_replies_handled_and_load(db):
    await seed(db)
    async with db.sessions() as ses:
        f = await figures(ses, D0, UNTIL, at=AT)
    agents = {a.name: a for a in f.agents}
    assert list(agents) == ["Ann", "Bob", "Sue"]
    # replies: Ann's three to customers; not the notice sent to her, her command, the desk's answer, nor the
    # bot's answer. Bob's two in the range; not his reply of the day before, nor the desk copy of his reply.
    assert (agents["Ann"].replies, agents["Bob"].replies, agents["Sue"].replies) == (3, 2, 0)
    # handled = resolved in the range: Ann T1, T2, T7 and T12 (opened the day before); imported T11 is not.
    # Bob: T3; T10 was resolved at D0+15h+10h, after the range; T5 is open.
    assert (agents["Ann"].handled, agents["Bob"].handled) == (4, 1)
    # load now: Bob's open T5
    assert (agents["Ann"].load, agents["Bob"].load) == (0, 1)
    assert agents["Ann"].tickets.conversations == 3 and agents["Bob"].tickets.conversations == 3


async def test_imported_history_is_in_no_figure(db):
    await seed(db)
    async with db.sessions() as ses, ses.begin():
        await ses.execute(text("UPDATE tickets SET source = 'imported' WHERE id <> 11"))
        await rebuild_ticket_rollup(ses)  # an UPDATE in SQL alone: the rollups are recounted
    async with db.sessions() as ses:
        f = await figures(ses, D0, UNTIL, at=AT)
    assert (f.total.conversations, f.total.breached, f.total.csat_n, f.total.first_response.n) == (0, 0, 0, 0)
    assert f.by_tier == {} and all(a.handled == 0 for a in f.agents)
    assert {a.name: a.replies for a in f.agents} == {"Ann": 3, "Bob": 2, "Sue": 0}  # replies are contacts


async def test_the_api_shape_carries_the_same_numbers(db):
    await seed(db)
    async with db.sessions() as ses:
        f = await figures(ses, D0, UNTIL, at=AT)
    d = f.as_dict()
    assert [t["tier"] for t in d["by_tier"]] == ["VIP", "ordinary"]
    vip = d["by_tier"][0]["first_response"]
    assert vip == {"n": 3, "p50": pytest.approx(120, rel=BUCKET_ERROR), "p90": pytest.approx(504, rel=BUCKET_ERROR)}
    assert d["total"]["breached"] == 4 and d["total"]["bot_resolved"] == 2
    assert [(a["name"], a["replies"], a["handled"]) for a in d["agents"]] == [("Ann", 3, 4), ("Bob", 2, 1),
                                                                             ("Sue", 0, 0)]
    assert d["unassigned"]["conversations"] == 4


async def test_percentiles_match_percentile_cont_on_random_durations(db):
    """On every database the exact percentiles equal linear interpolation (statistics' inclusive method); on
    PostgreSQL, also percentile_cont itself run over the same rows. The rollup's are within a bucket's width."""
    rnd = random.Random(13)
    sizes = {"VIP": 1, "important": 2, "ordinary": 37, "potential": 10}
    expected: dict[str, list[float]] = {}
    async with db.sessions() as ses, ses.begin():
        ses.add(Customer(id=1, name="Any"))
        await ses.flush()
        n = 0
        for tier, size in sizes.items():
            for _ in range(size):
                n += 1
                secs = rnd.randrange(1, 20_000_000) / 1000  # whole milliseconds, up to ~5.5 h
                opened = D0 + s(n * 7.25)
                ses.add(Ticket(id=n, customer_id=1, channel="email", tier_at_open=tier, status="open",
                               handoff_reason="needs a person", created_at=opened,
                               first_responded_at=opened + s(secs)))
                expected.setdefault(tier, []).append(secs)
    async with db.sessions() as ses:
        f = await figures_from_tickets(ses, D0, UNTIL, at=AT)
        within_buckets(await figures(ses, D0, UNTIL, at=AT), f)
        cont = None
        if db.kind == "postgresql":
            cont = {t: (p50, p90) for t, p50, p90 in (await ses.execute(text(
                "SELECT tier_at_open, percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM "
                "first_responded_at - created_at)), percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch "
                "FROM first_responded_at - created_at)) FROM tickets GROUP BY tier_at_open"))).all()}
    for tier, values in expected.items():
        got = f.by_tier[tier].first_response
        want = (values[0], values[0]) if len(values) == 1 else (
            statistics.quantiles(values, n=2, method="inclusive")[0],
            statistics.quantiles(values, n=10, method="inclusive")[8],
        )
        assert got.n == len(values)
        assert (got.p50, got.p90) == (pytest.approx(want[0], abs=2e-3), pytest.approx(want[1], abs=2e-3)), tier
        if cont is not None:
            assert (got.p50, got.p90) == (pytest.approx(float(cont[tier][0]), abs=1e-3),
                                          pytest.approx(float(cont[tier][1]), abs=1e-3)), tier


async def _plan(db, stmt, *, force: str = "", without: str = "") -> str:
    """The database's plan for `stmt` as the figures run it, with bound parameters. PostgreSQL is told to avoid a
    scan of these tiny tables (and, in a transaction rolled back, to do without index `without`), so the plan says
    whether an index applies at all; SQLite is made to use `force`, which it refuses when the index does not
    apply."""
    async with db.engine.connect() as conn:
        compiled = stmt.compile(dialect=conn.dialect)
        params = tuple(compiled.params[k] for k in compiled.positiontup)
        if db.kind == "postgresql":
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            if without:
                await conn.exec_driver_sql(f"DROP INDEX {without}")
            return "\n".join(r[0] for r in (await conn.exec_driver_sql("EXPLAIN " + str(compiled), params)).all())
        params = tuple(p.replace(tzinfo=None).isoformat(" ") if isinstance(p, datetime) else p for p in params)
        sql = str(compiled).replace("FROM contacts", f"FROM contacts INDEXED BY {force}") if force else str(compiled)
        rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)).all()
        return "\n".join(str(r[-1]) for r in rows)


async def test_the_figures_walk_their_indexes_and_the_migration_downgrades(db):
    """The replies' partial index applies to the query as written (SQLite refuses INDEXED BY an index that does
    not), handled walks the resolved-time indexes, and 0007 goes down and up again."""
    replies = (select(Contact.agent_id, func.count())
               .where(*AGENT_REPLY, Contact.agent_id.is_not(None), Contact.created_at >= D0, Contact.created_at < UNTIL)
               .group_by(Contact.agent_id))
    handled = (select(Ticket.assignee_id, func.count())
               .where(Ticket.assignee_id.is_not(None), COUNTED, resolved_between(D0, UNTIL))
               .group_by(Ticket.assignee_id))
    # (on empty tables PostgreSQL would rather read the agent filter's index in agent order)
    assert "ix_contacts_agent_replies_at" in await _plan(
        db, replies, force="ix_contacts_agent_replies_at", without="ix_contacts_agent_created")
    # on empty tables any index led by status costs the same: only the resolved-time ones are left to choose
    others = "ix_tickets_status_id, ix_tickets_status_snoozed, ix_tickets_status_resolution_due, " \
             "ix_tickets_status_queue_due, ix_tickets_status_assignee"
    assert "ix_tickets_status_closed_by" in await _plan(db, handled, without=others)
    await migrate(db, "0006_ticket_core", down=True)
    assert "ix_contacts_agent_replies_at" not in await _plan(db, replies)
    await migrate(db, "head", down=False)
    await seed(db)
    async with db.sessions() as ses:
        assert (await figures(ses, D0, UNTIL, at=AT)).total.breached == 4
