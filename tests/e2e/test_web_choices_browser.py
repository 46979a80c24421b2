"""The bot's question in the widget, in a real browser (Debian's Chromium, headless): buttons, not a numbered
list; a click shows the chosen label as the visitor's message, disables the buttons and brings the answer."""

from __future__ import annotations

from sqlalchemy import select

from bot.assistant.faq import FaqResponder
from crm_store.clarifications import Clarification
from tests.bot.test_clarify_flow import RESPONSES, ScriptedClassifier
from tests.e2e.browser import browser  # noqa: F401 - fixtures
from tests.web.conftest import live, web_env  # noqa: F401 - fixtures


async def test_a_visitor_clicks_a_choice_and_gets_the_answer(live, browser):  # noqa: F811
    live.app.dispatcher.responder = FaqResponder(ScriptedClassifier(), RESPONSES)
    page = await (await browser.new_context()).new_page()
    page.set_default_timeout(10_000)
    await page.goto(f"{live.base_url}/demo")
    await page.click("#td-launcher")
    await page.wait_for_selector("#td-status:has-text('online')")
    await page.fill("#td-input", "how long and how much is shipping?")
    await page.press("#td-input", "Enter")
    await page.wait_for_selector(".td-bot .td-choice")
    assert await page.locator(".td-bot .td-choice").all_text_contents() == [
        "Delivery times",
        "Prices",
        "Talk to a person",
    ]
    assert "1." not in await page.locator(".td-bot .td-text").first.text_content()
    await page.click(".td-choice:has-text('Prices')")
    await page.wait_for_selector(f".td-bot .td-text:has-text('{RESPONSES.answer('pricing', 'en')[:30]}')")
    assert await page.locator(".td-visitor .td-text").all_text_contents() == [
        "how long and how much is shipping?",
        "Prices",
    ]
    assert await page.locator(".td-choice:disabled").count() == 3
    async with live.app.sessions() as s:
        row = await s.scalar(select(Clarification))
    assert (row.chosen_intent, row.review) == ("pricing", "pending")


async def test_the_buttons_of_an_open_question_come_back_after_a_reload(live, browser):  # noqa: F811
    """The page reloads while the question waits: its buttons are drawn again from the history and a press
    answers; reloaded once more, the answered question is text only and the press reads as its label."""
    live.app.dispatcher.responder = FaqResponder(ScriptedClassifier(), RESPONSES)
    page = await (await browser.new_context()).new_page()
    page.set_default_timeout(10_000)
    await page.goto(f"{live.base_url}/demo")
    await page.click("#td-launcher")
    await page.wait_for_selector("#td-status:has-text('online')")
    await page.fill("#td-input", "how long and how much is shipping?")
    await page.press("#td-input", "Enter")
    await page.wait_for_selector(".td-bot .td-choice")
    await live.app.outbox.drain()

    await page.reload()
    await page.wait_for_selector("#td-status:has-text('online')")
    await page.wait_for_selector(".td-bot .td-choice")
    assert await page.locator(".td-bot .td-choice").all_text_contents() == [
        "Delivery times",
        "Prices",
        "Talk to a person",
    ]
    await page.click(".td-choice:has-text('Delivery times')")
    answer = RESPONSES.answer("delivery", "en")[:30]
    await page.wait_for_selector(f".td-bot .td-text:has-text('{answer}')")
    async with live.app.sessions() as s:
        row = await s.scalar(select(Clarification))
    assert (row.status, row.chosen_intent) == ("chosen", "delivery")

    await live.app.outbox.drain()
    await page.reload()
    await page.wait_for_selector(f".td-bot .td-text:has-text('{answer}')")
    assert await page.locator(".td-choice").count() == 0
    assert await page.locator(".td-visitor .td-text").all_text_contents() == [
        "how long and how much is shipping?",
        "Delivery times",
    ]
