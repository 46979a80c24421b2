"""The contacts-per-day rollup agrees with the contact log it counts, after imports of old mail and tier changes;
it counts customer contacts only, never desk traffic (also after migration 0006 recounts it)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import column, insert, select, table, text

from crm_store.engine import upgrade
from crm_store.models import Contact, Customer, Ticket
from crm_store.repositories import contact_days, reports
from crm_store.repositories.figures import figures
from crm_store.rollups import ContactDay, RollupMark
from tests.conftest import migrate

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)


AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
"""When the seeded rows were logged: well before the refresh's safety margin, so a refresh counts them once."""


def half_a_minute_ago() -> datetime:
    """When a test's new contact was logged: after the last refresh's mark (a minute before it ran)."""
    return datetime.now(UTC) - timedelta(seconds=30)


def past_its_margin() -> datetime:
    """A refresh that counts a contact logged half_a_minute_ago() (its mark is a minute earlier than this)."""
    return datetime.now(UTC) + timedelta(seconds=31)


def _contact(n: int, at: datetime, channel: str, customer_id: int | None, direction: str = "in",
             logged: datetime = AN_HOUR_AGO, desk: bool = False) -> Contact:
    return Contact(channel=channel, external_id=f"x{n}", direction=direction, customer_id=customer_id, text="hi",
                   attachments=[], created_at=at, logged_at=logged, desk=desk)


def _expected(rows: list[tuple[datetime, str, str]], since: datetime, until: datetime, by: str) -> list:
    keyed = Counter((at.date().isoformat(), ch if by == "channel" else tier) for at, ch, tier in rows
                    if since <= at < until)
    return sorted((d, k, n) for (d, k), n in keyed.items())


async def _seed(db) -> list[tuple[datetime, str, str]]:
    """Contacts over five days at odd hours, from a VIP, an ordinary customer and nobody known."""
    made: list[tuple[datetime, str, str]] = []
    async with db.sessions() as s, s.begin():
        s.add_all([Customer(id=1, name="Vera", tier="VIP", updated_at=AN_HOUR_AGO),
                   Customer(id=2, name="Olaf", tier="ordinary", updated_at=AN_HOUR_AGO)])
        await s.flush()
        n = 0
        for day in range(5):
            for hour in (0, 7, 13, 23):
                for cid, tier in ((1, "VIP"), (2, "ordinary"), (None, "unknown")):
                    at = DAY0 + timedelta(days=day, hours=hour, minutes=n % 60)
                    channel = ("telegram", "email", "webchat")[n % 3]
                    s.add(_contact(n, at, channel, cid, "in" if n % 2 else "out"))
                    made.append((at, channel, tier))
                    n += 1
    return made


async def test_rollup_matches_the_log_for_whole_and_partial_days(db):
    made = await _seed(db)
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s) == 5
    ranges = [(DAY0, DAY0 + timedelta(days=5)), (DAY0 + timedelta(hours=10), DAY0 + timedelta(days=3, hours=5)),
              (DAY0 + timedelta(days=1, hours=3), DAY0 + timedelta(days=1, hours=20))]
    async with db.sessions() as s:
        for since, until in ranges:
            for by in ("channel", "tier"):
                got = await reports.contacts_per_day(s, since, until, by=by)
                assert got == _expected(made, since, until, by), (since, until, by)
        scoped = await reports.contacts_per_day(s, *ranges[0], by="tier", scope_tiers=("VIP",))
        assert {k for _, k, _ in scoped} == {"VIP"} and sum(n for *_, n in scoped) == 20


async def test_old_mail_and_a_new_tier_recount_only_their_days(db):
    made = await _seed(db)
    async with db.sessions() as s, s.begin():
        await contact_days.refresh_contact_days(s)
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s) == 0  # nothing touched since
    old = DAY0 + timedelta(days=1, hours=9)
    async with db.sessions() as s, s.begin():
        s.add(_contact(999, old, "email", 2, logged=half_a_minute_ago()))
        made.append((old, "email", "ordinary"))
    async with db.sessions() as s, s.begin():  # once past the margin of the mail logged just now
        assert await contact_days.refresh_contact_days(s, at=past_its_margin()) == 1  # the mail's day only
    async with db.sessions() as s, s.begin():
        (await s.get(Customer, 2)).tier = "important"
    made = [(at, ch, "important" if tier == "ordinary" else tier) for at, ch, tier in made]
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s) == 5
    async with db.sessions() as s:
        for by in ("channel", "tier"):
            got = await reports.contacts_per_day(s, DAY0, DAY0 + timedelta(days=5), by=by)
            assert got == _expected(made, DAY0, DAY0 + timedelta(days=5), by)


async def test_response_time_percentiles_interpolate_like_percentile_cont(db):
    firsts = [60, 120, 180, 600, 3600, 7200, 90, 45]  # seconds to first response, VIP
    async with db.sessions() as s, s.begin():
        s.add(Customer(id=1, name="Vera", tier="VIP"))
        await s.flush()
        for i, secs in enumerate(firsts):
            opened = DAY0 + timedelta(hours=i)
            s.add(Ticket(customer_id=1, channel="email", tier_at_open="VIP", created_at=opened,
                         handoff_reason="needs a person", first_responded_at=opened + timedelta(seconds=secs)))
    async with db.sessions() as s:
        vip = (await figures(s, DAY0, DAY0 + timedelta(days=1))).by_tier["VIP"]
    ordered = sorted(firsts)

    def cont(p: float) -> float:
        pos = (len(ordered) - 1) * p
        lo = int(pos)
        return ordered[lo] + (ordered[min(lo + 1, len(ordered) - 1)] - ordered[lo]) * (pos - lo)

    first = vip.first_response
    assert first.n == 8
    assert abs(first.p50 - cont(0.5)) < 0.01 and abs(first.p90 - cont(0.9)) < 0.01
    assert vip.resolution.n == 0 and vip.resolution.p50 is None


async def test_a_contact_at_midnight_written_without_fractions_counts_on_its_own_day(db):
    """Rows loaded by other tools may store '2026-03-02 00:00:00' (no fraction); SQLite compares them as text."""
    made = await _seed(db)
    async with db.sessions() as s, s.begin():
        await contact_days.refresh_contact_days(s)
    async with db.sessions() as s, s.begin():
        s.add(_contact(998, DAY0 + timedelta(days=2), "email", 1, logged=half_a_minute_ago()))
        made.append((DAY0 + timedelta(days=2), "email", "VIP"))
    if db.kind == "sqlite":
        async with db.sessions() as s, s.begin():
            await s.execute(text("UPDATE contacts SET created_at = '2026-03-03 00:00:00' WHERE external_id = 'x998'"))
    async with db.sessions() as s:  # before the refresh: counted from the log as logged since the mark
        got = await reports.contacts_per_day(s, DAY0, DAY0 + timedelta(days=5), by="tier")
    assert got == _expected(made, DAY0, DAY0 + timedelta(days=5), "tier")
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s, at=past_its_margin()) == 1
    async with db.sessions() as s:
        got = await reports.contacts_per_day(s, DAY0, DAY0 + timedelta(days=5), by="tier")
    assert got == _expected(made, DAY0, DAY0 + timedelta(days=5), "tier")


async def _add_desk_traffic(db, logged: datetime = AN_HOUR_AGO) -> None:
    """An agent's command and the answer to it on each of the five days (and one on a customer's ticket): logged,
    never counted."""
    async with db.sessions() as s, s.begin():
        for day in range(5):
            at = DAY0 + timedelta(days=day, hours=9)
            s.add(_contact(500 + 2 * day, at, "console", None, "in", logged, desk=True))
            s.add(_contact(501 + 2 * day, at + timedelta(seconds=1), "console", None, "out", logged, desk=True))
        s.add(_contact(520, DAY0 + timedelta(hours=10), "telegram", 1, "out", logged, desk=True))


async def test_desk_traffic_is_never_counted_in_the_rollup_or_live(db):
    made = await _seed(db)
    await _add_desk_traffic(db)
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s) == 5
    async with db.sessions() as s:
        stored = sum(await s.scalars(select(ContactDay.contacts)))
        # whole days from the rollup, and a range of partial days counted live from the log
        whole = await reports.contacts_per_day(s, DAY0, DAY0 + timedelta(days=5), by="channel")
        partial = await reports.contacts_per_day(s, DAY0 + timedelta(hours=8), DAY0 + timedelta(hours=11),
                                                 by="tier")
    assert stored == 60  # 5 days x 4 hours x 3 customers: the 11 desk rows are not there
    assert whole == _expected(made, DAY0, DAY0 + timedelta(days=5), "channel")
    assert "console" not in {k for _, k, _ in whole}
    assert partial == []  # 08:00-11:00 of day 0 holds only desk traffic (09:00 and 10:00)
    async with db.sessions() as s, s.begin():  # desk traffic logged later touches no day
        s.add(_contact(530, DAY0 + timedelta(days=1, hours=9), "console", None, logged=datetime.now(UTC),
                       desk=True))
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s) == 0


async def test_migration_0006_classifies_old_rows_and_the_recount_leaves_desk_traffic_out(db):
    async with db.sessions() as s, s.begin():  # written while the schema is current, kept by the downgrade
        s.add(Customer(id=1, name="Vera", tier="VIP", updated_at=AN_HOUR_AGO))
    await migrate(db, "0005_contact_text_search", down=True)
    names = ("channel", "external_id", "direction", "author", "address", "customer_id", "text", "attachments",
             "truncated", "created_at", "logged_at")
    cols = Contact.__table__.c
    old = table("contacts", *(column(n, cols[n].type) for n in names), schema=Contact.__table__.schema)
    at = DAY0 + timedelta(hours=9)

    def row(ext: str, direction: str, author: str, channel: str, customer_id: int | None) -> dict:
        return {"channel": channel, "external_id": ext, "direction": direction, "author": author, "address": "a",
                "customer_id": customer_id, "text": "t", "attachments": [], "truncated": False, "created_at": at,
                "logged_at": AN_HOUR_AGO}

    async with db.sessions() as s, s.begin():
        await s.execute(insert(old), [
            row("c1", "in", "customer", "telegram", 1), row("c2", "out", "bot", "telegram", 1),
            row("c3", "out", "agent", "telegram", 1),  # customer contacts: 3
            row("d1", "in", "agent", "console", None), row("d2", "out", "system", "console", None),  # desk
            row("w1", "out", "system", "webhook", None),  # a webhook delivery: not a contact at all
        ])
        # the rollup as the old code built it, desk traffic and webhooks included
        s.add(ContactDay(day=DAY0.date(), channel="telegram", tier="VIP", direction="in", contacts=1))
        s.add(ContactDay(day=DAY0.date(), channel="console", tier="unknown", direction="in", contacts=1))
        s.add(RollupMark(name="contact_days", mark=datetime.now(UTC)))  # the old code's mark
    await db.engine.dispose()
    await upgrade(db.url, schema=db.schema)
    async with db.sessions() as s:
        logged = {c.external_id: c.desk for c in await s.scalars(select(Contact))}
        assert await s.scalar(select(RollupMark.mark).where(RollupMark.name == "contact_days")) is None
    assert logged == {"c1": False, "c2": False, "c3": False, "d1": True, "d2": True}
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s) == 1
    async with db.sessions() as s:
        stored = sorted((r.channel, r.direction, r.contacts) for r in await s.scalars(select(ContactDay)))
    assert stored == [("telegram", "in", 1), ("telegram", "out", 2)]


def seeded_tier(made: list, day: str, tier: str = "unknown") -> int:
    return sum(1 for at, _ch, t in made if at.date().isoformat() == day and t == tier)


async def _stored(s) -> Counter:
    return Counter({(str(d), c, t, w): n for d, c, t, w, n in (await s.execute(
        select(ContactDay.day, ContactDay.channel, ContactDay.tier, ContactDay.direction, ContactDay.contacts))).all()})


async def test_new_contacts_are_added_once_by_the_refresh_whose_window_holds_them(db):
    made = await _seed(db)
    now = datetime.now(UTC)
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s, at=now) == 5
    day = DAY0 + timedelta(days=3, hours=12)
    async with db.sessions() as s, s.begin():  # two logged now, one 90 s from now (a clock ahead)
        s.add(_contact(700, day, "email", 1, logged=now))
        s.add(_contact(701, day, "email", 1, logged=now))
        s.add(_contact(702, day + timedelta(hours=1), "webchat", None, logged=now + timedelta(seconds=90)))
    async with db.sessions() as s, s.begin():  # within the margin of all three: nothing yet
        assert await contact_days.refresh_contact_days(s, at=now + timedelta(seconds=20)) == 0
    async with db.sessions() as s, s.begin():  # the window [now - 1 min, now + 50 s) holds the first two
        assert await contact_days.refresh_contact_days(s, at=now + timedelta(seconds=110)) == 1
        held = await _stored(s)
    seeded = Counter((at.date().isoformat(), ch, tier) for at, ch, tier in made)
    assert sum(n for (d, c, t, _w), n in held.items() if (d, c, t) == ("2026-03-04", "email", "VIP")) == (
        seeded[("2026-03-04", "email", "VIP")] + 2
    )
    assert sum(n for (d, c, t, _w), n in held.items() if (d, c, t) == ("2026-03-04", "webchat", "unknown")) == (
        seeded[("2026-03-04", "webchat", "unknown")]
    ), "the late one is not counted yet"
    async with db.sessions() as s:  # but the overview sees it: logged since the mark, counted from the log
        got = await reports.contacts_per_day(s, DAY0, DAY0 + timedelta(days=5), by="tier")
    assert dict(((d, k), n) for d, k, n in got)[("2026-03-04", "unknown")] == seeded_tier(made, "2026-03-04") + 1
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s, at=now + timedelta(minutes=5)) == 1
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s, at=now + timedelta(minutes=9)) == 0
    made += [(day, "email", "VIP"), (day, "email", "VIP"), (day + timedelta(hours=1), "webchat", "unknown")]
    async with db.sessions() as s:
        stored = await _stored(s)
        for by in ("channel", "tier"):
            got = await reports.contacts_per_day(s, DAY0, DAY0 + timedelta(days=5), by=by)
            assert got == _expected(made, DAY0, DAY0 + timedelta(days=5), by)
    assert sum(stored.values()) == 63


async def test_a_database_with_only_the_old_mark_is_counted_afresh_once(db):
    made = await _seed(db)
    async with db.sessions() as s, s.begin():  # the old whole-day counting left a wrong count and its mark
        s.add(ContactDay(day=DAY0.date(), channel="email", tier="VIP", direction="in", contacts=99))
        s.add(RollupMark(name="contact_days", mark=datetime.now(UTC)))
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s) == 5
        assert await s.scalar(select(RollupMark.mark).where(RollupMark.name == "contact_days")) is None
    async with db.sessions() as s:
        got = await reports.contacts_per_day(s, DAY0, DAY0 + timedelta(days=5), by="tier")
    assert got == _expected(made, DAY0, DAY0 + timedelta(days=5), "tier")
