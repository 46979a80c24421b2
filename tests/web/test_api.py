"""REST API: bearer tokens, resources, cursor pages, ticket actions and the webhook events they queue."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.web.tokens import create_token
from crm_store.models import ApiToken, Contact, OutboxItem
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


@pytest.mark.parametrize("web_env", [{"webhook_url": "http://127.0.0.1:9/hook", "webhook_secret": "s3cret"}],
                         indirect=True)
async def test_ticket_lifecycle_queues_signed_webhook_events(web_env):
    auth = await token_for(web_env)
    c = web_env.client
    agent_id = await web_env.agent("Al")
    cust = (await c.post("/api/v1/customers", json={"name": "Cy"}, headers=auth)).json()
    t = await c.post("/api/v1/tickets", json={"customer_id": cust["id"], "subject": "Broken zip"}, headers=auth)
    assert t.status_code == 201
    tid = t.json()["id"]
    assert (await c.post(f"/api/v1/tickets/{tid}/assign", json={"agent_id": 99999}, headers=auth)).status_code == 422
    assigned = await c.post(f"/api/v1/tickets/{tid}/assign", json={"agent_id": agent_id}, headers=auth)
    assert assigned.json()["assignee_id"] == agent_id
    upd = await c.patch(f"/api/v1/tickets/{tid}", json={"priority": 1, "status": "pending"}, headers=auth)
    assert upd.json()["priority"] == 1 and upd.json()["status"] == "pending"
    closed = await c.post(f"/api/v1/tickets/{tid}/close", json={"resolution": "replaced"}, headers=auth)
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
    assert (await c.patch(f"/api/v1/tickets/{tid}", json={"priority": 2}, headers=auth)).status_code == 409
    await web_env.app.outbox.drain()
    hook = web_env.app.registry.get("webhook")
    events = [json.loads(m.text) for m in hook.sent]
    assert [e["event"] for e in events] == ["ticket.created", "ticket.assigned", "ticket.closed"]
    assert all(m.recipient == "http://127.0.0.1:9/hook" for m in hook.sent)
    assert events[1]["ticket"]["assignee_id"] == agent_id
    async with web_env.app.sessions() as s:
        assert {o.status for o in await s.scalars(select(OutboxItem))} == {"sent"}
