"""The widget's files in a real browser (Debian's Chromium, headless): the visitor attaches a file with the
Attach button, it is uploaded and named in the message, agents see it as a link in the inbox; the agent's reply with a
file reaches the widget as a link that opens the file. A file over the limit is refused in the widget."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from crm_store.models import Ticket
from tests.e2e.browser import artifacts, browser  # noqa: F401 - fixtures
from tests.web.conftest import PASSWORD, live, web_env  # noqa: F401 - fixtures

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"


async def attach(page, file: dict) -> None:
    """The visitor clicks Attach and picks `file` in the browser's file chooser."""
    async with page.expect_file_chooser() as chooser:
        await page.click("#td-attach")
    await (await chooser.value).set_files(files=[file])


async def test_the_widget_sends_a_file_and_opens_the_agents_file(live, browser, artifacts):  # noqa: F811
    await live.agent("Alice", tiers=["potential"])
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(10_000)
    await page.goto(f"{live.base_url}/demo")
    await page.click("#td-launcher")
    await page.wait_for_selector("#td-status:has-text('online')")

    await attach(page, {"name": "receipt.pdf", "mimeType": "application/pdf", "buffer": PDF})
    own = page.locator(".td-visitor:not(.td-sending) a.td-file")
    await own.wait_for()
    assert await own.text_content() == "receipt.pdf"
    async with live.app.sessions() as s:
        tid = await s.scalar(select(Ticket.id))
    assert tid is not None

    # Alice opens the ticket in the inbox: the visitor's file is a link there; she answers with a file.
    async with httpx.AsyncClient(base_url=live.base_url) as agent:
        await live.login("Alice", PASSWORD, client=agent)
        ticket_page = (await agent.get(f"/tickets/{tid}")).text
        [link] = re.findall(r'href="(/files/[0-9a-f]{32}/receipt.pdf)"', ticket_page)
        assert (await agent.get(link)).content == PDF
        csrf = re.search(r'name="csrf" value="([^"]+)"', ticket_page).group(1)
        key = re.search(r'name="form_key" value="([^"]+)"', ticket_page).group(1)
        sent = await agent.post(
            f"/tickets/{tid}/reply",
            data={"csrf": csrf, "form_key": key, "text": "Signed."},
            files={"file": ("signed.pdf", PDF[::-1], "application/pdf")},
        )
        assert sent.status_code == 303
        reply = page.locator(".td-agent a.td-file")
        await reply.wait_for()
        assert await reply.text_content() == "signed.pdf"
        href = await reply.get_attribute("href")
        assert href.startswith(live.base_url + "/files/") and (await agent.get(href)).content == PDF[::-1]
    await page.screenshot(path=str(artifacts / "widget-files.png"))

    # Too big for the chat: the widget says so and sends nothing.
    await attach(page, {"name": "scan.tiff", "mimeType": "image/tiff", "buffer": b"x" * (10 * 1024 * 1024 + 1)})
    await page.wait_for_selector("#td-notice:has-text('scan.tiff is over 10 MB; nothing was sent.')")
    assert await page.locator(".td-visitor").count() == 1
    await context.close()
