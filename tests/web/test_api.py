"""REST API: bearer tokens, resources, cursor pages, ticket actions and the webhook events they queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.web.tokens import create_token
from crm_store.models import ApiToken, Contact, OutboxItem, Ticket, TicketEvent
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories import web as web_repo


async def token_for(env, name: str = "ci") -> dict[str, str]:
    async with env.app.sessions() as s, s.begin():
        token = await create_token(s, name)
    return {"Authorization": f"Bearer {token}"}


async def test_token_is_stored_hashed_and_required(web_env):
    assert (await web_env.client.get("/api/v1/customers")).status_code == 401
    bad = await web_env.client.get("/api/v1/customers", headers={"Authorization": "Bearer tdk_nope"})
    assert bad.status_code == 401
    auth = await token_for(web_env)
    assert (await web_env.client.get("/api/v1/customers", headers=auth)).status_code == 200
    async with web_env.app.sessions() as s:
        stored = (await s.scalars(select(ApiToken.token_hash))).all()
    assert auth["Authorization"].split()[1] not in stored and len(stored[0]) == 64
    async with web_env.app.sessions() as s, s.begin():
        assert await web_repo.revoke_api_token(s, "ci") == 1
    assert (await web_env.client.get("/api/v1/customers", headers=auth)).status_code == 401


async def test_customers_identities_notes(web_env):
    auth = await token_for(web_env)
    c = web_env.client
    r = await c.post("/api/v1/customers", json={"name": "Ann", "external_ref": "A-1", "manual_tier": "VIP"},
                     headers=auth)
    assert r.status_code == 201
    cust = r.json()
    assert cust["tier"] == "VIP" and cust["manual_tier"] == "VIP"
    dup = await c.post("/api/v1/customers", json={"name": "Other", "external_ref": "A-1"}, headers=auth)
    assert dup.status_code == 409
    ident = await c.post(f"/api/v1/customers/{cust['id']}/identities",
                         json={"channel": "email", "address": "Ann@Example.com"}, headers=auth)
    assert ident.status_code == 201 and ident.json()["address"] == "ann@example.com"
    other = (await c.post("/api/v1/customers", json={"name": "Bo"}, headers=auth)).json()
    taken = await c.post(f"/api/v1/customers/{other['id']}/identities",
                         json={"channel": "email", "address": "ann@example.com"}, headers=auth)
    assert taken.status_code == 409
    patched = await c.patch(f"/api/v1/customers/{cust['id']}", json={"name": "Ann B", "language": "en"}, headers=auth)
    assert patched.json()["name"] == "Ann B" and patched.json()["language"] == "en"
    note = await c.post(f"/api/v1/customers/{cust['id']}/notes", json={"text": "prefers email"}, headers=auth)
    assert note.status_code == 201
    notes = await c.get(f"/api/v1/customers/{cust['id']}/notes", headers=auth)
    assert [n["text"] for n in notes.json()] == ["prefers email"]
    found = await c.get("/api/v1/customers?q=ann@example", headers=auth)
    assert [x["id"] for x in found.json()["items"]] == [cust["id"]]
    assert (await c.get("/api/v1/customers/999999", headers=auth)).status_code == 404


async def test_contacts_are_cursor_paginated_without_gaps(web_env):
    auth = await token_for(web_env)
    async with web_env.app.sessions() as s, s.begin():
        s.add_all([Contact(channel="console", external_id=f"x{i}", direction="in", address="a", text=f"t{i}")
                   for i in range(7)])
    seen, cursor = [], None
    while True:
        url = "/api/v1/contacts?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await web_env.client.get(url, headers=auth)).json()
        seen += [x["text"] for x in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"t{i}" for i in range(7)]
    assert (await web_env.client.get("/api/v1/contacts?cursor=zzz", headers=auth)).status_code == 400


async def customer(env, auth, name: str, **identity: str) -> int:
    """A customer through the API, with an address on each channel given (channel=address)."""
    made = (await env.client.post("/api/v1/customers", json={"name": name, **({"manual_tier": identity.pop("tier")}
                                                                              if "tier" in identity else {})},
                                  headers=auth)).json()
    for channel, address in identity.items():
        r = await env.client.post(f"/api/v1/customers/{made['id']}/identities",
                                  json={"channel": channel, "address": address}, headers=auth)
        assert r.status_code == 201
    return made["id"]


@pytest.mark.parametrize("web_env", [{"webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": "s3cret"}],
                         indirect=True)
async def test_ticket_lifecycle_queues_signed_webhook_events(web_env):
    auth = await token_for(web_env)
    c = web_env.client
    al = await web_env.agent("Al")
    bo = await web_env.agent("Bo")
    cust = await customer(web_env, auth, "Cy", email="cy@example.com")
    t = await c.post("/api/v1/tickets", json={"customer_id": cust, "subject": "Broken zip"}, headers=auth)
    assert t.status_code == 201
    tid = t.json()["id"]
    assert t.json()["assignee_id"] == al and t.json()["channel"] == "email"  # routed: the least loaded of two (by id)
    assert (await c.post(f"/api/v1/tickets/{tid}/assign", json={"agent_id": 99999}, headers=auth)).status_code == 422
    assigned = await c.post(f"/api/v1/tickets/{tid}/assign", json={"agent_id": bo}, headers=auth)
    assert assigned.json()["assignee_id"] == bo
    upd = await c.patch(f"/api/v1/tickets/{tid}", json={"priority": 1, "status": "pending"}, headers=auth)
    assert upd.json()["priority"] == 1 and upd.json()["status"] == "pending"
    closed = await c.post(f"/api/v1/tickets/{tid}/close", json={"resolution": "replaced"}, headers=auth)
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
    assert closed.json()["resolution"] == "replaced"
    assert (await c.patch(f"/api/v1/tickets/{tid}", json={"priority": 2}, headers=auth)).status_code == 409
    assert (await c.post(f"/api/v1/tickets/{tid}/close", json={}, headers=auth)).status_code == 409
    await web_env.app.outbox.drain()
    hook = web_env.app.registry.get("webhook")
    events = [json.loads(m.text) for m in hook.sent]
    assert [e["event"] for e in events] == ["ticket.created", "ticket.assigned", "ticket.assigned", "ticket.closed"]
    assert all(m.recipient == "http://127.0.0.1:9/hook" for m in hook.sent)
    assert [e["ticket"]["assignee_id"] for e in events] == [al, al, bo, bo]
    async with web_env.app.sessions() as s:
        rows = (await s.scalars(select(OutboxItem).where(OutboxItem.channel == "webhook"))).all()
        kinds = [e.kind for e in await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == tid)
                                                  .order_by(TicketEvent.id))]
        rating = await s.scalar(select(OutboxItem).where(OutboxItem.audience == "customer"))
    assert {o.status for o in rows} == {"sent"}
    assert kinds == ["opened", "routed", "assigned", "priority_set", "pending", "closed"]
    assert rating.recipient == "cy@example.com" and rating.buttons[0] == ["1", f"/csat {tid} 1"]
    assert web_env.console.sent_to("bo") == [f"T-{tid} was assigned to you by API: Broken zip"]


async def test_an_api_ticket_is_routed_by_the_customers_stored_tier(web_env):
    auth = await token_for(web_env)
    c = web_env.client
    vic = await web_env.agent("Vic", tiers=["VIP"])
    await web_env.agent("Ann", tiers=["ordinary"])
    vip = await customer(web_env, auth, "Vera", tier="VIP", telegram="5001")
    r = await c.post("/api/v1/tickets", json={"customer_id": vip, "subject": "Invoice twice"}, headers=auth)
    assert r.status_code == 201
    t = r.json()
    assert (t["queue"], t["priority"], t["tier_at_open"], t["assignee_id"]) == ("vip", 1, "VIP", vic)
    assert (t["channel"], t["source"], t["handoff_reason"], t["status"]) == ("telegram", "api", "opened via the API",
                                                                               "open")
    opened = datetime.fromisoformat(t["created_at"])
    assert datetime.fromisoformat(t["first_response_due"]) - opened == timedelta(minutes=15)  # config/routing.toml
    assert datetime.fromisoformat(t["resolution_due"]) - opened == timedelta(minutes=240)
    await web_env.app.outbox.drain()
    assert web_env.console.sent_to("vic")[0].startswith(f"New ticket T-{t['id']} · VIP · telegram")
    assert not web_env.console.sent_to("ann")
    async with web_env.app.sessions() as s:
        to_customer = (await s.scalars(select(OutboxItem).where(OutboxItem.audience == "customer"))).all()
    assert to_customer == []  # the customer did not write: nobody tells them a person will answer


async def test_an_api_ticket_needs_a_channel_the_customer_can_be_reached_on_or_a_known_one(web_env):
    auth = await token_for(web_env)
    c = web_env.client
    nobody = await customer(web_env, auth, "Nadia")
    for body in ({"customer_id": nobody, "channel": "pigeon"}, {"customer_id": nobody},
                 {"customer_id": 999_999}, {"customer_id": nobody, "queue": "vip"},
                 {"customer_id": nobody, "channel": "email", "assignee_id": 424242}):
        r = await c.post("/api/v1/tickets", json=body, headers=auth)
        assert r.status_code == 422, body
        assert isinstance(r.json()["detail"], list)
    mailed = await c.post("/api/v1/tickets", json={"customer_id": nobody, "channel": "email"}, headers=auth)
    assert mailed.status_code == 201 and mailed.json()["channel"] == "email"
    async with web_env.app.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Ticket)) == 1


async def test_bad_ticket_numbers_are_422_and_a_missing_ticket_404(web_env):
    auth = await token_for(web_env)
    c = web_env.client
    for bad in ("99999999999999999999", "-1", "0", "abc", str(2**53 + 1), "1.5"):
        assert (await c.get(f"/api/v1/tickets/{bad}", headers=auth)).status_code == 422, bad
        assert (await c.post(f"/api/v1/tickets/{bad}/close", json={}, headers=auth)).status_code == 422, bad
        assert (await c.post(f"/api/v1/tickets/{bad}/reply", json={"text": "hi"}, headers=auth)).status_code == 422
    assert (await c.get(f"/api/v1/tickets/{2**53}", headers=auth)).status_code == 404
    assert (await c.post("/api/v1/tickets/7/reopen", headers=auth)).status_code == 404
    assert (await c.post("/api/v1/tickets", json={"customer_id": 2**53 + 1}, headers=auth)).status_code == 422


async def test_reply_note_pending_tags_queue_and_reopen_through_the_core(web_env):
    auth = await token_for(web_env)
    c = web_env.client
    al = await web_env.agent("Al")
    cust = await customer(web_env, auth, "Cy", webchat="visitor-1")
    tid = (await c.post("/api/v1/tickets", json={"customer_id": cust, "subject": "Zip"}, headers=auth)).json()["id"]
    replied = await c.post(f"/api/v1/tickets/{tid}/reply", json={"text": "On its way."}, headers=auth)
    assert replied.status_code == 200
    assert replied.json()["status"] == "pending" and replied.json()["first_responded_at"] is not None
    assert (await c.post(f"/api/v1/tickets/{tid}/reply", json={"text": ""}, headers=auth)).status_code == 422
    note = await c.post(f"/api/v1/tickets/{tid}/notes", json={"text": "called her"}, headers=auth)
    assert note.status_code == 201 and note.json()["text"] == "called her" and note.json()["ticket_id"] == tid
    assert [n["text"] for n in (await c.get(f"/api/v1/tickets/{tid}/notes", headers=auth)).json()] == ["called her"]
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    soon = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    assert (await c.patch(f"/api/v1/tickets/{tid}", json={"status": "pending", "snoozed_until": past},
                          headers=auth)).status_code == 422
    snoozed = await c.patch(f"/api/v1/tickets/{tid}", json={"status": "pending", "snoozed_until": soon.isoformat(),
                                                            "tags": ["Refund", "#late", "refund"], "subject": "Zip!"},
                            headers=auth)
    assert snoozed.status_code == 200
    assert datetime.fromisoformat(snoozed.json()["snoozed_until"]) == soon
    assert snoozed.json()["tags"] == ["refund", "late"] and snoozed.json()["subject"] == "Zip!"
    moved = await c.patch(f"/api/v1/tickets/{tid}", json={"queue": "billing", "tags": ["late"]}, headers=auth)
    assert (moved.json()["queue"], moved.json()["assignee_id"], moved.json()["tags"]) == ("billing", None, ["late"])
    assert (await c.post(f"/api/v1/tickets/{tid}/reopen", headers=auth)).status_code == 409  # it is not closed
    await c.post(f"/api/v1/tickets/{tid}/close", json={}, headers=auth)
    reopened = await c.post(f"/api/v1/tickets/{tid}/reopen", headers=auth)
    assert reopened.json()["status"] == "open" and reopened.json()["closed_at"] is None
    await web_env.app.outbox.drain()
    async with web_env.app.sessions() as s:
        sent = (await s.scalars(select(OutboxItem).where(OutboxItem.audience == "customer")
                                .order_by(OutboxItem.id))).all()
    assert [(o.author, o.recipient, o.buttons != []) for o in sent] == [("agent", "visitor-1", False),
                                                                         ("bot", "visitor-1", True)]  # the rating
    assert sent[0].text == "On its way."
    assert replied.json()["assignee_id"] == al  # routing gave it to the only agent; the API reply kept it there


async def test_a_token_of_an_agent_sees_and_acts_as_that_agent(web_env):
    admin = await token_for(web_env)
    c = web_env.client
    vic = await web_env.agent("Vic", tiers=["VIP"])
    await web_env.agent("Ozzy", tiers=["ordinary"])
    async with web_env.app.sessions() as s, s.begin():
        vics = {"Authorization": f"Bearer {await create_token(s, 'vic', agent_id=vic)}"}
    vip = await customer(web_env, admin, "Vera", tier="VIP", telegram="5001")
    low = await customer(web_env, admin, "Otto", tier="ordinary", telegram="5002")
    tv = (await c.post("/api/v1/tickets", json={"customer_id": vip}, headers=admin)).json()
    to = (await c.post("/api/v1/tickets", json={"customer_id": low}, headers=admin)).json()
    assert tv["assignee_id"] == vic
    assert (await c.get(f"/api/v1/tickets/{to['id']}", headers=vics)).status_code == 404
    assert (await c.post(f"/api/v1/tickets/{to['id']}/close", json={}, headers=vics)).status_code == 404
    assert [t["id"] for t in (await c.get("/api/v1/tickets", headers=vics)).json()["items"]] == [tv["id"]]
    assert len((await c.get("/api/v1/tickets", headers=admin)).json()["items"]) == 2
    sue = await web_env.agent("Sue", role="supervisor")
    await c.post(f"/api/v1/tickets/{tv['id']}/assign", json={"agent_id": sue}, headers=admin)
    refused = await c.post(f"/api/v1/tickets/{tv['id']}/reply", json={"text": "hi"}, headers=vics)
    assert refused.status_code == 403 and "assigned to someone else" in refused.json()["detail"]
    assert (await c.post(f"/api/v1/tickets/{tv['id']}/assign", json={"agent_id": vic},
                         headers=vics)).status_code == 403


async def test_a_customer_note_on_a_ticket_goes_through_the_ticket_core(web_env):
    auth = await token_for(web_env)
    c = web_env.client
    cust = await customer(web_env, auth, "Di", webchat="visitor-9")
    other = await customer(web_env, auth, "Ed", webchat="visitor-10")
    tid = (await c.post("/api/v1/tickets", json={"customer_id": cust, "subject": "Zip"}, headers=auth)).json()["id"]
    made = await c.post(f"/api/v1/customers/{cust}/notes", json={"text": "VIP soon", "ticket_id": tid}, headers=auth)
    assert made.status_code == 201 and made.json()["ticket_id"] == tid
    wrong = await c.post(f"/api/v1/customers/{other}/notes", json={"text": "x", "ticket_id": tid}, headers=auth)
    assert wrong.status_code == 422
    async with web_env.app.sessions() as s:
        kinds = [e.kind for e in await tickets_repo.ticket_events(s, tid)]
    assert kinds.count("note") == 1


async def test_a_token_of_an_agent_reads_only_customers_of_the_tiers_they_serve(web_env):
    admin = await token_for(web_env)
    c = web_env.client
    vic = await web_env.agent("Vic", tiers=["VIP"])
    async with web_env.app.sessions() as s, s.begin():
        vics = {"Authorization": f"Bearer {await create_token(s, 'vic', agent_id=vic)}"}
    vip = await customer(web_env, admin, "Vera", tier="VIP", telegram="5101")
    low = await customer(web_env, admin, "Otto", tier="ordinary", telegram="5102")
    assert [x["id"] for x in (await c.get("/api/v1/customers", headers=vics)).json()["items"]] == [vip]
    assert {x["id"] for x in (await c.get("/api/v1/customers", headers=admin)).json()["items"]} == {vip, low}
    for path in (f"/api/v1/customers/{low}", f"/api/v1/customers/{low}/identities", f"/api/v1/customers/{low}/notes"):
        assert (await c.get(path, headers=vics)).status_code == 404, path
        assert (await c.get(path, headers=admin)).status_code == 200, path
    assert (await c.get(f"/api/v1/customers/{vip}", headers=vics)).status_code == 200
