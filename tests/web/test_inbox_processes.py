"""Two web processes of one desk (two apps, each served by its own uvicorn on its own port, against the same
database and Redis): an agent on one sees who views the ticket on the other, a form posted to both at once is
written once (with Redis, and without it by the database's form key), and the poller reads the database once
per tick for all the pages a process serves."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from sqlalchemy import event, func, select

from bot.app import App
from bot.web import create_web_app
from bot.web.inbox import hub as hub_module
from channels.memory import MemoryChannel
from channels.webchat import WebChatChannel
from crm_store.inbox_keys import InboxFormKey
from crm_store.models import OutboxItem, TicketEvent
from tests.web.conftest import WebEnv, free_port, web_settings
from tests.web.test_inbox_live import _events, _seed, _wait_for


@contextlib.asynccontextmanager
async def _process(settings) -> AsyncIterator[WebEnv]:
    """One web process: a started App and its web app (`env.web`, the one served) on uvicorn on a free port."""
    webchat, console = WebChatChannel(max_message_chars=500), MemoryChannel("console")
    app = App(settings, channels=[webchat, console])
    await app.start()
    web = create_web_app(app)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    env = WebEnv(
        app, web, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}"), webchat, console, f"http://127.0.0.1:{port}"
    )
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                if (await env.client.get("/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.05)
        yield env
    finally:
        server.should_exit = True
        await env.client.aclose()
        await asyncio.gather(task, return_exceptions=True)
        await app.stop()


@contextlib.asynccontextmanager
async def _two_processes(db, tmp_path, redis: tuple[str, str] | None) -> AsyncIterator[tuple[WebEnv, WebEnv]]:
    settings = web_settings(db, tmp_path)  # one state folder: one signing key, as two processes of one desk share
    if redis is not None:
        settings = settings.model_copy(update={"redis_url": redis[0], "redis_prefix": redis[1]})
    async with _process(settings) as one, _process(settings) as two:
        yield one, two


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_agents_on_two_processes_see_each_other_on_a_ticket(db, tmp_path, redis_url, redis_prefix, monkeypatch):
    monkeypatch.setattr(hub_module, "POLL_S", 0.2)
    async with _two_processes(db, tmp_path, (redis_url, redis_prefix)) as (one, two):
        al = await one.agent("Al", tiers=["VIP"])
        await one.agent("Sue", role="supervisor")
        tid = (await _seed(one, al))["mine"]
        await one.login("Sue")
        await two.login("Al")
        sue_events: list = []
        async with one.client.stream("GET", f"/inbox/live?ticket={tid}") as sue_stream:
            sue_reader = asyncio.create_task(_events(sue_stream, sue_events))
            try:
                await _wait_for(sue_events, ("presence", []))
                async with two.client.stream("GET", f"/inbox/live?ticket={tid}") as al_stream:
                    al_events: list = []
                    al_reader = asyncio.create_task(_events(al_stream, al_events))
                    await _wait_for(sue_events, ("presence", ["Al"]))
                    await _wait_for(al_events, ("presence", ["Sue"]))
                    al_reader.cancel()
                gone = sue_events.index(("presence", ["Al"]))
                await _wait_for(sue_events, ("presence", []), after=gone)  # Al closed the page on process two
            finally:
                sue_reader.cancel()
                await asyncio.gather(sue_reader, return_exceptions=True)


def _field(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)


async def _count(env: WebEnv, statement) -> int:
    async with env.app.sessions() as s:
        return int(await s.scalar(statement))


@pytest.mark.parametrize("shared", ["redis", "database only"])
async def test_a_form_posted_to_two_processes_at_once_is_written_once(db, tmp_path, redis_url, redis_prefix, shared):
    async with _two_processes(db, tmp_path, (redis_url, redis_prefix) if shared == "redis" else None) as (one, two):
        await one.agent("Al", role="supervisor")
        tid = (await one.console.receive("cust-1", "Where is my parcel?")).ticket_id
        await one.login("Al")
        two.client.cookies = one.client.cookies  # one browser, its double click landing on both processes
        page = (await one.client.get(f"/tickets/{tid}")).text
        form = {"csrf": _field(page, "csrf"), "form_key": _field(page, "form_key"), "text": "It left today."}
        posts = await asyncio.gather(*(env.client.post(f"/tickets/{tid}/reply", data=form) for env in (one, two)))
        assert [p.status_code for p in posts] == [303, 303]
        again = await two.client.post(f"/tickets/{tid}/reply", data=form)  # the browser resends it later
        assert again.status_code == 303
        replies = (
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.ticket_id == tid, OutboxItem.audience == "customer", OutboxItem.author == "agent")
        )
        assert await _count(one, replies) == 1
        events = (
            select(func.count())
            .select_from(TicketEvent)
            .where(TicketEvent.ticket_id == tid, TicketEvent.kind == "replied")
        )
        assert await _count(one, events) == 1
        assert await _count(two, select(func.count()).select_from(InboxFormKey)) == 1
        refused = {**form, "form_key": "b" * 32, "text": "x" * 100_001}
        for env in (two, one):  # refused, and refused again: the refusal did not take the key
            answer = await env.client.post(f"/tickets/{tid}/reply", data=refused)
            assert answer.status_code == 422 and "100,001 characters" in answer.text
        assert await _count(one, select(func.count()).select_from(InboxFormKey)) == 1


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_the_poller_reads_once_per_tick_for_all_open_pages(db, tmp_path, redis_url, redis_prefix, monkeypatch):
    monkeypatch.setattr(hub_module, "POLL_S", 0.1)
    async with _two_processes(db, tmp_path, (redis_url, redis_prefix)) as (one, _two):
        al = await one.agent("Al", tiers=["VIP"])
        ids = await _seed(one, al)
        await one.login("Al")
        hub = hub_module.live_hub(one.web)
        per_tick: dict[int, int] = {}

        def count(*args: object) -> None:  # statements the poller sends, by the tick they belong to
            task = asyncio.current_task()
            if task is not None and task.get_name() == hub_module.POLLER:
                per_tick[hub.ticks] = per_tick.get(hub.ticks, 0) + 1

        urls = ["/inbox/live", f"/inbox/live?ticket={ids['mine']}", f"/inbox/live?ticket={ids['vip']}"] * 3
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(one.client.stream("GET", url)) for url in urls]
            got: list[list] = [[] for _ in streams]
            readers = [asyncio.create_task(_events(s, g)) for s, g in zip(streams, got, strict=True)]
            try:
                for _ in range(200):
                    if len(hub.pages) == len(urls) and all(got):
                        break
                    await asyncio.sleep(0.05)
                assert len(hub.pages) == len(urls) and all(g[0][0] == "queues" for g in got)
                engine = one.app.engine.sync_engine
                event.listen(engine, "before_cursor_execute", count)
                try:
                    start = hub.ticks
                    for _ in range(400):
                        if hub.ticks >= start + 6:
                            break
                        await asyncio.sleep(0.05)
                finally:
                    event.remove(engine, "before_cursor_execute", count)
                whole = [n for tick, n in sorted(per_tick.items()) if start < tick < max(per_tick)]
                assert len(whole) >= 4 and set(whole) == {1}  # nine pages, one statement a tick
            finally:
                for r in readers:
                    r.cancel()
                await asyncio.gather(*readers, return_exceptions=True)


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_a_dropped_page_ends_its_stream_and_a_stuck_one_is_cut_off(db, tmp_path, redis_url, redis_prefix):
    settings = web_settings(db, tmp_path).model_copy(update={"redis_url": redis_url, "redis_prefix": redis_prefix})
    async with _process(settings) as one:
        al = await one.agent("Al", tiers=["VIP"])
        tid = (await _seed(one, al))["mine"]
        await one.login("Al")
        hub = hub_module.live_hub(one.web)
        for cut in (False, True):
            got: list = []
            async with one.client.stream("GET", f"/inbox/live?ticket={tid}") as stream:
                reader = asyncio.create_task(_events(stream, got))
                await _wait_for(got, ("presence", []))
                [page] = hub.pages
                if cut:
                    page.cut_off()  # what a dropped page still blocked on its client gets
                else:
                    hub.drop(page)
                done = await asyncio.wait_for(asyncio.gather(reader, return_exceptions=True), 10)
            assert cut or done == [None]  # dropped: the stream ended cleanly, the browser reconnects
            assert hub.pages == [] and page.ended
            assert (await hub.presence.viewers([tid]))[tid] == []  # it left the ticket either way
