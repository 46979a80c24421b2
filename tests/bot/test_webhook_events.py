"""Ticket changes made in chat or by the SLA clock reach the configured webhook through the outbox."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from bot.settings import WebSettings
from crm_store.models import OutboxItem, Ticket


async def webhook_events(h) -> list[dict]:
    async with h.app.sessions() as s:
        rows = await s.scalars(select(OutboxItem).where(OutboxItem.channel == "webhook").order_by(OutboxItem.id))
        return [json.loads(r.text) for r in rows]


async def test_reply_take_and_sla_breach_emit_webhook_events(harness_factory):
    from bot.routing.sla_worker import escalation_pass

    # no webhook channel runs in this harness: the events stay in the outbox for inspection (delivery is tested
    # with a real receiver in tests/web/test_webhook.py)
    h = await harness_factory(web=WebSettings(webhook_url="http://127.0.0.1:9/hook", webhook_secret="s3cret"))
    await h.agent("Alice")
    r = await h.ch["telegram"].receive("31", "my invoice is wrong")
    await h.ch["console"].receive("alice", f"/take {r.ticket_id}")
    await h.ch["console"].receive("alice", f"/reply {r.ticket_id} fixing it")
    async with h.app.writer_sessions() as s, s.begin():
        ticket = await s.get(Ticket, r.ticket_id)
        ticket.resolution_due = ticket.created_at - timedelta(minutes=1)
    escalated = await escalation_pass(h.app.sessions, h.app.dispatcher.policy, settings=h.app.settings)
    assert escalated == [r.ticket_id]
    await h.ch["console"].receive("alice", f"/close {r.ticket_id} fixed")
    events = await webhook_events(h)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "ticket.created" and kinds[-1] == "ticket.closed"
    assert {"ticket.assigned", "ticket.replied", "ticket.sla_breached"} <= set(kinds)
    assert all(e["ticket"]["id"] == r.ticket_id for e in events)
    assert len({e["id"] for e in events}) == len(events)


async def test_imported_mail_is_filed_without_paging_anyone_or_starting_a_clock(h):
    await h.agent("Alice")
    r = await h.ch["email"].receive("old@example.com", "a message from last year", external_id="<old-1@example.com>",
                                    meta={"imported": "1", "no_auto_reply": "1", "subject": "Old question"})
    await h.settle()
    async with h.app.sessions() as s:
        ticket = await s.get(Ticket, r.ticket_id)
    assert ticket.handoff_reason and ticket.assignee_id is None and ticket.first_response_due is None
    assert h.ch["console"].sent_to("alice") == [] and h.ch["email"].sent_to("old@example.com") == []
