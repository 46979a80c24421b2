"""The web chat widget's side of the inbox, over a real WebSocket against uvicorn: a visitor is named
readably wherever agents see them, and a ticket closed on the web asks for a rating with buttons that work."""

from __future__ import annotations

import asyncio
import re

import httpx
from sqlalchemy import select

from channels.webchat.channel import visitor_name
from crm_store.models import Customer, Ticket
from tests.web.test_webchat import open_visitor


def test_a_place_is_the_city_of_a_time_zone_and_nothing_else():
    from channels.webchat.frames import _place

    assert [_place(z) for z in ("Europe/Berlin", "America/New_York", "UTC", "Etc/GMT+2", "<b>/x1", 5)] == [
        "Berlin",
        "New York",
        "",
        "",
        "",
        "",
    ]


def test_a_visitor_name_is_a_number_and_the_city_never_the_id():
    name = visitor_name("a3f9c2d4e5b6a7c8", "Berlin")
    assert re.fullmatch(r"Visitor \d{4}, Berlin", name) and "a3f9" not in name
    assert visitor_name("a3f9c2d4e5b6a7c8") == name.split(",")[0]  # the same visitor keeps the number


async def test_agents_see_the_visitor_by_name_and_the_rating_buttons_close_the_loop(live):
    await live.agent("Al")
    v, visitor_id, _ = await open_visitor(live)
    await v.send({"type": "message", "client_id": "m1", "text": "I need a person", "zone": "Europe/Berlin"})
    await v.expect(lambda f: f["type"] == "ack")
    await v.expect(lambda f: f["type"] == "message" and f["from"] == "bot")
    await live.app.outbox.drain()
    async with live.app.sessions() as s:
        ticket = await s.scalar(select(Ticket))
        customer = await s.get(Customer, ticket.customer_id)
    assert re.fullmatch(r"Visitor \d{4}, Berlin", customer.name)
    notice = "\n".join(live.console.sent_to("al"))
    assert customer.name in notice and visitor_id not in notice
    async with httpx.AsyncClient(base_url=live.base_url) as al:
        await live.login("Al", client=al)
        page = (await al.get(f"/tickets/{ticket.id}")).text
        assert customer.name in page and visitor_id not in page and "web chat visitor" in page
        card = await al.get(f"/customers/{customer.id}")
        assert card.status_code == 200 and customer.name in card.text and visitor_id not in card.text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        key = re.search(r'name="form_key" value="([^"]+)"', page).group(1)
        closed = await al.post(f"/tickets/{ticket.id}/close", data={"csrf": token, "form_key": key})
        assert closed.status_code == 303
    await live.app.outbox.drain()
    question = await v.expect(lambda f: f["type"] == "message" and f.get("buttons"))
    assert [b["label"] for b in question["buttons"]] == ["1", "2", "3", "4", "5"]
    five = question["buttons"][-1]
    await v.send({"type": "message", "client_id": "m2", "text": five["data"]})
    await v.expect(lambda f: f["type"] == "ack")
    for _ in range(100):
        async with live.app.sessions() as s:
            if (await s.get(Ticket, ticket.id)).csat == 5:
                break
        await asyncio.sleep(0.05)
    async with live.app.sessions() as s:
        assert (await s.get(Ticket, ticket.id)).csat == 5
    await v.ws.close()
