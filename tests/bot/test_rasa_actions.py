"""The rasa-sdk action server, for real: `python -m bot.assistant.rasa_actions` on 127.0.0.1, Rasa webhook
payloads over HTTP, the CRM on SQLite and PostgreSQL; tickets it opens are routed by the ticket core."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from crm_store.models import Contact, Customer, Identity, OutboxItem
from crm_store.repositories import tickets as tickets_repo
from crm_store.repositories.agents import add_agent

ROOT = Path(__file__).resolve().parents[2]
STARTUP_S = 120
"""rasa-sdk imports a lot (Sanic, OpenTelemetry, gRPC); on a busy two-core machine start-up can take a while."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payload(action: str, *, sender: str = "chat-1", channel: str = "telegram", text: str = "",
            intent: str = "", slots: dict[str, Any] | None = None, entities: list[dict] | None = None) -> dict:
    """What Rasa 3.x POSTs to the action server's /webhook."""
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.97}, "entities": entities or [],
              "intent_ranking": [{"name": intent, "confidence": 0.97}]}
    return {
        "next_action": action,
        "sender_id": sender,
        "version": "3.6.0",
        "tracker": {
            "sender_id": sender,
            "conversation_id": sender,
            "slots": {"customer_id": None, "customer_ref": None, "ticket_id": None, "language": None, **(slots or {})},
            "latest_message": latest,
            "latest_event_time": time.time(),
            "followup_action": None,
            "paused": False,
            "events": [
                {"event": "action", "name": "action_session_start", "timestamp": time.time()},
                {"event": "user", "text": text, "parse_data": latest, "input_channel": channel,
                 "timestamp": time.time()},
            ],
            "latest_input_channel": channel,
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        },
        "domain": {"version": "3.1", "intents": [intent] if intent else [], "entities": [], "slots": {},
                   "responses": {}, "actions": [action], "forms": {}},
    }


def start_server(db, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [sys.executable, "-m", "bot.assistant.rasa_actions", "--database-url", db.url, "--port", str(port)]
    if db.schema:
        args += ["--schema", db.schema]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
async def action_server(db, tmp_path: Path) -> AsyncIterator[tuple[str, Any]]:
    """The real rasa-sdk server in its own process, on the test's database."""
    log_path = tmp_path / "action-server.log"
    process, base = await asyncio.to_thread(start_server, db, log_path)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            deadline = time.monotonic() + STARTUP_S
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"action server exited: {log_path.read_text()[-2000:]}")
                try:
                    if (await client.get(f"{base}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"action server not up in {STARTUP_S} s: {log_path.read_text()[-2000:]}")
                await asyncio.sleep(0.2)
        yield base, db
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def slots(result: dict) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in result["events"] if e["event"] == "slot"}


def texts(result: dict) -> list[str]:
    return [r.get("text") for r in result["responses"] if r.get("text")]


async def seed(db) -> tuple[int, int, int]:
    """Two customers, an agent serving VIPs and a supervisor (who is not handed tickets unless they opt in)."""
    async with db.sessions() as s, s.begin():
        await add_agent(s, name="Boss", role="supervisor", capacity=10, addresses={"telegram": "boss-1"})
        kim = await add_agent(s, name="Kim", tiers=["VIP"], capacity=5, addresses={"telegram": "kim-1"})
        vip = Customer(name="Vera Ivanova", tier="VIP", language="ru")
        other = Customer(name="Otto", tier="ordinary")
        s.add_all([vip, other])
        await s.flush()
        s.add_all([
            Identity(customer_id=vip.id, channel="telegram", address="chat-1"),
            Identity(customer_id=vip.id, channel="email", address="vera@example.com"),
            Identity(customer_id=other.id, channel="telegram", address="chat-2"),
        ])
        s.add(Contact(channel="telegram", external_id="m1", direction="in", customer_id=vip.id,
                      text="где мой заказ 48213"))
        return vip.id, other.id, kim.id


async def test_actions_through_the_real_rasa_sdk_server(action_server) -> None:
    base, db = action_server
    vip_id, other_id, kim_id = await seed(db)
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:
        listed = (await http.get("/actions")).json()
        assert {a["name"] for a in listed} >= {"action_customer_lookup", "action_customer_history",
                                                "action_open_ticket", "action_ticket_status"}

        found = (await http.post("/webhook", json=payload("action_customer_lookup", text="hi"))).json()
        assert slots(found) == {"customer_id": str(vip_id), "customer_name": "Vera Ivanova", "customer_tier": "VIP"}

        by_email = (await http.post("/webhook", json=payload(
            "action_customer_lookup", sender="unknown", text="I am vera@example.com",
            entities=[{"entity": "email", "value": "vera@example.com", "start": 5, "end": 21}]))).json()
        assert slots(by_email)["customer_id"] == str(vip_id)

        # A numeric sender id is an address, never a customer number.
        stranger = (await http.post("/webhook", json=payload("action_customer_lookup", sender=str(other_id)))).json()
        assert slots(stranger)["customer_id"] is None
        assert "could not find" in texts(stranger)[0]

        history = (await http.post("/webhook", json=payload("action_customer_history"))).json()
        assert "где мой заказ 48213" in texts(history)[0]
        custom = [r["custom"] for r in history["responses"] if r.get("custom")]
        assert custom[0]["customer_id"] == vip_id and custom[0]["history"][0]["channel"] == "telegram"

        opened = (await http.post("/webhook", json=payload(
            "action_open_ticket", text="my parcel never came", intent="order_status",
            slots={"language": "en"}))).json()
        ticket_ref = slots(opened)["ticket_id"]
        assert ticket_ref.startswith("T-") and slots(opened)["ticket_status"] == "open"

        again = (await http.post("/webhook", json=payload("action_open_ticket", text="hello?"))).json()
        assert slots(again)["ticket_id"] == ticket_ref, "an active ticket is reused, not duplicated"

        asked = payload("action_ticket_status", text=f"status of {ticket_ref}?")
        status = (await http.post("/webhook", json=asked)).json()
        assert slots(status) == {"ticket_id": ticket_ref, "ticket_status": "open"}
        assert texts(status) == [f"Ticket {ticket_ref} is open."]

        foreign = (await http.post("/webhook", json=payload(
            "action_ticket_status", sender="chat-2", text=f"what about {ticket_ref}"))).json()
        assert slots(foreign)["ticket_status"] is None, "another customer's ticket stays private"

        missing = (await http.post("/webhook", json=payload("action_ticket_status", text="T-999999"))).json()
        assert slots(missing)["ticket_status"] is None
        huge = (await http.post("/webhook", json=payload("action_ticket_status", text="T-" + "9" * 30))).json()
        assert slots(huge)["ticket_status"] is None and texts(huge)[0].startswith("I could not find ticket T-")

        anonymous = (await http.post("/webhook", json=payload(
            "action_ticket_status", sender="nobody", text=f"status of {ticket_ref}"))).json()
        assert slots(anonymous)["ticket_status"] is None, "a stranger learns nothing"

        unknown = await http.post("/webhook", json=payload("action_does_not_exist"))
        assert unknown.status_code == 404

    async with db.sessions() as s:
        ticket = await tickets_repo.get_ticket(s, int(ticket_ref[2:]))
        events = await tickets_repo.ticket_events(s, ticket.id)
        outbox = list(await s.scalars(select(OutboxItem).order_by(OutboxItem.id)))
    assert ticket.customer_id == vip_id and ticket.intent == "order_status" and ticket.language == "en"
    assert ticket.subject == "my parcel never came" and ticket.channel == "rasa" and ticket.source == "rasa"
    # routed like any ticket that needs a person: the VIP queue, priority and SLA, the agent serving VIPs
    assert (ticket.queue, ticket.priority, ticket.tier_at_open) == ("vip", 1, "VIP")
    assert ticket.handoff_reason == "opened by a Rasa assistant" and ticket.assignee_id == kim_id
    assert ticket.first_response_due == ticket.created_at + timedelta(minutes=15)
    assert ticket.resolution_due == ticket.created_at + timedelta(hours=4)
    assert ticket.first_responded_at is None
    assert [e.kind for e in events] == ["opened", "routed"]
    # the assigned agent is told (desk traffic); the customer hears from Rasa itself, not from our outbox
    assert [(o.recipient, o.audience) for o in outbox] == [("kim-1", "desk")]
    assert outbox[0].text.startswith(f"New ticket {ticket_ref} · VIP · rasa")
