"""The contacts-per-day rollup agrees with the contact log it counts, after imports of old mail and tier changes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from crm_store.models import Contact, Customer, Ticket
from crm_store.repositories import contact_days, reports

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)


AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
"""When the seeded rows were logged: well before the refresh's safety margin, so a refresh counts them once."""


def _contact(n: int, at: datetime, channel: str, customer_id: int | None, direction: str = "in",
             logged: datetime = AN_HOUR_AGO) -> Contact:
    return Contact(channel=channel, external_id=f"x{n}", direction=direction, customer_id=customer_id, text="hi",
                   attachments=[], created_at=at, logged_at=logged)


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
        s.add(_contact(999, old, "email", 2, logged=datetime.now(UTC)))
        made.append((old, "email", "ordinary"))
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s) == 1  # the imported mail's day, not today
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
                         first_responded_at=opened + timedelta(seconds=secs)))
    async with db.sessions() as s:
        times = await reports.response_times(s, DAY0, DAY0 + timedelta(days=1))
    ordered = sorted(firsts)

    def cont(p: float) -> float:
        pos = (len(ordered) - 1) * p
        lo = int(pos)
        return ordered[lo] + (ordered[min(lo + 1, len(ordered) - 1)] - ordered[lo]) * (pos - lo)

    first = times["VIP"]["first"]
    assert first["n"] == 8
    assert abs(first["p50"] - cont(0.5)) < 0.01 and abs(first["p90"] - cont(0.9)) < 0.01
    assert times["VIP"]["resolution"] is None


async def test_a_contact_at_midnight_written_without_fractions_counts_on_its_own_day(db):
    """Rows loaded by other tools may store '2026-03-02 00:00:00' (no fraction); SQLite compares them as text."""
    made = await _seed(db)
    async with db.sessions() as s, s.begin():
        await contact_days.refresh_contact_days(s)
    async with db.sessions() as s, s.begin():
        s.add(_contact(998, DAY0 + timedelta(days=2), "email", 1, logged=datetime.now(UTC)))
        made.append((DAY0 + timedelta(days=2), "email", "VIP"))
    if db.kind == "sqlite":
        async with db.sessions() as s, s.begin():
            await s.execute(text("UPDATE contacts SET created_at = '2026-03-03 00:00:00' WHERE external_id = 'x998'"))
    async with db.sessions() as s, s.begin():
        assert await contact_days.refresh_contact_days(s) == 1
    async with db.sessions() as s:
        got = await reports.contacts_per_day(s, DAY0, DAY0 + timedelta(days=5), by="tier")
    assert got == _expected(made, DAY0, DAY0 + timedelta(days=5), "tier")
