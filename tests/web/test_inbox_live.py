"""The inbox page's counts on hand-built tickets, and its live event stream against uvicorn: presence of a
second agent on a ticket, a new message on it and a queue change arrive without reloading."""

from __future__ import annotations

import asyncio
import json
import re

import httpx

from bot.web.inbox import hub as hub_module
from crm_store.models import Contact, Customer, Ticket


async def _seed(env, al: int) -> dict[str, int]:
    """VIP queue: two open (one Al's); general: one pending, one closed."""
    async with env.app.sessions() as s, s.begin():
        vera, otto = Customer(name="Vera", tier="VIP"), Customer(name="Otto", tier="ordinary")
        s.add_all([vera, otto])
        await s.flush()
        rows = [
            Ticket(
                customer_id=vera.id,
                channel="webchat",
                tier_at_open="VIP",
                queue="vip",
                status="open",
                assignee_id=al,
                subject="Refund",
            ),
            Ticket(
                customer_id=vera.id,
                channel="webchat",
                tier_at_open="VIP",
                queue="vip",
                status="open",
                subject="Invoice",
            ),
            Ticket(
                customer_id=otto.id,
                channel="email",
                tier_at_open="ordinary",
                queue="general",
                status="pending",
                subject="Parcel",
            ),
            Ticket(
                customer_id=otto.id,
                channel="email",
                tier_at_open="ordinary",
                queue="general",
                status="closed",
                subject="Old",
            ),
        ]
        s.add_all(rows)
        await s.flush()
        return {"vera": vera.id, "mine": rows[0].id, "vip": rows[1].id, "pending": rows[2].id}


def _count(page: str, ident: str) -> int:
    return int(re.search(rf'id="{ident}"[^>]*>(?:[^<]*<b class="count"[^>]*>)?(\d+)', page).group(1))


async def test_inbox_counts_follow_what_each_viewer_may_see(web_env):
    al = await web_env.agent("Al", tiers=["VIP"])
    await web_env.agent("Sue", role="supervisor")
    ids = await _seed(web_env, al)
    await web_env.login("Al")
    page = (await web_env.client.get("/inbox")).text
    assert _count(page, "count-mine") == 1 and _count(page, "count-unassigned") == 1
    assert _count(page, "queue-vip") == 2 and 'id="queue-general"' not in page
    assert f"T-{ids['mine']}" in page and f"T-{ids['vip']}" not in page  # my tickets only
    queue = (await web_env.client.get("/inbox?view=queue&queue=vip")).text
    assert f"T-{ids['mine']}" in queue and f"T-{ids['vip']}" in queue and f"T-{ids['pending']}" not in queue
    await web_env.login("Sue")
    page = (await web_env.client.get("/inbox")).text
    assert _count(page, "count-mine") == 0 and _count(page, "count-unassigned") == 2
    assert _count(page, "queue-vip") == 2 and _count(page, "queue-general") == 0 and "+1 pending" in page


async def _events(response: httpx.Response, into: list[tuple[str, object]]) -> None:
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            into.append((event, json.loads(line[6:])))


async def _wait_for(events: list, wanted: tuple[str, object], seconds: float = 15.0, after: int = 0) -> None:
    for _ in range(int(seconds / 0.05)):
        if wanted in events[after:]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{wanted} never arrived; got {events}")


async def test_the_live_stream_shows_presence_new_messages_and_queue_changes(live, monkeypatch):
    monkeypatch.setattr(hub_module, "POLL_S", 0.2)
    al = await live.agent("Al", tiers=["VIP"])
    await live.agent("Sue", role="supervisor")
    ids = await _seed(live, al)
    tid = ids["mine"]
    async with httpx.AsyncClient(base_url=live.base_url) as sue, httpx.AsyncClient(base_url=live.base_url) as alc:
        await live.login("Sue", client=sue)
        await live.login("Al", client=alc)
        assert (await alc.get(f"/inbox/live?ticket={ids['pending']}")).status_code == 404  # not Al's to see
        sue_events: list = []
        async with sue.stream("GET", f"/inbox/live?ticket={tid}") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            reader = asyncio.create_task(_events(stream, sue_events))
            try:
                await _wait_for(sue_events, ("presence", []))
                async with alc.stream("GET", f"/inbox/live?ticket={tid}") as al_stream:
                    al_events: list = []
                    al_reader = asyncio.create_task(_events(al_stream, al_events))
                    await _wait_for(sue_events, ("presence", ["Al"]))
                    await _wait_for(al_events, ("presence", ["Sue"]))
                    al_reader.cancel()
                gone = sue_events.index(("presence", ["Al"]))
                await _wait_for(sue_events, ("presence", []), after=gone)  # Al closed the page
                seen = len(sue_events)  # the stream's first state is behind us: what follows is a change
                async with live.app.sessions() as s, s.begin():
                    s.add(
                        Contact(
                            channel="webchat",
                            external_id="w-live-1",
                            direction="in",
                            author="customer",
                            address="v1",
                            customer_id=ids["vera"],
                            ticket_id=tid,
                            text="Any news?",
                        )
                    )
                await _wait_for(sue_events, ("ticket", {"ticket": tid}), after=seen)
                assert not [e for e, _ in sue_events[seen:] if e == "queues"]  # a message changes no count
                seen = len(sue_events)
                async with live.app.sessions() as s, s.begin():
                    (await s.get(Ticket, ids["vip"])).status = "closed"
                queues = None
                for _ in range(300):
                    queues = next((d for e, d in reversed(sue_events[seen:]) if e == "queues"), None)
                    if queues:
                        break
                    await asyncio.sleep(0.05)
                assert queues == {
                    "queues": {"general": {"open": 0, "pending": 1}, "vip": {"open": 1, "pending": 0}},
                    "mine": 0,
                    "unassigned": 1,
                }
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
