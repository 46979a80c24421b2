"""The inbound stream as a dependency the consumer recovers from, and poison that never blocks it: a lost stream
and group are recreated, an entry that keeps failing goes to the dead letters with its reason (and comes back
with `tierdesk dead retry`), a consumer that stalls is restarted by the watchdog, and /readyz says why."""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio as aioredis
from sqlalchemy import func, select

from bot.app import App
from bot.core.dead_letters import is_poison, kills_workers
from bot.core.ingest import StreamIngest, encode
from bot.core.ingest import log as ingest_log
from bot.core.intake_watch import IntakeWatch, stall_reason
from bot.core.log_limit import limit_repeats
from bot.core.messages import InboundMessage
from bot.settings import DispatchSettings
from crm_store.models import Contact
from tests.bot.conftest import settings_for


def test_an_entry_is_poison_only_after_max_deliveries_and_not_in_an_outage():
    assert not is_poison(3, 3, outage=False)  # within the allowance
    assert is_poison(4, 3, outage=False)
    assert not is_poison(40, 3, outage=True)  # a failure while the database is down says nothing of the entry
    assert not kills_workers(6, 3, None) and kills_workers(7, 3, None)  # no try ever finished: parked untried
    assert not kills_workers(70, 3, "StoreUnavailable: x")  # a try finished: it is tried (and judged) again


def test_stall_reason_reads_what_the_watchdog_sees():
    assert stall_reason(False, 0.4, 60, "") == ""
    assert stall_reason(True, 0.4, 60, "") == "the inbound stream consumer stopped"
    assert stall_reason(False, 0.4, 60, "Redis unreachable: ConnectionError") == "Redis unreachable: ConnectionError"
    assert stall_reason(False, 61, 60, "") == "the inbound stream consumer made no progress for 61s"


def _stream_settings(db, redis_url: str, redis_prefix: str, **dispatch):
    return settings_for(
        db,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        dispatch=DispatchSettings(ingest="stream", batch_wait_ms=1.0, **dispatch),
    )


async def _inbound(app: App) -> int:
    async with app.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Contact).where(Contact.direction == "in")))


async def _until(predicate, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _raw_entry(external_id: str, **fields: object) -> dict[str, str]:
    """A stream entry as a buggy or older publisher wrote it: well-formed JSON, but not what the edge builds."""
    entry = json.loads(encode(InboundMessage.build(channel="telegram", external_id=external_id, sender="1"))["m"])
    return {"m": json.dumps({**entry, **fields})}


async def test_poison_goes_to_the_dead_letters_and_the_stream_moves_on(db, redis_url, redis_prefix):
    app = await App(
        _stream_settings(db, redis_url, redis_prefix, stream_claim_idle_s=0.2, stream_max_deliveries=2)
    ).start()
    try:
        await app.redis.xadd(app.ingest.stream, _raw_entry("p1", sender_name={"a": 1}))  # no database takes a dict
        await app.redis.xadd(app.ingest.stream, {"m": "{not json"})
        for i in range(20):
            await app.deliver(InboundMessage.build(channel="telegram", external_id=f"ok{i}", sender=f"u{i}", text="hi"))
        await _until(lambda: _all_moved(app, stored=20, dead=2))
        letters = await app.ingest.dead.list()
        reasons = {d.external_id: d.reason for d in letters}
        assert reasons["p1"].startswith("delivered 3 times; last error: StoreUnavailable")
        assert [d.deliveries for d in letters if d.external_id == "p1"] == [3]
        assert any(r.startswith("undecodable: JSONDecodeError") for r in reasons.values())
        assert app.ingest.parked == 2 and await app.redis.hlen(app.ingest.failures) == 0
        assert app.health()["ingest"] is True
    finally:
        await app.stop()


async def _all_moved(app: App, *, stored: int, dead: int) -> bool:
    return await _inbound(app) == stored and await app.ingest.dead.count() == dead and await app.ingest.waiting() == 0


async def test_a_lost_stream_and_group_are_recreated_and_what_follows_is_stored(db, redis_url, redis_prefix):
    import logging

    limit_repeats(ingest_log).reset()  # the same line in an earlier test must not hide this one
    seen: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.ERROR)
    catcher.emit = seen.append
    ingest_log.addHandler(catcher)
    app = await App(_stream_settings(db, redis_url, redis_prefix)).start()
    try:
        await app.deliver(InboundMessage.build(channel="webchat", external_id="before", sender="v", text="a"))
        await _until(lambda: _inbound_is(app, 1))
        await app.redis.delete(app.ingest.stream)  # what an empty Redis restart looks like: no stream, no group
        for i in range(5):
            await app.deliver(InboundMessage.build(channel="webchat", external_id=f"after{i}", sender="v", text="b"))
        await _until(lambda: _inbound_is(app, 6))
        assert app.ingest.recreated == 1
        assert any("is gone" in r.getMessage() for r in seen)  # said loudly
    finally:
        ingest_log.removeHandler(catcher)
        await app.stop()


async def _inbound_is(app: App, n: int) -> bool:
    return await _inbound(app) == n


async def test_the_watchdog_restarts_a_consumer_that_stalls(redis_url, redis_prefix):
    client = aioredis.from_url(redis_url)
    stop, hang, got = asyncio.Event(), asyncio.Event(), []
    ingest = StreamIngest(client, redis_prefix, claim_idle_ms=0)

    async def deliver(msg: InboundMessage) -> None:
        if not hang.is_set():  # the first delivery never returns, as a hung database call would not
            hang.set()
            await asyncio.Event().wait()
        got.append(msg.external_id)

    watch = IntakeWatch(ingest, lambda: ingest.consume(deliver, "c1", stop), stop, stall_s=1.5, check_s=3.0)
    task = asyncio.create_task(watch.run())
    try:
        await ingest.ensure_group()
        await ingest.publish(InboundMessage.build(channel="webchat", external_id="x1", sender="v", text="a"))
        await asyncio.wait_for(hang.wait(), 10)
        # stalled from 1.5 s on; the watchdog's look at 3 s restarts it
        await _until(lambda: _true(watch.problem().startswith("the inbound stream consumer made no progress")), 10)
        await _until(lambda: _true(got == ["x1"]), 20)  # restarted, it took the entry over and stored it
        assert watch.restarts >= 1 and watch.problem() == ""
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await client.aclose()


async def _true(value: bool) -> bool:
    return value


async def test_readyz_reason_while_redis_does_not_answer(db, redis_url, redis_prefix, tmp_path):
    import httpx

    from bot.web import create_web_app

    settings = _stream_settings(db, redis_url, redis_prefix).model_copy(update={"state_dir": str(tmp_path)})
    app = await App(settings).start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_web_app(app)), base_url="http://testserver")
    try:
        assert (await client.get("/readyz")).json() == {"ready": True}
        real = app.ingest.redis
        app.ingest.redis = aioredis.from_url("redis://127.0.0.1:1/0")  # nobody listens there
        await _until(lambda: _true(str(app.health()["ingest"]).startswith("Redis unreachable")), 15)
        stalled = await client.get("/readyz")
        assert stalled.status_code == 503
        assert [p for p in stalled.json()["problems"] if p.startswith("ingest: Redis unreachable: ConnectionError")]
        app.ingest.redis = real
        await _until(lambda: _true(app.health()["ingest"] is True), 15)
        assert (await client.get("/readyz")).status_code == 200
    finally:
        await client.aclose()
        await app.stop()


def _cli(*args: str):
    from typer.testing import CliRunner

    from bot.cli.main import app as cli

    return CliRunner().invoke(cli, ["dead", *args], env={"COLUMNS": "200"})


def test_dead_cli_lists_retries_and_drops(redis_url, redis_prefix, monkeypatch):
    import redis

    from bot.settings import get_settings

    monkeypatch.setenv("TIERDESK_REDIS_URL", redis_url)
    monkeypatch.setenv("TIERDESK_REDIS_PREFIX", redis_prefix)
    get_settings.cache_clear()
    client = redis.Redis.from_url(redis_url)
    stream = f"{redis_prefix}:inbound"
    try:
        for i in range(3):
            msg = InboundMessage.build(channel="telegram", external_id=f"m{i}", sender="42", text="x")
            client.xadd(
                f"{stream}:dead",
                {
                    **encode(msg),
                    "entry": f"1-{i}",
                    "error": f"last error: E{i}",
                    "deliveries": "6",
                    "at": "2026-01-01T00:00:00+00:00",
                },
            )
        ids = [i.decode() for i, _ in client.xrange(f"{stream}:dead")]
        listed = _cli("list")
        assert listed.exit_code == 0, listed.output
        assert all(f"m{i}" in listed.output and f"E{i}" in listed.output for i in range(3))
        retried = _cli("retry", ids[0])
        assert retried.exit_code == 0 and "1 sent back" in retried.output
        [(_, fields)] = client.xrange(stream)
        assert json.loads(fields[b"m"])["external_id"] == "m0"
        dropped = _cli("drop", "--all")
        assert dropped.exit_code == 0 and "2 dropped" in dropped.output and client.xlen(f"{stream}:dead") == 0
        unknown = _cli("drop", ids[1])
        assert unknown.exit_code == 1 and "not found" in unknown.output
        assert (_cli("retry", "nonsense").exit_code, _cli("drop").exit_code) == (2, 2)
    finally:
        client.close()
        get_settings.cache_clear()


async def test_failures_during_a_database_outage_never_make_an_entry_poison(redis_url, redis_prefix):
    client = aioredis.from_url(redis_url)
    database_up, stop, tries = False, asyncio.Event(), []

    async def store_ok() -> bool:
        return database_up

    async def deliver(msg: InboundMessage) -> None:
        tries.append(msg.external_id)
        raise ConnectionRefusedError("the database does not answer")

    ingest = StreamIngest(client, redis_prefix, claim_idle_ms=0, max_deliveries=2, store_ok=store_ok)
    consumer = asyncio.create_task(ingest.consume(deliver, "c1", stop))
    try:
        await ingest.ensure_group()
        await ingest.publish(InboundMessage.build(channel="webchat", external_id="w1", sender="v", text="a"))
        await _until(lambda: _true(len(tries) >= 8), 20)  # four times the allowance, all in the outage
        assert await ingest.dead.count() == 0 and await ingest.pending() == 1
        assert (await client.hget(ingest.failures, (await client.xrange(ingest.stream))[0][0])).startswith(b"outage")
        ingest._store_checked = (-1e9, False)  # the next failure asks the database again
        database_up = True
        await _until(lambda: _dead_is(ingest, 1), 20)  # now it fails while the database answers: poison
        [dead] = await ingest.dead.list()
        assert dead.external_id == "w1" and "ConnectionRefusedError" in dead.reason and dead.deliveries > 8
        assert await ingest.waiting() == 0
    finally:
        stop.set()
        await asyncio.wait_for(consumer, 10)
        await client.aclose()


async def _dead_is(ingest: StreamIngest, n: int) -> bool:
    return await ingest.dead.count() == n
