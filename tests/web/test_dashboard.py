"""Dashboard: login, CSRF, rate limit, who may see what, escaping, contact-log search/filter/export."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from bot.web.auth import hash_password
from crm_store.models import Agent, Contact, Customer, OutboxItem, Ticket, TicketEvent
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import web as web_repo

PAGES = ["/", "/contacts", "/tickets", "/customers", "/agents", "/tiers", "/contacts/export.csv", "/customers/1",
         "/tickets/1"]


async def seed(env) -> dict[str, int]:
    """Two customers in different tiers, each with a ticket and a short conversation."""
    t0 = datetime.now(UTC) - timedelta(hours=3)
    async with env.app.sessions() as s, s.begin():
        vip = Customer(name="Vera VIP", tier="VIP")
        low = Customer(name="Otto <b>Ordinary</b>", tier="ordinary")
        s.add_all([vip, low])
        await s.flush()
        tv = Ticket(customer_id=vip.id, channel="webchat", tier_at_open="VIP", queue="vip", subject="Refund",
                    created_at=t0, first_responded_at=t0 + timedelta(minutes=4), status="open",
                    handoff_reason="needs a person")
        to = Ticket(customer_id=low.id, channel="email", tier_at_open="ordinary", subject="Shipping",
                    created_at=t0, first_responded_at=t0 + timedelta(hours=2), status="pending",
                    handoff_reason="needs a person")
        s.add_all([tv, to])
        await s.flush()
        s.add_all([
            Contact(channel="webchat", external_id="w1", direction="in", author="customer", address="v1",
                    customer_id=vip.id, ticket_id=tv.id, text="I want a refund for order 1234",
                    nlu={"intent": "refund"}, created_at=t0),
            Contact(channel="webchat", external_id="w2", direction="out", author="bot", address="v1",
                    customer_id=vip.id, ticket_id=tv.id, text="A person will reply soon",
                    created_at=t0 + timedelta(seconds=1)),
            Contact(channel="email", external_id="e1", direction="in", author="customer", address="otto@example.com",
                    customer_id=low.id, ticket_id=to.id, text='<img src=x onerror="alert(1)"> where is my parcel',
                    nlu={"intent": "shipping"}, created_at=t0 + timedelta(minutes=5)),
        ])
    return {"vip": vip.id, "low": low.id, "tv": tv.id, "to": to.id}


async def test_every_page_redirects_to_login_without_a_session(web_env):
    for page in PAGES:
        r = await web_env.client.get(page)
        assert r.status_code == 303, page
        assert r.headers["location"].startswith("/login?next=")


async def test_login_sets_a_protected_cookie_and_wrong_password_fails(web_env):
    await web_env.agent("Sue", role="supervisor")
    bad = await web_env.login("Sue", "wrong password!")
    assert bad.status_code == 401 and "Wrong email or password" in bad.text
    ok = await web_env.login("Sue")
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert "tierdesk_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    page = await web_env.client.get("/")
    assert page.status_code == 200 and "Overview" in page.text


async def test_login_without_csrf_token_is_refused(web_env):
    await web_env.agent("Sue", role="supervisor")
    r = await web_env.client.post("/login", data={"email": "sue@desk.example", "password": "correct horse battery"})
    assert r.status_code == 400
    assert "tierdesk_session" not in r.headers.get("set-cookie", "")


async def test_login_is_rate_limited_per_ip_and_email(web_env):
    await web_env.agent("Sue", role="supervisor")
    for _ in range(2):
        assert (await web_env.login("Sue", "nope nope nope")).status_code == 401
    blocked = await web_env.login("Sue")  # even the right password waits a moment (a growing delay, not a lock)
    assert blocked.status_code == 429
    await web_env.agent("Tom", role="supervisor")
    assert (await web_env.login("Tom")).status_code == 303  # another email is not affected


async def test_state_changing_forms_need_the_csrf_token(web_env):
    ids = await seed(web_env)
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    r = await web_env.client.post(f"/customers/{ids['vip']}/notes", data={"text": "hi", "csrf": "forged"})
    assert r.status_code == 403
    page = await web_env.client.get(f"/customers/{ids['vip']}")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = await web_env.client.post(f"/customers/{ids['vip']}/notes", data={"text": "Called <her> back", "csrf": token})
    assert r.status_code == 303
    page = await web_env.client.get(f"/customers/{ids['vip']}")
    assert "Called &lt;her&gt; back" in page.text


async def test_agent_sees_only_own_tiers_and_no_supervisor_pages(web_env):
    ids = await seed(web_env)
    await web_env.agent("Vic", tiers=["VIP"])
    await web_env.login("Vic")
    for page in ("/agents", "/tiers"):
        assert (await web_env.client.get(page)).status_code == 403
    assert (await web_env.client.get("/")).headers["location"] == "/tickets"
    assert (await web_env.client.get(f"/customers/{ids['vip']}")).status_code == 200
    assert (await web_env.client.get(f"/customers/{ids['low']}")).status_code == 404
    assert (await web_env.client.get(f"/tickets/{ids['to']}")).status_code == 404
    log = await web_env.client.get("/contacts")
    assert "refund for order 1234" in log.text and "where is my parcel" not in log.text
    export = await web_env.client.get("/contacts/export.jsonl")
    assert [json.loads(x)["customer_id"] for x in export.text.splitlines()] == [ids["vip"], ids["vip"]]
    tickets = await web_env.client.get("/tickets?status=all")
    assert f"T-{ids['tv']}" in tickets.text and f"T-{ids['to']}" not in tickets.text


async def test_customer_text_is_escaped_everywhere(web_env):
    ids = await seed(web_env)
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    for page in ("/contacts", f"/tickets/{ids['to']}", f"/customers/{ids['low']}", "/customers"):
        html = (await web_env.client.get(page)).text
        assert "<img src=x" not in html and "<b>Ordinary</b>" not in html, page
    assert "&lt;img src=x onerror=" in (await web_env.client.get("/contacts")).text


async def test_contact_log_search_filters_and_export_match(web_env):
    ids = await seed(web_env)
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    c = web_env.client
    assert "order 1234" in (await c.get("/contacts?q=refund")).text
    assert "order 1234" not in (await c.get("/contacts?q=parcel")).text
    assert "parcel" in (await c.get("/contacts?channel=email")).text
    assert "parcel" not in (await c.get("/contacts?tier=VIP")).text
    assert "order 1234" in (await c.get("/contacts?intent=refund")).text
    only_out = (await c.get("/contacts?direction=out")).text
    assert "A person will reply soon" in only_out and "order 1234" not in only_out
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert "No contacts match" in (await c.get(f"/contacts?from={tomorrow}")).text
    export = await c.get("/contacts/export.csv?tier=VIP")
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["text"] for r in rows] == ["I want a refund for order 1234", "A person will reply soon"]
    transcript = await c.get(f"/tickets/{ids['tv']}")
    assert transcript.text.index("order 1234") < transcript.text.index("A person will reply soon")


async def test_contact_log_pages_with_a_keyset_cursor(web_env):
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    async with web_env.app.sessions() as s, s.begin():
        s.add_all([Contact(channel="console", external_id=f"p{i}", direction="in", address="x", text=f"message {i:03d}",
                           created_at=t0 + timedelta(minutes=i)) for i in range(120)])
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    seen: list[str] = []
    url = "/contacts"
    while url:
        page = await web_env.client.get(url)
        seen += re.findall(r"message (\d{3})", page.text)
        m = re.search(r'href="(/contacts\?[^"]*before=[^"]+)" id="older"', page.text)
        url = m.group(1).replace("&amp;", "&") if m else None
    assert seen == [f"{i:03d}" for i in reversed(range(120))]


async def test_overview_tiers_and_agents_render_charts(web_env):
    await seed(web_env)
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    overview = (await web_env.client.get("/")).text
    assert overview.count('<rect class="bar"') >= 2
    assert "4m 00s" in overview  # VIP first reply p50
    tiers = await web_env.client.get("/tiers")
    assert tiers.status_code == 200 and "Vera" not in tiers.text
    agents = await web_env.client.get("/agents")
    assert agents.status_code == 200 and "Sue" in agents.text


async def test_logout_ends_the_session(web_env):
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    page = await web_env.client.get("/tickets")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert (await web_env.client.post("/logout", data={"csrf": token})).status_code == 303
    assert (await web_env.client.get("/tickets")).status_code == 303


@pytest.mark.parametrize("cookie", ["garbage", "eyJhIjoxfQ.forged.sig"])
async def test_forged_session_cookie_is_a_login_redirect(web_env, cookie):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web_env.web), base_url="http://testserver",
                                 cookies={"tierdesk_session": cookie}) as client:
        assert (await client.get("/tickets")).status_code == 303


async def csrf_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/tickets")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


async def test_bad_ticket_and_customer_numbers_are_404_pages(web_env):
    ids = await seed(web_env)
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    c = web_env.client
    token = await csrf_of(c)
    for bad in ("99999999999999999999999", "-1", "0", "abc", str(2**53 + 1), "T-99999999999999999999", "1e3"):
        for page in (f"/tickets/{bad}", f"/customers/{bad}"):
            r = await c.get(page)
            assert r.status_code == 404 and "Not found" in r.text, page
        for action in ("close", "reply", "notes", "reopen"):
            r = await c.post(f"/tickets/{bad}/{action}", data={"csrf": token, "text": "x"})
            assert r.status_code == 404, (bad, action)
        assert (await c.post(f"/customers/{bad}/notes", data={"csrf": token, "text": "x"})).status_code == 404
    assert (await c.get(f"/tickets/{2**53}")).status_code == 404
    assert (await c.get(f"/tickets/T-{ids['tv']}")).status_code == 200
    assert (await c.get(f"/customers/C-{ids['vip']}")).status_code == 303  # to the card's own address
    assert (await c.post(f"/tickets/{ids['tv']}/explode", data={"csrf": token})).status_code == 404


async def _handed_off(env, sender: str, text: str) -> int:
    """A customer writing on the console channel: a ticket routed like any other."""
    result = await env.console.receive(sender, text)
    await env.app.outbox.drain()
    return result.ticket_id


async def test_an_agent_works_a_ticket_from_its_page_through_the_ticket_core(web_env):
    al = await web_env.agent("Al")
    tid = await _handed_off(web_env, "cust-1", "Where is my parcel?")
    await web_env.login("Al")
    c = web_env.client
    page = await c.get(f"/tickets/{tid}")
    for form in ("reply", "notes", "close", "assign", "priority", "pending", "tags", "subject"):
        assert f'id="{form}-form"' in page.text, form
    assert 'id="take-form"' not in page.text  # it is already Al's
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    async def post(action: str, **data: str) -> httpx.Response:
        return await c.post(f"/tickets/{tid}/{action}", data={"csrf": token, **data})

    assert (await post("reply", text="It ships today.")).status_code == 303
    assert (await post("notes", text="asked the warehouse")).status_code == 303
    assert (await post("priority", priority="2")).status_code == 303
    assert (await post("tags", add="Refund, late")).status_code == 303
    assert (await post("tags", remove="late")).status_code == 303
    assert (await post("subject", subject="Parcel lost")).status_code == 303
    soon = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    assert (await post("pending", until=soon.strftime("%Y-%m-%dT%H:%M"))).status_code == 303
    assert (await post("close", resolution="found it")).status_code == 303
    again = await post("close", resolution="twice")
    assert again.status_code == 409 and f"T-{tid} is already closed." in again.text and 'id="refused"' in again.text
    assert (await post("reopen")).status_code == 303
    await web_env.app.outbox.drain()
    async with web_env.app.sessions() as s:
        ticket = await s.get(Ticket, tid)
        kinds = [e.kind for e in await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid)
                                                  .order_by(TicketEvent.id))]
        to_customer = [o.text for o in await s.scalars(select(OutboxItem).where(
            OutboxItem.ticket_id == tid, OutboxItem.audience == "customer").order_by(OutboxItem.id))]
    assert (ticket.status, ticket.priority, ticket.tags, ticket.subject) == ("open", 2, ["refund"], "Parcel lost")
    assert ticket.assignee_id == al and ticket.first_responded_at is not None and ticket.closed_at is None
    assert ticket.resolution == "found it" and ticket.snoozed_until is None
    assert kinds == ["opened", "routed", "replied", "note", "priority_set", "tagged", "tagged", "subject_set",
                     "snoozed", "closed", "reopened"]
    assert to_customer[1:] == ["It ships today.", to_customer[-1]] and f"T-{tid}" in to_customer[-1]
    assert web_env.console.sent_to("cust-1")[-1] == to_customer[-1]  # the rating question reached them
    assert "asked the warehouse" in (await c.get(f"/tickets/{tid}")).text


async def test_only_the_assignee_or_a_supervisor_acts_on_an_assigned_ticket(web_env):
    await web_env.agent("Al")
    await web_env.agent("Bo")
    await web_env.agent("Sue", role="supervisor")
    tid = await _handed_off(web_env, "cust-2", "My invoice is wrong")
    async with web_env.app.sessions() as s:
        al = (await s.get(Ticket, tid)).assignee_id
    bo_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=web_env.web), base_url="http://testserver")
    try:
        await web_env.login("Bo", client=bo_client)
        token = await csrf_of(bo_client)
        page = await bo_client.get(f"/tickets/{tid}")
        assert page.status_code == 200 and 'id="take-form"' in page.text
        reply = await bo_client.post(f"/tickets/{tid}/reply", data={"csrf": token, "text": "hello"})
        assert reply.status_code == 403 and "assigned to someone else; your reply was not sent" in reply.text
        assert (await bo_client.post(f"/tickets/{tid}/close", data={"csrf": token})).status_code == 403
        assert (await bo_client.post(f"/tickets/{tid}/take", data={"csrf": token})).status_code == 403  # Al is online
        assert (await bo_client.post(f"/tickets/{tid}/assign", data={"csrf": token, "agent_id": "abc"})).status_code \
            == 422
    finally:
        await bo_client.aclose()
    await web_env.login("Sue")
    token = await csrf_of(web_env.client)
    assert (await web_env.client.post(f"/tickets/{tid}/take", data={"csrf": token})).status_code == 303
    async with web_env.app.sessions() as s:
        ticket = await s.get(Ticket, tid)
        taken = (await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid,
                                                           TicketEvent.kind == "assigned"))).one()
        to_customer = (await s.scalars(select(OutboxItem).where(OutboxItem.ticket_id == tid,
                                                                OutboxItem.audience == "customer"))).all()
    assert ticket.status == "open" and ticket.assignee_id != al
    assert taken.data["reason"] == "taken over" and taken.data["from_agent_id"] == al
    assert len(to_customer) == 1  # only the acknowledgement: Bo's refused reply wrote nothing
    await web_env.app.outbox.drain()
    assert web_env.console.sent_to("al")[-1] == f"T-{tid} was taken over by Sue."


async def test_agents_see_tickets_by_the_tickets_own_tier_and_queue(web_env):
    ids = await seed(web_env)
    async with web_env.app.sessions() as s, s.begin():
        (await s.get(Customer, ids["vip"])).tier = "ordinary"  # Vera's tier fell since her ticket was routed
        s.add(Ticket(customer_id=ids["low"], channel="email", tier_at_open="ordinary", queue="billing",
                     subject="Invoice"))
    await web_env.agent("Vic", tiers=["VIP"])
    await web_env.login("Vic")
    c = web_env.client
    assert (await c.get(f"/tickets/{ids['tv']}")).status_code == 200  # routed as VIP: still Vic's to see
    assert (await c.get(f"/customers/{ids['vip']}")).status_code == 404  # her card follows her current tier
    async with web_env.app.writer_sessions() as s, s.begin():
        await agents_repo.add_agent(s, name="Bill", addresses={"console": "bill"}, email="bill@desk.example",
                                    queues=["billing"])
        await web_repo.set_password_hash(s, (await s.scalar(select(Agent.id).where(Agent.name == "Bill"))),
                                         hash_password("correct horse battery"))
    bill = httpx.AsyncClient(transport=httpx.ASGITransport(app=web_env.web), base_url="http://testserver")
    try:
        await web_env.login("Bill", client=bill)
        listed = (await bill.get("/tickets?status=all")).text
        assert "Invoice" in listed and "Refund" not in listed and "Shipping" not in listed
        assert (await bill.get(f"/tickets/{ids['to']}")).status_code == 404
    finally:
        await bill.aclose()


async def test_a_reply_too_long_for_the_form_is_refused_with_its_length_and_nothing_is_sent(web_env):
    await web_env.agent("Al")
    tid = await _handed_off(web_env, "cust-7", "Where is my parcel?")
    await web_env.login("Al")
    c = web_env.client
    token = await csrf_of(c)
    r = await c.post(f"/tickets/{tid}/reply", data={"csrf": token, "text": "x" * 100_001})
    assert r.status_code == 422 and "100,001 characters" in r.text and "Nothing was saved" in r.text
    long_ok = "y" * 90_000
    assert (await c.post(f"/tickets/{tid}/reply", data={"csrf": token, "text": long_ok})).status_code == 303
    await web_env.app.outbox.drain()
    sent = web_env.console.sent_to("cust-7")
    assert sent[-1] == long_ok and not any(t.startswith("xxx") for t in sent)  # whole, and the refused one never
