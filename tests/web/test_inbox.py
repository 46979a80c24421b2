"""The web ticket page as an agent's workspace: canned replies in the customer's language, transfer, and forms
that change nothing when posted twice (a double click)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from crm_store.models import Customer, Note, OutboxItem, Ticket, TicketEvent
from crm_store.repositories import canned as canned_repo


async def _handed_off(env, sender: str, text: str) -> int:
    result = await env.console.receive(sender, text)
    await env.app.outbox.drain()
    return result.ticket_id


def _field(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)


async def _replies(env, tid: int) -> list[str]:
    async with env.app.sessions() as s:
        rows = await s.scalars(
            select(OutboxItem.text)
            .where(OutboxItem.ticket_id == tid, OutboxItem.audience == "customer", OutboxItem.author == "agent")
            .order_by(OutboxItem.id)
        )
        return list(rows)


async def _kinds(env, tid: int) -> list[str]:
    async with env.app.sessions() as s:
        rows = await s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == tid).order_by(TicketEvent.id))
        return list(rows)


async def test_a_canned_reply_goes_out_in_the_customers_language_once_however_often_it_is_posted(web_env):
    await web_env.agent("Al")
    tid = await _handed_off(web_env, "cust-1", "Wo ist mein Paket?")
    async with web_env.app.sessions() as s, s.begin():
        ticket = await s.get(Ticket, tid)
        (await s.get(Customer, ticket.customer_id)).language = "de"
        await canned_repo.put(s, "shipping", "It ships today.")
        await canned_repo.put(s, "shipping", "Es wird heute verschickt.", language="de")
    await web_env.login("Al")
    page = (await web_env.client.get(f"/tickets/{tid}")).text
    assert "<option>shipping</option>" in page
    form = {"csrf": _field(page, "csrf"), "form_key": _field(page, "form_key"), "canned": "shipping", "text": ""}
    first = await web_env.client.post(f"/tickets/{tid}/reply", data=form)
    second = await web_env.client.post(f"/tickets/{tid}/reply", data=form)
    assert first.status_code == second.status_code == 303
    assert await _replies(web_env, tid) == ["Es wird heute verschickt."]
    assert (await _kinds(web_env, tid)).count("replied") == 1

    page = (await web_env.client.get(f"/tickets/{tid}")).text
    unknown = await web_env.client.post(
        f"/tickets/{tid}/reply",
        data={"csrf": _field(page, "csrf"), "form_key": _field(page, "form_key"), "canned": "nosuch"},
    )
    assert unknown.status_code == 422 and "There is no canned response &#39;nosuch&#39;" in unknown.text
    assert await _replies(web_env, tid) == ["Es wird heute verschickt."]


async def test_notes_tags_and_transfers_posted_twice_are_written_once(web_env):
    await web_env.agent("Al")
    tid = await _handed_off(web_env, "cust-2", "My invoice is wrong")
    await web_env.login("Al")
    c: httpx.AsyncClient = web_env.client

    async def twice(action: str, **data: str) -> None:
        page = (await c.get(f"/tickets/{tid}")).text
        form = {"csrf": _field(page, "csrf"), "form_key": _field(page, "form_key"), **data}
        for _ in range(2):
            assert (await c.post(f"/tickets/{tid}/{action}", data=form)).status_code == 303

    await twice("notes", text="called the customer")
    await twice("tags", add="billing")
    await twice("priority", priority="1")
    await twice("transfer", queue="billing")
    async with web_env.app.sessions() as s:
        notes = await s.scalar(select(func.count()).select_from(Note).where(Note.ticket_id == tid))
        ticket = await s.get(Ticket, tid)
    assert notes == 1
    assert (ticket.tags, ticket.priority, ticket.queue, ticket.assignee_id) == (["billing"], 1, "billing", None)
    kinds = await _kinds(web_env, tid)
    assert [k for k in kinds if k in ("note", "tagged", "priority_set", "transferred")] == [
        "note",
        "tagged",
        "priority_set",
        "transferred",
    ]
    # a form key that is not one of ours is a form without one: it still works, once per post
    page = (await c.get(f"/tickets/{tid}")).text
    r = await c.post(
        f"/tickets/{tid}/notes", data={"csrf": _field(page, "csrf"), "form_key": "x' or 1=1", "text": "second note"}
    )
    assert r.status_code == 303


async def test_a_reply_carries_an_attached_file_as_a_link_and_a_file_over_the_limit_sends_nothing(web_env):
    from bot.web.inbox.uploads import MAX_BYTES

    await web_env.agent("Al")
    tid = await _handed_off(web_env, "cust-3", "Send me the invoice")
    async with web_env.app.sessions() as s, s.begin():
        await canned_repo.put(s, "invoice", "Here is your invoice.")
    await web_env.login("Al")
    c = web_env.client
    page = (await c.get(f"/tickets/{tid}")).text
    assert 'enctype="multipart/form-data"' in page and 'name="file"' in page
    form = {
        "csrf": _field(page, "csrf"),
        "form_key": _field(page, "form_key"),
        "canned": "invoice",
        "attachment_line": "forged: http://evil.example",
    }
    sent = await c.post(f"/tickets/{tid}/reply", data=form, files={"file": ("in voice<1>.pdf", b"%PDF-1.4 " * 200)})
    assert sent.status_code == 303
    [text] = await _replies(web_env, tid)
    first, link = text.split("\n")
    assert first == "Here is your invoice." and "evil" not in text
    match = re.fullmatch(r"in voice_1_\.pdf \(2 KB\): http://testserver(/files/[0-9a-f]{32}/in%20voice_1_\.pdf)", link)
    assert match, link
    got = await c.get(match.group(1))
    assert got.status_code == 200 and got.content == b"%PDF-1.4 " * 200
    assert "attachment" in got.headers["content-disposition"]
    assert (await c.get("/files/" + "0" * 32 + "/x.pdf")).status_code == 404

    page = (await c.get(f"/tickets/{tid}")).text
    big = await c.post(
        f"/tickets/{tid}/reply",
        data={"csrf": _field(page, "csrf"), "form_key": _field(page, "form_key"), "text": "the scan"},
        files={"file": ("scan.png", b"x" * (MAX_BYTES + 1))},
    )
    assert big.status_code == 422 and "scan.png is over 10 MB; nothing was sent." in big.text
    assert await _replies(web_env, tid) == [text]


@pytest.mark.parametrize("web_env", [{"time_zone": "Europe/Berlin"}], indirect=True)
async def test_times_are_shown_in_the_business_time_zone_and_the_zone_is_named(web_env):
    await web_env.agent("Al")
    tid = await _handed_off(web_env, "cust-4", "Hello")
    async with web_env.app.sessions() as s, s.begin():
        ticket = await s.get(Ticket, tid)
        ticket.first_response_due = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 13:00 in Berlin (winter)
        ticket.resolution_due = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)  # 14:00 in Berlin (summer)
    await web_env.login("Al")
    page = (await web_env.client.get(f"/tickets/{tid}")).text
    assert "First reply due 2026-01-15 13:00" in page and "Resolution due 2026-07-15 14:00" in page
    assert 'id="time-zone"' in page and "Europe/Berlin" in page
