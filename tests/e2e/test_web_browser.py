"""The web chat and the dashboard in a real browser (Debian's Chromium, headless): a visitor chats on the demo
page, an agent replies from the console, the supervisor finds, reads and exports the conversation."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sqlalchemy import select

from crm_store.models import Customer, Ticket
from tests.e2e.browser import artifacts, browser  # noqa: F401 - fixtures
from tests.web.conftest import PASSWORD, live, web_env  # noqa: F401 - fixtures

IMG = '<img src=x onerror="window.__xss=1;alert(1)">'
SCRIPT = "<script>window.__xss=2;alert(2)</script>"


async def new_page(browser, dialogs: list[str]):  # noqa: F811
    context = await browser.new_context()
    page = await context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_default_timeout(10_000)
    return page


async def login(page, base: str, who: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=email]", f"{who.lower()}@desk.example")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


async def test_visitor_chats_agent_replies_supervisor_reviews(live, browser, artifacts):  # noqa: F811
    await live.agent("Alice", tiers=["potential"])
    await live.agent("Sue", role="supervisor")
    dialogs: list[str] = []
    base = live.base_url

    # --- the visitor on the demo site
    visitor = await new_page(browser, dialogs)
    await visitor.goto(f"{base}/demo")
    await visitor.click("#td-launcher")
    await visitor.wait_for_selector("#td-status:has-text('online')")
    await visitor.fill("#td-input", "Where is my order 4711?")
    await visitor.press("#td-input", "Enter")
    await visitor.wait_for_selector(".td-bot .td-text")  # the bot's answer or the hand-off acknowledgement
    assert await visitor.locator(".td-visitor.td-sending").count() == 0  # acknowledged
    for text in (IMG, SCRIPT):
        await visitor.fill("#td-input", text)
        await visitor.press("#td-input", "Enter")
    await visitor.locator(".td-visitor:not(.td-sending)").nth(2).wait_for()  # no eval: the page's CSP forbids it
    texts = await visitor.locator(".td-visitor .td-text").all_text_contents()
    assert texts == ["Where is my order 4711?", IMG, SCRIPT]
    assert await visitor.locator("#td-log img, #td-log script").count() == 0

    # --- the agent answers from the console; the visitor sees it live
    async with live.app.sessions() as s:
        ticket_id = await s.scalar(select(Ticket.id))
    await live.console.receive("alice", f"/reply {ticket_id} Your parcel left our warehouse today")
    await visitor.wait_for_selector(".td-agent .td-text:has-text('Your parcel left our warehouse today')")

    # --- a reload keeps the conversation (signed visitor id in localStorage) without doubling anything
    await live.app.outbox.drain()
    await visitor.reload()
    await visitor.wait_for_selector(".td-agent .td-text:has-text('Your parcel left')")
    assert await visitor.locator(".td-visitor").count() == 3
    assert await visitor.locator(".td-agent").count() == 1

    # --- a too-long message is refused with a visible reason
    await visitor.fill("#td-input", "x" * 600)
    await visitor.press("#td-input", "Enter")
    await visitor.wait_for_selector(".td-failed .td-meta:has-text('too long')")

    # --- the supervisor finds the conversation, reads and exports it
    sup = await new_page(browser, dialogs)
    await sup.goto(f"{base}/tickets")
    assert "/login?next=" in sup.url  # not signed in yet
    await login(sup, base, "Sue")
    await sup.goto(f"{base}/contacts")
    await sup.fill("input[name=q]", "4711")
    await sup.select_option("select[name=channel]", "webchat")
    await sup.select_option("select[name=direction]", "in")
    await sup.click("#contact-filters button[type=submit]")
    rows = sup.locator("#contact-table tbody tr")
    assert await rows.count() == 1
    assert "Where is my order 4711?" in await rows.first.inner_text()
    await rows.first.locator("a.ticket-link").click()
    await sup.wait_for_selector(".transcript")
    transcript = await sup.locator(".transcript").inner_text()
    assert "Where is my order 4711?" in transcript and IMG in transcript and SCRIPT in transcript
    assert "Your parcel left our warehouse today" in transcript
    async with sup.expect_download() as dl:
        await sup.click("#export-ticket")
    exported = await asyncio.to_thread(Path(await (await dl.value).path()).read_text, encoding="utf-8")
    assert "Where is my order 4711?" in exported and "Your parcel left our warehouse today" in exported

    # --- the overview draws its charts
    await sup.goto(f"{base}/")
    bars = sup.locator("#chart-channel svg rect.bar")
    assert await bars.count() > 0
    box = await sup.locator("#chart-channel svg").bounding_box()
    assert box and box["width"] > 100 and box["height"] > 50
    await sup.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    assert (artifacts / "dashboard.png").stat().st_size > 10_000

    # --- nothing a visitor wrote ever ran, in the widget or in the dashboard
    for page in (visitor, sup):
        assert await page.evaluate("window.__xss") is None
    assert dialogs == []


async def test_agent_cannot_open_supervisor_pages_or_other_tiers(live, browser):  # noqa: F811
    async with live.app.sessions() as s, s.begin():
        vip = Customer(name="Vera", tier="VIP")
        low = Customer(name="Otto", tier="ordinary")
        s.add_all([vip, low])
    await live.agent("Vic", tiers=["VIP"])
    dialogs: list[str] = []
    page = await new_page(browser, dialogs)
    for path in ("/", "/contacts", "/agents", f"/customers/{vip.id}"):
        await page.goto(live.base_url + path)
        assert re.search(r"/login\?next=", page.url), path
    await login(page, live.base_url, "Vic")
    response = await page.goto(f"{live.base_url}/agents")
    assert response.status == 403 and "Not allowed" in await page.content()
    response = await page.goto(f"{live.base_url}/tiers")
    assert response.status == 403
    response = await page.goto(f"{live.base_url}/customers/{low.id}")
    assert response.status == 404
    response = await page.goto(f"{live.base_url}/customers/{vip.id}")
    assert response.status == 200 and "Vera" in await page.content()
