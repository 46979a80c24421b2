"""The conversation-takeover attempt in a real browser (Debian's Chromium) against the real web app: a visitor
types a VIP customer's email into the widget. They get a ticket of their own, never the customer's replies, and
a code mailed (through aiosmtpd) to the real address; the identity links only when that code is typed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.app import App
from bot.settings import DispatchSettings, EmailSettings, NluSettings, OutboxSettings, Settings, WebSettings
from bot.web import serve
from channels.email import EmailChannel
from channels.memory import MemoryChannel
from channels.webchat import WebChatChannel
from crm_store.models import Contact, Customer, OutboxItem, Ticket
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import audit
from crm_store.repositories import customers as customers_repo
from tests.e2e.browser import browser  # noqa: F401 - fixture
from tests.e2e.mailservers import SmtpRelay, smtp_relay_fixture  # noqa: F401 - fixture
from tests.web.conftest import free_port

DESK = "support@desk.test"
VERA = "vera@example.com"


@dataclass
class Site:
    app: App
    base_url: str
    console: MemoryChannel
    telegram: MemoryChannel


@pytest.fixture
async def site(db, tmp_path: Path, smtp_relay: SmtpRelay) -> AsyncIterator[Site]:
    settings = Settings(
        database_url=db.url, database_schema=db.schema, state_dir=str(tmp_path / "state"),
        nlu=NluSettings(enabled=False), outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05),
        dispatch=DispatchSettings(batch_wait_ms=1.0), web=WebSettings(max_message_chars=500),
        email=EmailSettings(address=DESK, attachment_dir=str(tmp_path / "files")),
    )
    console, telegram = MemoryChannel("console"), MemoryChannel("telegram")
    mail = EmailChannel(address=DESK, from_name="Support", attachment_dir=str(tmp_path / "files"),
                        **smtp_relay.settings())
    app = App(settings, channels=[WebChatChannel(max_message_chars=500), console, telegram, mail])
    await app.start()
    port = free_port()
    task = asyncio.create_task(serve(app, "127.0.0.1", port))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as probe:
        for _ in range(100):
            try:
                if (await probe.get(f"{base}/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    try:
        yield Site(app, base, console, telegram)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await app.stop()


async def bot_says(page, text: str) -> None:
    await page.wait_for_selector(f".td-bot .td-text:has-text({text!r})")


async def test_a_typed_email_takes_nothing_over_until_its_code(site, browser, smtp_relay):  # noqa: F811
    app = site.app
    async with app.sessions() as s, s.begin():
        vera = await customers_repo.create_customer(s, name="Vera", tier="VIP",
                                                    identities={"email": VERA, "telegram": "5005"})
        await agents_repo.add_agent(s, name="Alice", role="agent", addresses={"console": "alice"},
                                    tiers=["VIP", "potential"])
    owner_ticket = (await site.telegram.receive("5005", "my order 88 has not arrived")).ticket_id

    page = await (await browser.new_context()).new_page()
    page.set_default_timeout(10_000)
    await page.goto(f"{site.base_url}/demo")
    await page.click("#td-launcher")
    await page.wait_for_selector("#td-status:has-text('online')")
    await page.fill("#td-input", "Where is my order 88? Send the refund to my card")
    await page.press("#td-input", "Enter")
    await page.wait_for_selector(".td-bot .td-text")
    await page.fill("#td-email", "Vera@Example.com")
    await page.click("#td-email-save")
    await page.wait_for_selector("#td-notice:has-text('mailed a 6-digit code')")
    await bot_says(page, "type here the 6-digit code")

    # the code mail reaches the real address only, filed under the visitor who asked
    [mail] = await smtp_relay.handler.wait_for(1)
    assert smtp_relay.handler.envelopes[0][1] == [VERA] and mail["To"] == VERA
    code = re.search(r"\b(\d{6})\b", mail.get_content()).group(1)
    async with app.sessions() as s:
        visitor_ticket = await s.scalar(select(Ticket).where(Ticket.id != owner_ticket))
        sent = await s.scalar(select(OutboxItem).where(OutboxItem.channel == "email"))
    impostor = visitor_ticket.customer_id
    assert impostor != vera.id and visitor_ticket.tier_at_open == "potential"
    assert (sent.customer_id, sent.ticket_id, sent.recipient, sent.audience) == (impostor, None, VERA, "customer")

    # the agent answers Vera: it goes to her Telegram, never into the visitor's widget
    await site.console.receive("alice", f"/reply {owner_ticket} Vera, your order 88 ships today")
    await site.telegram.wait_for(lambda m: "order 88 ships" in m.text and m.recipient == "5005")
    await app.outbox.drain()
    await page.reload()
    await page.wait_for_selector(".td-visitor .td-text:has-text('Where is my order 88?')")
    assert "ships today" not in await page.locator("#td-log").inner_text()
    async with app.sessions() as s:
        on_owner = {c.customer_id for c in await s.scalars(select(Contact).where(Contact.ticket_id == owner_ticket))}
        assert on_owner == {vera.id} and (await s.get(Customer, impostor)).merged_into_id is None

    # a wrong code links nothing; the mailed one does, and the link is audited
    if not await page.locator("#td-input").is_visible():
        await page.click("#td-launcher")
    await page.fill("#td-input", "000000" if code != "000000" else "111111")
    await page.press("#td-input", "Enter")
    await bot_says(page, "That code is not right")
    async with app.sessions() as s:
        assert (await s.get(Customer, impostor)).merged_into_id is None
    await page.fill("#td-input", code)
    await page.press("#td-input", "Enter")
    await bot_says(page, f"{VERA} is confirmed and linked")
    async with app.sessions() as s:
        assert (await s.get(Customer, impostor)).merged_into_id == vera.id
        [entry] = await audit.entries(s, action="identity_linked")
    assert entry.subject == f"customer:{vera.id}" and entry.data["via"] == "code"
