"""Closing a ticket is one rule whatever the surface: an agent typing /close at the desk, the same agent pressing
"Close ticket" on the dashboard, and the REST API with a token of that agent write the same rows — the ticket's
fields, its audit trail, the rating question to the customer (with its buttons), the webhook event and the agent's
load. Each surface closes its own ticket, opened the same way; rows are compared after removing what must differ
(ids, times, the request that caused them)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from bot.settings import WebSettings
from bot.web import create_web_app
from bot.web.auth import hash_password
from bot.web.tokens import create_token
from crm_store.models import Contact, OutboxItem, Ticket, TicketEvent
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import web as web_repo

PASSWORD = "correct horse battery"
HOOK = "http://127.0.0.1:9/hook"
SKIP_FIELDS = {"id", "customer_id"}


class Surfaces:
    """One agent, Alice, reachable at the desk (console), logged in on the dashboard and owning an API token."""

    def __init__(self, h, client: httpx.AsyncClient, token: str) -> None:
        self.h, self.client, self.auth = h, client, {"Authorization": f"Bearer {token}"}

    async def desk(self, ticket_id: int, resolution: str) -> None:
        await self.h.ch["console"].receive("alice", f"/close T-{ticket_id} {resolution}")

    async def dashboard(self, ticket_id: int, resolution: str) -> None:
        page = await self.client.get(f"/tickets/{ticket_id}")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        done = await self.client.post(f"/tickets/{ticket_id}/close", data={"csrf": csrf, "resolution": resolution})
        assert done.status_code == 303, done.text

    async def api(self, ticket_id: int, resolution: str) -> None:
        done = await self.client.post(f"/api/v1/tickets/{ticket_id}/close", json={"resolution": resolution},
                                      headers=self.auth)
        assert done.status_code == 200, done.text


def _plain(value: Any, ticket_id: int) -> Any:
    """A value with what must differ between two tickets taken out: times become "<time>", and the ticket's own
    number (in "T-12" or a command "/csat 12 5") becomes #."""
    if isinstance(value, datetime):
        return "<time>"
    if isinstance(value, str):
        return re.sub(rf"(T-|/\w+ ){ticket_id}\b", r"\g<1>#", value)
    if isinstance(value, dict):
        return {k: _plain(v, ticket_id) for k, v in value.items() if k not in ("at", "id", "customer_id")}
    if isinstance(value, list | tuple):
        return [_plain(v, ticket_id) for v in value]
    return value


async def snapshot(h, ticket_id: int, since_outbox_id: int) -> dict[str, Any]:
    """Everything closing wrote for `ticket_id`, normalised."""
    async with h.app.sessions() as s:
        ticket = await s.get(Ticket, ticket_id)
        events = (await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
                                  .order_by(TicketEvent.at, TicketEvent.id))).all()
        rows = (await s.scalars(select(OutboxItem).where(OutboxItem.ticket_id == ticket_id,
                                                         OutboxItem.id > since_outbox_id,
                                                         OutboxItem.audience.in_(("customer", "event")))
                                .order_by(OutboxItem.id))).all()
        inbound = await s.scalar(select(Contact.external_id).where(Contact.ticket_id == ticket_id,
                                                                   Contact.direction == "in"))
        address = await s.scalar(select(Contact.address).where(Contact.ticket_id == ticket_id))
        load = {a.name: n for a, n in await agents_repo.agents_with_load(s)}
    fields = {c.name: getattr(ticket, c.name) for c in Ticket.__table__.columns if c.name not in SKIP_FIELDS}
    outbox = []
    for row in rows:
        body = json.loads(row.text) if row.audience == "event" else row.text
        outbox.append(_plain({
            "key": row.idempotency_key.split(":", 1)[1] if row.audience == "customer" else row.meta.get("event"),
            "channel": row.channel, "recipient": "<customer>" if row.recipient == address else row.recipient,
            "text": body, "author": row.author, "audience": row.audience, "buttons": row.buttons,
            "meta": row.meta, "subject": row.subject, "agent_id": row.agent_id,
            "reply_to": "<their message>" if row.reply_to == inbound else row.reply_to,
            "status": row.status if row.audience == "customer" else "-",
        }, ticket_id))
    return {
        "ticket": _plain(fields, ticket_id),
        "events": [_plain({"kind": e.kind, "actor": e.actor, "agent_id": e.agent_id, "data": e.data}, ticket_id)
                   for e in events],
        "outbox": outbox,
        "load": load,
    }


async def _last_outbox_id(h) -> int:
    async with h.app.sessions() as s:
        return int(await s.scalar(select(func.coalesce(func.max(OutboxItem.id), 0))))


async def _surfaces(h) -> tuple[Surfaces, int]:
    alice = await h.agent("Alice", email="alice@desk.example")
    async with h.app.writer_sessions() as s, s.begin():
        await web_repo.set_password_hash(s, alice.id, hash_password(PASSWORD))
        token = await create_token(s, "alice's", agent_id=alice.id)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_web_app(h.app)), base_url="http://testserver")
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    login = await client.post("/login", data={"email": "alice@desk.example", "password": PASSWORD, "csrf": csrf})
    assert login.status_code == 303
    return Surfaces(h, client, token), alice.id


async def test_closing_at_the_desk_on_the_dashboard_and_in_the_api_writes_the_same_rows(harness_factory):
    h = await harness_factory(web=WebSettings(secret_key="k" * 32, webhook_url=HOOK, webhook_secret="s3cret"))
    surfaces, alice_id = await _surfaces(h)
    seen: dict[str, dict[str, Any]] = {}
    try:
        for n, surface in enumerate(("desk", "dashboard", "api")):
            opened = await h.ch["telegram"].receive(f"60{n}", "my parcel never arrived")
            await h.settle()
            mark = await _last_outbox_id(h)
            await getattr(surfaces, surface)(opened.ticket_id, "refund sent")
            await h.settle()
            seen[surface] = await snapshot(h, opened.ticket_id, mark)
    finally:
        await surfaces.client.aclose()
    desk = seen["desk"]
    # what closing must write, checked by hand once ...
    assert desk["ticket"]["status"] == "closed" and desk["ticket"]["resolution"] == "refund sent"
    assert desk["ticket"]["assignee_id"] == alice_id and desk["ticket"]["closed_at"] == "<time>"
    assert desk["ticket"]["csat"] is None and desk["ticket"]["snoozed_until"] is None
    assert [e["kind"] for e in desk["events"]] == ["opened", "routed", "closed"]
    assert desk["events"][-1] == {"kind": "closed", "actor": "agent", "agent_id": alice_id,
                                  "data": {"resolution": "refund sent"}}
    rating, = (r for r in desk["outbox"] if r["audience"] == "customer")
    assert rating["key"] == "csat" and rating["recipient"] == "<customer>" and rating["channel"] == "telegram"
    assert rating["buttons"] == [[str(n), f"/csat # {n}"] for n in range(1, 6)] and rating["status"] == "sent"
    hooks = [r["text"] for r in desk["outbox"] if r["audience"] == "event"]
    assert [e["event"] for e in hooks] == ["ticket.closed"]
    assert hooks[0]["ticket"]["status"] == "closed" and hooks[0]["data"] == {"resolution": "refund sent"}
    assert desk["load"] == {"Alice": 0}
    # ... and the dashboard and the API write exactly the same
    for surface in ("dashboard", "api"):
        for part in ("ticket", "events", "outbox", "load"):
            assert seen[surface][part] == desk[part], (surface, part)
