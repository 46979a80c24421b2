"""The overview page, the agents page, the desk's /report (a supervisor on the console, through the dispatcher)
and GET /api/v1/reports/figures show the same numbers for the same data, on both databases.

Expected cell and line texts are built from the API's JSON with the dashboard's own formatting, so a surface
that computes or rounds a figure on its own shows up as a difference. A few hand-computed values pin the numbers
themselves (the full arithmetic is in tests/crm_store/test_figures.py).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from bot.web import create_web_app
from bot.web.auth import hash_password
from bot.web.formatting import duration, number, percent
from bot.web.tokens import create_token
from crm_store.models import Agent, Contact, Customer, Ticket
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import web as web_repo
from tests.bot.conftest import harness_factory  # noqa: F401 (the dispatcher harness's fixture)
from tests.web.conftest import PASSWORD, WebEnv

DAY = date(2026, 2, 10)
D0 = datetime(2026, 2, 10, tzinfo=UTC)
CELL = re.compile(r'data-(?:figure|kpi)="([^"]+)"[^>]*>(.*?)</(?:td|b)>', re.S)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


class Surfaces:
    """One app, seen as a supervisor sees it: a logged-in browser, the desk on the console, an API token."""

    def __init__(self, h, client: httpx.AsyncClient, token: str) -> None:
        self.h, self.client, self.auth = h, client, {"Authorization": f"Bearer {token}"}

    async def api(self, first: date, last: date) -> dict:
        r = await self.client.get("/api/v1/reports/figures", headers=self.auth, params={
            "since": f"{first.isoformat()}T00:00:00Z", "until": f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z"})
        assert r.status_code == 200, r.text
        return r.json()

    async def page(self, path: str, first: date, last: date) -> dict[str, str]:
        r = await self.client.get(path, params={"from": first.isoformat(), "to": last.isoformat()})
        assert r.status_code == 200, r.text
        return {k: " ".join(html.unescape(re.sub(r"<[^>]+>", "", v)).split()) for k, v in CELL.findall(r.text)}

    async def report(self, *args: str) -> str:
        await self.h.ch["console"].receive("sue", " ".join(("/report", *args)))
        await self.h.settle()
        return self.h.ch["console"].sent_to("sue")[-1]


@pytest.fixture
async def surfaces(harness_factory, tmp_path):  # noqa: F811
    h = await harness_factory(state_dir=str(tmp_path / "state"))
    sue = await h.agent("Sue", role="supervisor", email="sue@desk.example")
    await h.agent("Ann", tiers=["VIP"], email="ann@desk.example")
    await h.agent("Bob", tiers=["ordinary"], email="bob@desk.example")
    async with h.app.writer_sessions() as ses, ses.begin():
        await web_repo.set_password_hash(ses, sue.id, hash_password(PASSWORD))
        token = await create_token(ses, "figures")
    web = create_web_app(h.app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://testserver") as client:
        env = WebEnv(h.app, web, client, None, h.ch["console"])  # type: ignore[arg-type]
        assert (await env.login("Sue")).status_code == 303
        yield Surfaces(h, client, token)


async def seed(h) -> dict[str, int]:
    """A day of history by hand: handed-off tickets with and without breaches, a bot-resolved conversation,
    imported history, replies to customers and desk traffic."""
    async with h.app.writer_sessions() as ses, ses.begin():
        ids = {a.name: a.id for a in await ses.scalars(select(Agent))}
        vip, low = Customer(name="Vera", tier="VIP"), Customer(name="Olaf", tier="ordinary")
        ses.add_all([vip, low])
        await ses.flush()
        at = lambda hour: D0 + timedelta(hours=hour)  # noqa: E731

        def ticket(cust, tier, channel, agent, opened, *, fr=None, done=None, handed=True, status="closed", **kw):
            return Ticket(customer_id=cust.id, tier_at_open=tier, channel=channel, assignee_id=agent,
                          handoff_reason="needs a person" if handed else None, status=status, created_at=opened,
                          first_responded_at=opened + s(fr) if fr is not None else None,
                          closed_at=opened + s(done) if done is not None else None,
                          solved_at=opened + s(done) if done is not None else None, **kw)

        tickets = [
            ticket(vip, "VIP", "telegram", ids["Ann"], at(9), fr=60, done=3600, csat=5,
                   first_response_due=at(9) + s(120)),
            ticket(vip, "VIP", "email", ids["Ann"], at(10), fr=150, done=9000, csat=4,
                   first_response_due=at(10) + s(120)),  # replied late: a breach
            ticket(vip, "VIP", "telegram", None, at(11), handed=False, done=20),  # bot-resolved
            ticket(low, "ordinary", "webchat", ids["Bob"], at(12), fr=400, done=5000, csat=2),
            ticket(low, "ordinary", "webchat", None, at(13), status="open",
                   first_response_due=at(13) + s(600)),  # nobody replied, long past due: a breach
            ticket(low, "ordinary", "email", ids["Bob"], at(14), fr=1, done=2, csat=1, source="imported"),
        ]
        ses.add_all(tickets)
        await ses.flush()

        def contact(n, agent, tk, when, author="agent", desk=False, direction="out"):
            return Contact(channel="console" if desk else tk.channel, external_id=f"h{n}", direction=direction,
                           author=author, agent_id=agent, ticket_id=tk.id, desk=desk, text="…", created_at=when)

        ses.add_all([
            contact(1, ids["Ann"], tickets[0], at(9) + s(60)), contact(2, ids["Ann"], tickets[1], at(10) + s(150)),
            contact(3, ids["Bob"], tickets[3], at(12) + s(400)),
            contact(4, ids["Ann"], tickets[0], at(9), author="system", desk=True),  # the notice to Ann
            contact(5, ids["Bob"], tickets[3], at(12), author="system", desk=True),  # the notice to Bob
            contact(6, ids["Ann"], tickets[0], at(9) + s(55), desk=True, direction="in"),  # Ann's /reply command
        ])
    return ids


def slice_cells(key: str, f: dict) -> dict[str, str]:
    """What the overview shows in a row of figures, from the API's numbers."""
    return {
        f"{key}:conversations": number(f["conversations"]),
        f"{key}:bot_resolved": f"{number(f['bot_resolved'])} {percent(f['bot_resolved_share'])}",
        f"{key}:handed_off": number(f["handed_off"]),
        f"{key}:first_p50": duration(f["first_response"]["p50"]),
        f"{key}:first_p90": duration(f["first_response"]["p90"]),
        f"{key}:resolution_p50": duration(f["resolution"]["p50"]),
        f"{key}:resolution_p90": duration(f["resolution"]["p90"]),
        f"{key}:breached": number(f["breached"]),
        f"{key}:csat": _csat(f),
    }


def _csat(f: dict) -> str:
    return f"{f['csat']:.2f} ({number(f['csat_n'])})" if f["csat"] is not None else "—"


def slice_line(label: str, f: dict) -> str:
    """What /report shows for a group, from the API's numbers."""
    fr, res = f["first_response"], f["resolution"]
    return (f"{label}: {f['conversations']} · {f['bot_resolved']} ({percent(f['bot_resolved_share'])}) · "
            f"{f['handed_off']} · {duration(fr['p50'])}/{duration(fr['p90'])} · {duration(res['p50'])}/"
            f"{duration(res['p90'])} · {f['breached']} · {_csat(f)}")


def agent_line(a: dict) -> str:
    t = a["tickets"]
    return (f"{a['name']}: {a['handled']} · {a['replies']} · {duration(t['first_response']['p50'])} · "
            f"{duration(t['resolution']['p50'])} · {t['breached']} · {_csat(t)} · {a['load']}/{a['capacity']} · "
            f"{a['status']}")


def assert_agree(api: dict, overview: dict[str, str], agents_page: dict[str, str], report: str) -> None:
    want = slice_cells("total", api["total"])
    for row in api["by_tier"]:
        want.update(slice_cells(f"tier:{row['tier']}", row))
    for row in api["by_channel"]:
        want.update(slice_cells(f"channel:{row['channel']}", row))
    assert {k: overview.get(k) for k in want} == want
    assert overview["breached"] == number(api["total"]["breached"])
    assert overview["first_p50"] == duration(api["total"]["first_response"]["p50"])
    for a in api["agents"]:
        t = a["tickets"]
        assert agents_page[f"agent:{a['id']}:handled"] == number(a["handled"])
        assert agents_page[f"agent:{a['id']}:replies"] == number(a["replies"])
        assert agents_page[f"agent:{a['id']}:first_p50"] == duration(t["first_response"]["p50"])
        assert agents_page[f"agent:{a['id']}:breached"] == number(t["breached"])
        assert agents_page[f"agent:{a['id']}:csat"] == _csat(t)
    lines = report.splitlines()
    expected = [slice_line("All", api["total"]), *(slice_line(r["tier"], r) for r in api["by_tier"]),
                *(slice_line(r["channel"], r) for r in api["by_channel"]), *(agent_line(a) for a in api["agents"])]
    missing = [line for line in expected if line not in lines]
    assert not missing, f"/report lacks {missing} in:\n{report}"


async def test_overview_report_and_api_show_the_same_figures(surfaces):
    await seed(surfaces.h)
    api = await surfaces.api(DAY, DAY)
    overview = await surfaces.page("/", DAY, DAY)
    agents_page = await surfaces.page("/agents", DAY, DAY)
    report = await surfaces.report(DAY.isoformat())
    assert_agree(api, overview, agents_page, report)
    # the numbers themselves: five conversations (the imported ticket is not one), one bot-resolved (20%);
    # first replies [60, 150, 400] → p50 150 s; VIP [60, 150] → p50 105 s = "1m 45s"; breaches: the late reply
    # and the unanswered ticket; CSAT [5, 4, 2] = 3.67; Ann replied twice (the notice and her command are desk)
    assert overview["total:conversations"] == "5" and overview["total:bot_resolved"] == "1 20.0%"
    assert overview["total:first_p50"] == "2m 30s" and overview["tier:VIP:first_p50"] == "1m 45s"
    assert overview["total:breached"] == "2" and overview["total:csat"] == "3.67 (3)"
    assert [(a["name"], a["replies"], a["handled"]) for a in api["agents"]] == [("Ann", 2, 2), ("Bob", 1, 1),
                                                                                ("Sue", 0, 0)]


async def test_a_live_conversation_reads_the_same_everywhere(surfaces):
    """Through the real pipeline: a VIP writes, the ticket goes to Ann (who is notified), she replies from the
    desk; her reply counts, the notice and the desk's answers do not, and the bot's acknowledgement is no
    first response."""
    h = surfaces.h
    async with h.app.writer_sessions() as ses, ses.begin():
        await customers_repo.create_customer(ses, name="Vera", tier="VIP", identities={"telegram": "77"})
    r = await h.ch["telegram"].receive("77", "I need help with an invoice")
    await h.settle()
    async with h.app.sessions() as ses:
        assert (await ses.get(Ticket, r.ticket_id)).first_responded_at is None  # acknowledged, not answered
    today = datetime.now(UTC).date()
    before = await surfaces.api(today, today)
    assert before["total"]["first_response"]["n"] == 0 and before["total"]["handed_off"] == 1
    await h.ch["console"].receive("ann", f"/reply T-{r.ticket_id} Here is your invoice.")
    await h.settle()
    api = await surfaces.api(today, today)
    ann = next(a for a in api["agents"] if a["name"] == "Ann")
    assert ann["replies"] == 1 and ann["tickets"]["conversations"] == 1
    assert api["total"]["first_response"]["n"] == 1 and api["total"]["bot_resolved"] == 0
    assert_agree(api, await surfaces.page("/", today, today), await surfaces.page("/agents", today, today),
                 await surfaces.report())


async def test_bad_ranges_are_refused_clearly(surfaces):
    auth = surfaces.auth
    c = surfaces.client
    backwards = await c.get("/api/v1/reports/figures", headers=auth,
                            params={"since": "2026-02-11T00:00:00Z", "until": "2026-02-10T00:00:00Z"})
    assert backwards.status_code == 422
    too_long = await c.get("/api/v1/reports/figures", headers=auth,
                           params={"since": "2020-01-01", "until": "2026-01-01"})
    assert too_long.status_code == 422
    assert (await c.get("/api/v1/reports/figures", headers=auth, params={"since": "soon"})).status_code == 422
    assert (await c.get("/api/v1/reports/figures")).status_code == 401
    async with surfaces.h.app.writer_sessions() as ses, ses.begin():
        ann = await ses.scalar(select(Agent).where(Agent.name == "Ann"))
        agents_token = await create_token(ses, "ann's", agent_id=ann.id)
    refused = await c.get("/api/v1/reports/figures", headers={"Authorization": f"Bearer {agents_token}"})
    assert refused.status_code == 403  # an agent's token: the figures are the supervisors', as on the dashboard
    assert "Usage: /report" in await surfaces.report("decade")
    assert "at most 366 days" in await surfaces.report("2020-01-01", "2026-01-01")
