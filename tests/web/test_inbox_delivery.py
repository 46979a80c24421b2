"""A web reply says "queued", never "sent", and the ticket page shows each agent message as queued, delivered
or failed (with why), from what the outbox recorded; on both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.core.delivery_notices import reply_state
from bot.core.messages import DeliveryError
from bot.core.outbound import outbox_row
from crm_store.models import Customer, Ticket
from crm_store.repositories import outbox as outbox_repo


def test_the_states_follow_what_the_outbox_recorded():
    assert reply_state("pending").label == "queued"
    assert reply_state("sent").label == "delivered"
    assert reply_state("failed", "chat not found").label == "failed (chat not found)"
    assert reply_state("failed").label == "failed (failed)"


def _field(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]+)"', page).group(1)


def _state_of(page: str, text: str) -> str:
    """The delivery mark in the head of the transcript message whose text is `text`."""
    found = re.search(
        r'<span class="delivery delivery-\w+">([^<]*)</span>\s*</div>\s*<div class="msg-text">' + re.escape(text) + "<",
        page,
    )
    return found.group(1) if found else ""


async def _reply(env, tid: int, text: str):
    page = (await env.client.get(f"/tickets/{tid}")).text
    form = {"csrf": _field(page, "csrf"), "form_key": _field(page, "form_key"), "text": text}
    return await env.client.post(f"/tickets/{tid}/reply", data=form)


async def test_a_reply_is_queued_then_delivered_or_failed_with_the_reason(web_env):
    await web_env.agent("Al")
    result = await web_env.console.receive("cust-7", "My parcel never came")
    await web_env.app.outbox.drain()
    tid = result.ticket_id
    async with web_env.app.writer_sessions() as s, s.begin():
        (await s.get(Customer, (await s.get(Ticket, tid)).customer_id)).name = "Anna"
    await web_env.login("Al")

    posted = await _reply(web_env, tid, "It left the depot today.")
    assert posted.status_code == 303 and posted.headers["location"] == f"/tickets/{tid}?queued=1#transcript"
    page = (await web_env.client.get(posted.headers["location"])).text
    assert f"Queued for Anna on T-{tid}" in page and "Sent to" not in page
    await web_env.app.outbox.drain()
    page = (await web_env.client.get(f"/tickets/{tid}")).text
    assert _state_of(page, "It left the depot today.") == "delivered"
    assert 'id="queued"' not in page  # the notice belongs to the post, not to every later look

    web_env.console.fail_next.append(DeliveryError("chat not found", permanent=True))
    await _reply(web_env, tid, "Are you still there?")
    await web_env.app.outbox.drain()
    page = (await web_env.client.get(f"/tickets/{tid}")).text
    assert _state_of(page, "Are you still there?") == "failed (chat not found)"
    assert _state_of(page, "It left the depot today.") == "delivered"

    later = datetime.now(UTC) + timedelta(hours=1)  # a reply the outbox will try again later: still queued
    async with web_env.app.writer_sessions() as s, s.begin():
        row = outbox_row(
            key="later-1",
            channel="console",
            recipient="cust-7",
            text="One more thing.",
            author="agent",
            at=later,
            ticket_id=tid,
            customer_id=None,
        )
        await outbox_repo.enqueue(s, [row])
    page = (await web_env.client.get(f"/tickets/{tid}")).text
    assert _state_of(page, "One more thing.") == "queued"
