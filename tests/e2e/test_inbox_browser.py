"""The web inbox in a real browser (Debian's Chromium, headless), two agents in two browser contexts and a
visitor in a third: the visitor's message arrives in the inbox live, the first agent answers with a canned
response and a file, the visitor and the second agent see the answer without reloading, and the closed ticket's rating
buttons in the widget rate it. Screenshots of the inbox and the ticket page, desktop and phone width, are
saved in the test's temporary folder (printed)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from crm_store.models import Agent, Ticket
from crm_store.repositories import canned as canned_repo
from tests.e2e.browser import browser  # noqa: F401 - fixtures
from tests.e2e.test_web_browser import login, new_page
from tests.web.conftest import live, web_env  # noqa: F401 - fixtures

CANNED = "Your parcel left our warehouse today."


async def _ticket(live) -> Ticket:  # noqa: F811
    for _ in range(200):
        async with live.app.sessions() as s:
            ticket = await s.scalar(select(Ticket))
        if ticket is not None and ticket.handoff_reason:
            return ticket
        await asyncio.sleep(0.05)
    raise AssertionError("no ticket was opened")


async def _shots(page, folder, name: str) -> None:
    for label, width in (("desktop", 1280), ("phone", 390)):
        await page.set_viewport_size({"width": width, "height": 900})
        path = folder / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5_000
        if label == "phone":  # nothing wider than the phone's screen
            assert await page.evaluate("document.documentElement.scrollWidth") <= width + 1
    await page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)  # the browser's part is the same on SQLite
async def test_two_agents_and_a_visitor_work_one_ticket_live(live, browser, tmp_path):  # noqa: F811
    await live.agent("Al", tiers=["potential"])
    await live.agent("Bo", tiers=["potential"])
    async with live.app.sessions() as s, s.begin():
        await canned_repo.put(s, "shipped", CANNED)
    dialogs: list[str] = []
    base = live.base_url
    pages = {name: await new_page(browser, dialogs) for name in ("Al", "Bo")}
    for name, page in pages.items():
        await login(page, base, name)
        await page.goto(f"{base}/inbox")
        await page.wait_for_selector("#queues")

    visitor = await new_page(browser, dialogs)
    await visitor.goto(f"{base}/demo")
    await visitor.click("#td-launcher")
    await visitor.wait_for_selector("#td-status:has-text('online')")
    await visitor.fill("#td-input", "I need a person about order 4711")
    await visitor.press("#td-input", "Enter")
    await visitor.wait_for_selector(".td-bot .td-text")

    ticket = await _ticket(live)
    async with live.app.sessions() as s:
        holder = await s.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
    first = holder.name if holder else "Al"
    second = "Bo" if first == "Al" else "Al"
    a1, a2 = pages[first], pages[second]
    await a1.evaluate("window.__same = 1")
    link = a1.locator(f"#queue-{ticket.queue}")
    await link.wait_for()  # the queue appeared without a reload
    assert await a1.evaluate("window.__same") == 1
    await _shots(a1, tmp_path, "inbox")
    await link.click()
    await a1.click(f"a[href='/tickets/{ticket.id}']")
    await a1.wait_for_selector("#reply-form")
    await a2.goto(f"{base}/tickets/{ticket.id}")
    await a1.wait_for_selector(f"#presence:has-text('{second} is viewing')")
    await a2.wait_for_selector(f"#presence:has-text('{first} is viewing')")
    await a2.evaluate("window.__same = 1")

    for key, focused in (("n", "note-text"), ("r", "reply-text")):  # shortcuts, outside any field
        await a1.locator("h1").click()
        await a1.keyboard.press(key)
        assert await a1.evaluate("document.activeElement.id") == focused
    await a1.select_option("#canned", "shipped")
    label = {"name": "label.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 shipping label " * 100}
    await a1.set_input_files("#reply-file", files=[label])
    await a1.click("#reply-form button[type=submit]")
    await visitor.wait_for_selector(f".td-agent .td-text:has-text('{CANNED}')")
    said = await visitor.locator(".td-agent .td-text").last.inner_text()
    assert "label.pdf (2 KB): http" in said and "/files/" in said
    await a2.wait_for_selector(f"#transcript-list .msg-text:has-text('{CANNED}')")
    assert await a2.evaluate("window.__same") == 1  # agent 2 never reloaded
    await a1.wait_for_selector(f"#transcript-list .msg-text:has-text('{CANNED}')")
    await _shots(a1, tmp_path, "ticket")

    await a1.click("#close-form button[type=submit]")
    await a1.wait_for_selector(".status-closed")
    await visitor.click(".td-choice:has-text('5')")
    for _ in range(200):
        async with live.app.sessions() as s:
            rated = (await s.get(Ticket, ticket.id)).csat
        if rated is not None:
            break
        await asyncio.sleep(0.05)
    assert rated == 5
    assert dialogs == []
    print(f"screenshots in {tmp_path}")
