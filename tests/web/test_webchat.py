"""The web chat over a real WebSocket: ack on commit, no duplicates on resend, history on reconnect, refusals."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from sqlalchemy import func, select

from crm_store.models import Contact, Identity, Ticket


class Visitor:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.frames: list[dict] = []

    async def send(self, frame: dict | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def expect(self, predicate, within: float = 5.0) -> dict:
        async def _next() -> dict:
            while True:
                frame = json.loads(await self.ws.recv())
                self.frames.append(frame)
                if predicate(frame):
                    return frame
        return await asyncio.wait_for(_next(), within)


def ws_url(live, token: str = "", after: str = "") -> str:
    return live.base_url.replace("http", "ws") + f"/webchat/ws?token={token}&after={after}"


async def open_visitor(live, token: str = "", after: str = "") -> tuple[Visitor, str, list[dict]]:
    ws = await websockets.connect(ws_url(live, token, after))
    v = Visitor(ws)
    hello = await v.expect(lambda f: f["type"] == "hello")
    await v.expect(lambda f: f["type"] == "history_end")
    history = [f for f in v.frames if f["type"] == "message"]
    return v, hello["visitor"], history


async def count(live, model, *where) -> int:
    async with live.app.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model).where(*where))


async def test_message_is_acked_once_stored_and_agent_reply_arrives_live(live):
    await live.agent("Alice")
    v, _, history = await open_visitor(live)
    assert history == []
    await v.send({"type": "message", "client_id": "m1", "text": "My order never arrived"})
    ack = await v.expect(lambda f: f["type"] == "ack")
    assert ack["client_id"] == "m1"
    assert await count(live, Contact, Contact.channel == "webchat", Contact.direction == "in") == 1
    # without a bot the visitor is told a person will answer
    handoff = await v.expect(lambda f: f["type"] == "message")
    assert handoff["from"] == "bot" and handoff["text"]
    async with live.app.sessions() as s:
        ticket_id = await s.scalar(select(Ticket.id))
    await live.console.receive("alice", f"/reply {ticket_id} Your parcel is on its way")
    reply = await v.expect(lambda f: f["type"] == "message" and f["from"] == "agent")
    assert reply["text"] == "Your parcel is on its way"
    await v.ws.close()


async def test_resent_unacked_message_is_not_doubled_and_history_comes_back(live):
    v, token, _ = await open_visitor(live)
    await v.send({"type": "message", "client_id": "same-1", "text": "hello?"})
    await v.expect(lambda f: f["type"] == "ack")
    bot = await v.expect(lambda f: f["type"] == "message")
    await v.ws.close()
    await live.app.outbox.drain()  # the outbound contact is logged once the push returned
    # the widget did not see the ack (say) and resends after reconnecting
    v2, token2, history = await open_visitor(live, token)
    assert token2 == token
    assert [f["text"] for f in history] == ["hello?", bot["text"]]
    await v2.send({"type": "message", "client_id": "same-1", "text": "hello?"})
    await v2.expect(lambda f: f["type"] == "ack" and f["client_id"] == "same-1")
    assert await count(live, Contact, Contact.channel == "webchat", Contact.direction == "in") == 1
    # a reconnect that already saw the bot's answer gets nothing more
    await v2.ws.close()
    v3, _, after = await open_visitor(live, token, bot["id"])
    assert after == []
    await v3.ws.close()


async def test_reply_while_offline_is_served_on_reconnect(live):
    await live.agent("Bob")
    v, token, _ = await open_visitor(live)
    await v.send({"type": "message", "client_id": "a1", "text": "need help"})
    await v.expect(lambda f: f["type"] == "ack")
    seen = await v.expect(lambda f: f["type"] == "message")
    await v.ws.close()
    await live.app.outbox.drain()
    async with live.app.sessions() as s:
        ticket_id = await s.scalar(select(Ticket.id))
    await live.console.receive("bob", f"/reply {ticket_id} Sorry for the wait")
    await live.app.outbox.drain()
    v2, _, history = await open_visitor(live, token, seen["id"])
    assert [(f["from"], f["text"]) for f in history] == [("agent", "Sorry for the wait")]
    await v2.ws.close()


async def test_refusals_keep_the_connection(live):
    v, _, _ = await open_visitor(live)
    await v.send("{not json")
    bad = await v.expect(lambda f: f["type"] == "error")
    assert bad["code"] == "bad_json"
    await v.send({"type": "message", "client_id": "long", "text": "x" * 501})
    too_long = await v.expect(lambda f: f["type"] == "error")
    assert too_long["code"] == "too_long" and "500" in too_long["reason"] and too_long["client_id"] == "long"
    await v.send({"type": "message", "client_id": "bad id!", "text": "hi"})
    assert (await v.expect(lambda f: f["type"] == "error"))["code"] == "bad_client_id"
    await v.send({"type": "ping"})
    assert (await v.expect(lambda f: f["type"] in ("pong", "error")))["type"] == "pong"
    assert await count(live, Contact, Contact.channel == "webchat") == 0
    await v.ws.close()


async def test_forged_visitor_token_gets_a_new_identity(live):
    v, token, _ = await open_visitor(live, "v0123.forged")
    assert token != "v0123.forged" and "." in token
    await v.ws.close()


async def test_left_email_is_only_a_claim_until_its_code(live):
    v, _, _ = await open_visitor(live)
    await v.send({"type": "message", "client_id": "q1", "text": "where is my refund"})
    await v.expect(lambda f: f["type"] == "ack")
    await v.send({"type": "email", "client_id": "e1", "email": "Ann@Example.com"})
    ok = await v.expect(lambda f: f["type"] == "email_ok")
    assert ok["email"] == "ann@example.com"
    async with live.app.sessions() as s:
        web_customer = await s.scalar(select(Contact.customer_id).where(Contact.external_id.like("%:q1")))
        owner = await s.scalar(select(Identity.customer_id).where(Identity.channel == "email",
                                                                 Identity.address == "ann@example.com"))
    assert owner is None and web_customer is not None  # claimed, not linked: a code was mailed there
    await v.send({"type": "email", "email": "not-an-address"})
    assert (await v.expect(lambda f: f["type"] == "error"))["code"] == "bad_email"
    await v.ws.close()


@pytest.mark.parametrize("frame", [
    {"type": "message", "client_id": "c", "text": "   "}, {"type": "nope"}, [1, 2], {"type": "message", "text": "x"},
])
async def test_bad_frames_are_refused_with_a_reason(live, frame):
    v, _, _ = await open_visitor(live)
    await v.send(frame)
    err = await v.expect(lambda f: f["type"] == "error")
    assert err["reason"]
    await v.ws.close()


@pytest.mark.parametrize("web_env", [{"widget_origins": ["https://shop.example"]}], indirect=True)
async def test_only_the_sites_that_embed_the_widget_may_open_the_chat_socket(live):
    with pytest.raises(websockets.exceptions.InvalidStatus):  # another site's page: cross-site WebSocket hijacking
        await websockets.connect(ws_url(live), origin="https://evil.example")
    for origin in ("https://shop.example", live.base_url):  # the shop that embeds it, and our own demo page
        ws = await websockets.connect(ws_url(live), origin=origin)
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["type"] in ("welcome", "hello", "session"), hello
        await ws.close()


def test_any_page_may_open_the_chat_socket_until_origins_are_configured():
    from bot.web.chat import origin_allowed

    assert origin_allowed("https://anything.example", "desk.example", [])
    assert origin_allowed(None, "desk.example", ["https://shop.example"])
    assert not origin_allowed("https://evil.example", "desk.example", ["https://shop.example/"])
    assert origin_allowed("https://desk.example", "desk.example", ["https://shop.example"])
