"""A database outage under stream intake, counted: PostgreSQL (a private server) stops while messages keep
arriving and their entries are redelivered every half second. Nothing is lost, stored twice or sent to the dead
letters (failures in an outage never count as poison), and the log says each kind of error once per interval
instead of once per message — the figures compare a handler with the repeat filter to one without."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.core.messages import InboundMessage
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings
from crm_store.engine import upgrade
from crm_store.models import Contact
from tests.fault.test_intake_redis import CountingHandler, fault_row, until

pytestmark = pytest.mark.timeout(90)

MESSAGES = 300
DOWN_S = 5.0


async def test_a_database_outage_loses_nothing_parks_nothing_and_does_not_flood_the_log(
    private_postgres, private_redis
):
    await upgrade(private_postgres.url)
    settings = Settings(
        database_url=private_postgres.url,
        redis_url=private_redis.url,
        redis_prefix="tdoutage",
        nlu=NluSettings(enabled=False),
        outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05),
        dispatch=DispatchSettings(
            ingest="stream", batch_wait_ms=1.0, stream_claim_idle_s=0.5, stream_max_deliveries=2, stream_stall_s=30.0
        ),
    )
    counters = [CountingHandler(limited=False), CountingHandler(limited=True)]
    for handler in counters:
        logging.getLogger().addHandler(handler)
    app = await App(settings).start()
    try:
        await asyncio.to_thread(private_postgres.stop)
        for i in range(MESSAGES):
            await app.deliver(
                InboundMessage.build(
                    channel="webchat", external_id=f"o{i}", sender=f"v{i % 50}", text=f"during the outage {i}"
                )
            )
        await asyncio.sleep(DOWN_S)
        during = [h.count for h in counters]
        await asyncio.to_thread(private_postgres.start)
        back = time.monotonic()
        try:
            await until(lambda: _stored(app, MESSAGES), 60)
        except AssertionError:
            raise AssertionError(f"not all stored: {await _state(app)}") from None
        recovered = time.monotonic() - back
        async with app.sessions() as s:
            rows = int(await s.scalar(select(func.count()).select_from(Contact).where(Contact.direction == "in")))
        dead = await app.ingest.dead.count()
        fault_row(
            f"PostgreSQL stopped {DOWN_S:.0f} s under stream intake",
            sent=MESSAGES,
            stored=MESSAGES,
            lost=0,
            duplicate_rows=rows - MESSAGES,
            dead_lettered=dead,
            recovery_s=f"{recovered:.1f}",
            log_lines_in_outage_unlimited=during[0],
            log_lines_in_outage_limited=during[1],
        )
        assert rows == MESSAGES and dead == 0 and await app.ingest.waiting() == 0
        assert during[1] * 5 < during[0]
    finally:
        for handler in counters:
            logging.getLogger().removeHandler(handler)
        await app.stop()


async def _stored(app: App, n: int) -> bool:
    try:
        async with app.sessions() as s:
            return int(await s.scalar(select(func.count(func.distinct(Contact.external_id))))) >= n
    except Exception:  # the database is still starting
        return False


async def _state(app: App) -> dict:
    return {
        "health": app.health(),
        "pending": await app.ingest.pending(),
        "waiting": await app.ingest.waiting(),
        "handled": app.ingest.handled,
        "restarts": app.intake.restarts,
    }
