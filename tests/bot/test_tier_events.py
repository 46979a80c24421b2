"""`customer.tier_changed` webhooks: one per customer whose tier a run changed, queued in the run's transaction
with a stable id, none without a webhook URL and none when nothing changed (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.cli.seed import seed_database
from bot.routing import tier_service
from bot.settings import Settings, WebSettings
from channels.webhook import customer_event_payload
from crm_store.models import OutboxItem, TierChange

TODAY = datetime(2026, 6, 1, tzinfo=UTC)


async def webhook_rows(db) -> list[OutboxItem]:
    async with db.sessions() as s:
        return list(await s.scalars(select(OutboxItem).where(OutboxItem.channel == "webhook")))


async def test_each_tier_change_queues_one_signed_event_and_a_rerun_none(db):
    settings = Settings(
        database_url=db.url, database_schema=db.schema, web=WebSettings(webhook_url="http://127.0.0.1:9/hooks")
    )
    await seed_database(db.sessions, 150, 1500, seed=6, today=TODAY)
    summary = await tier_service.compute_and_store(db.sessions, method="quantiles", as_of=TODAY, settings=settings)
    rows = await webhook_rows(db)
    async with db.sessions() as s:
        changes = {
            c.customer_id: c for c in await s.scalars(select(TierChange).where(TierChange.run_id == summary.run_id))
        }
    assert len(rows) == summary.changed == len(changes) > 0
    for row in rows:
        body = json.loads(row.text)
        cid = body["customer"]["id"]
        assert body["event"] == "customer.tier_changed" and row.customer_id == cid
        assert body["id"] == f"webhook:C-{cid}:customer.tier_changed:run{summary.run_id}" == row.idempotency_key
        assert (body["data"]["old_tier"], body["data"]["new_tier"]) == (changes[cid].old_tier, changes[cid].new_tier)
        assert row.recipient == "http://127.0.0.1:9/hooks" and row.audience == "event"
    again = await tier_service.compute_and_store(db.sessions, method="quantiles", as_of=TODAY, settings=settings)
    assert again.changed == 0 and len(await webhook_rows(db)) == len(rows)


async def test_without_a_webhook_url_nothing_is_queued(sqlite_db):
    await seed_database(sqlite_db.sessions, 60, 600, seed=7, today=TODAY)
    settings = Settings(database_url=sqlite_db.url)
    summary = await tier_service.compute_and_store(
        sqlite_db.sessions, method="quantiles", as_of=TODAY, settings=settings
    )
    assert summary.changed > 0 and await webhook_rows(sqlite_db) == []


def test_unknown_customer_events_are_refused():
    with pytest.raises(ValueError, match=r"unknown webhook event 'customer\.deleted'"):
        customer_event_payload("customer.deleted", customer_id=1)
