"""The ingestion bench counts honestly: distinct messages only (redeliveries cost work but are not throughput),
replies only once the outbox worker recorded them as sent, and never the baseline's own rows."""

from __future__ import annotations

from sqlalchemy import func, insert, select

from bench.ingest import CHANNELS, counts, direct_burst, distinct, figures, make_messages, register_agents
from bench.ingest_rows import TABLES, same_rows
from bot.core.messages import InboundMessage
from bot.settings import NluSettings, Settings
from crm_store.models import Contact


def test_the_workload_redelivers_the_share_asked_and_mixes_questions_and_requests():
    msgs = make_messages(200, 20, 0.1, ["where is my order?"], faq_share=0.5)
    assert len(msgs) == 200 and distinct(msgs) == 180  # the last 20 are redeliveries of earlier ones
    assert {(m.channel, m.external_id) for m in msgs[180:]} <= {(m.channel, m.external_id) for m in msgs[:180]}
    questions = sum(m.text == "where is my order?" for m in msgs[:180])
    assert 60 < questions < 120
    assert {m.sender for m in msgs} <= {f"cust{i}" for i in range(20)}


def test_figures_divide_distinct_stored_messages_and_sent_replies_by_the_window():
    msgs = [InboundMessage.build(channel="telegram", external_id=f"m{i % 8}", sender="c", text="x") for i in range(10)]
    tally = {"stored": 8, "outbox_sent": 12, "outbox_pending": 0}
    result = figures({"seconds": 2.0}, tally, msgs, before=30.0, after=10.0, same=16.0)
    assert result["stored_msgs_per_s"] == 4.0 and result["replies_per_s"] == 6.0
    assert result["same_rows_msgs_per_s"] == 16.0 and result["ratio_same_rows"] == 0.25
    assert result["baseline_rows_per_s"] == 20.0 and result["ratio"] == 0.2
    assert (result["offered"], result["distinct"]) == (10, 8)


async def test_a_burst_stores_each_distinct_message_once_and_counts_replies_recorded_as_sent(db):
    await register_agents(db.url, db.schema, 2, CHANNELS)
    async with db.sessions() as s, s.begin():  # a baseline row: never counted as the workload's
        await s.execute(
            insert(Contact.__table__),
            [
                {
                    "channel": "telegram",
                    "external_id": "b0a-m1",
                    "direction": "in",
                    "author": "customer",
                    "text": "x",
                    "attachments": [],
                }
            ],
        )
    msgs = make_messages(40, 8, 0.25, [])
    settings = Settings(database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False))
    run = await direct_burst(settings, msgs, in_flight=10)
    tally = await counts(db.url, db.schema)
    assert tally["stored"] == distinct(msgs) == 30
    assert tally.get("outbox_pending", 0) == 0 and tally.get("outbox_failed", 0) == 0
    assert tally["outbox_sent"] == run["memory_sent"] > 0  # every reply sent is recorded as sent, and only those

    wrote = {t.name: await _rows(db, t) for t in TABLES}
    assert await same_rows(db.url, db.schema, 30, "b0c-", skip="b0a-", batch=7) > 0  # five transactions
    again = {t.name: await _rows(db, t) for t in TABLES}
    assert again["contacts"] == 2 * wrote["contacts"] - 1  # the baseline's own row is not copied
    assert all(again[t] == 2 * wrote[t] > 0 for t in ("tickets", "outbox", "ticket_events"))
    assert (await counts(db.url, db.schema))["stored"] == 30  # copies are marked: never the workload's messages


async def _rows(db, table) -> int:
    async with db.sessions() as s:
        return await s.scalar(select(func.count()).select_from(table))
