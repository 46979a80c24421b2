"""`tierdesk worker` as an operator runs it for scale-out: separate processes consume the inbound stream that
`tierdesk run`'s channels publish to, store every message once, and stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from bot.core.ingest import StreamIngest
from bot.core.messages import InboundMessage
from bot.runner import configured_channels, worker_problem
from crm_store.models import Contact, Ticket


def _worker_env(db, redis_url: str, redis_prefix: str, tmp_path) -> dict[str, str]:
    env = {
        **os.environ,
        "TIERDESK_DATABASE_URL": db.url,
        "TIERDESK_REDIS_URL": redis_url,
        "TIERDESK_REDIS_PREFIX": redis_prefix,
        "TIERDESK_DISPATCH__INGEST": "stream",
        "TIERDESK_CHANNELS": '["webchat"]',
        "TIERDESK_NLU__ENABLED": "false",
        "TIERDESK_STATE_DIR": str(tmp_path / "state"),
    }
    if db.schema:
        env["TIERDESK_DATABASE_SCHEMA"] = db.schema
    return env


def _start_worker(env: dict[str, str], cwd) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bot.cli.main", "worker"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_worker_refuses_a_configuration_it_cannot_serve(tmp_path):
    env = {**os.environ, "TIERDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'w.db'}",
           "TIERDESK_NLU__ENABLED": "false"}
    env.pop("TIERDESK_REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", "worker"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "TIERDESK_DISPATCH__INGEST=stream" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_worker_needs_a_shared_database(tmp_path):
    settings = settings_for_stream(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    assert "PostgreSQL" in (worker_problem(settings) or "")
    assert worker_problem(settings_for_stream("postgresql+asyncpg://db/x")) is None


def settings_for_stream(url: str):
    from bot.settings import DispatchSettings, Settings

    return Settings(database_url=url, redis_url="redis://127.0.0.1:6379/0", dispatch=DispatchSettings(ingest="stream"))


def test_a_worker_sends_only_on_channels_it_can_send_from():
    from bot.settings import EmailSettings, Settings, TelegramSettings, WebSettings

    settings = Settings(
        channels=["telegram", "email", "webchat", "console"],
        telegram=TelegramSettings(token="123:abc", mode="polling"),
        email=EmailSettings(address="desk@example.com", imap_host="imap.example.com", smtp_host="smtp.example.com",
                            lmtp_listen="127.0.0.1:2424"),
        web=WebSettings(webhook_url="http://127.0.0.1:9/hook", webhook_secret="s"),
    )
    sending = {c.name: c for c in configured_channels(settings, send_only=True)}
    assert set(sending) == {"telegram", "email", "webhook"}  # web chat and console replies need their receiver
    assert sending["telegram"].mode == "embedded"  # sends, never polls (that would steal `run`'s updates)
    assert sending["email"].imap_account is None and not sending["email"].lmtp_listen
    assert sending["email"].smtp["hostname"] == "smtp.example.com"


async def test_two_worker_processes_store_every_published_message_once(db, redis_url, redis_prefix, tmp_path):
    if db.kind == "sqlite":
        pytest.skip("workers share PostgreSQL; SQLite is the single-process store")
    env = _worker_env(db, redis_url, redis_prefix, tmp_path)
    workers = [_start_worker(env, tmp_path) for _ in range(2)]
    client = aioredis.from_url(redis_url)
    try:
        front = StreamIngest(client, redis_prefix)  # what `tierdesk run`'s channels do in stream mode
        await front.ensure_group()
        msgs = [InboundMessage.build(channel="webchat", external_id=f"w{i % 180}", sender=f"visitor{i % 180 % 23}",
                                     text=f"question {i}") for i in range(200)]  # 20 redeliveries
        joined = 0
        for m in msgs:  # a trickle until both workers have taken a share, then the rest at once
            await front.publish(m)
            if joined < 2:
                joined = len(await client.xinfo_consumers(front.stream, front.group))
                await asyncio.sleep(0.3)
            assert all(w.poll() is None for w in workers), workers[0].stdout.read()
        await client.xadd(front.stream, {"m": "{not json"})  # a corrupt entry must not be lost or block the rest

        async def stored() -> tuple[int, int]:
            async with db.sessions() as s:
                contacts = await s.scalar(select(func.count()).select_from(Contact).where(Contact.direction == "in"))
                tickets = await s.scalar(select(func.count()).select_from(Ticket))
            return int(contacts), int(tickets)

        for _ in range(1200):
            if await stored() == (180, 23) and await front.pending() == 0 and await client.xlen(front.stream) == 0:
                break
            assert all(w.poll() is None for w in workers), workers[0].stdout.read()
            await asyncio.sleep(0.1)
        assert await stored() == (180, 23)
        assert await front.pending() == 0 and await client.xlen(front.stream) == 0
        dead = await client.xrange(front.dead_letters)
        assert len(dead) == 1 and dead[0][1][b"m"] == b"{not json" and b"JSONDecodeError" in dead[0][1][b"error"]
        assert len(await client.xinfo_consumers(front.stream, front.group)) == 2
    finally:
        await client.aclose()
        outputs = []
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
            try:
                outputs.append(w.communicate(timeout=60)[0])
            except subprocess.TimeoutExpired:
                w.kill()
                outputs.append(w.communicate()[0])
    for w, out in zip(workers, outputs, strict=True):
        assert w.returncode == 0, out
        assert "stopping: closing channels, draining the outbox" in out
        assert "Traceback" not in out


async def test_workers_take_turns_so_a_scheduled_retiering_runs_once(db, redis_url, redis_prefix):
    """Every worker runs the re-tiering schedule; when it falls due they must not all run it (each run writes
    the tier history): one takes the turn, the others find the run done."""
    from bot.cli.seed import seed_database
    from bot.core.locks import JobTurns
    from bot.routing import tier_service
    from bot.settings import Settings, TieringSettings
    from crm_store.engine import make_sessionmaker
    from crm_store.models import TierRun

    await seed_database(make_sessionmaker(db.engine, writer=True), 150, 1500, seed=9)
    settings = Settings(database_url=db.url, tiering=TieringSettings(schedule_hours=24, method="quantiles"))
    clients = [aioredis.from_url(redis_url) for _ in range(3)]
    stop = asyncio.Event()
    loops = [
        asyncio.create_task(tier_service.retier_loop(make_sessionmaker(db.engine, writer=True), settings, stop,
                                                     turns=JobTurns(client, redis_prefix)))
        for client in clients
    ]
    try:
        for _ in range(400):
            async with db.sessions() as s:
                if await s.scalar(select(func.count(TierRun.id))):
                    break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # time for a second run, if the others were going to do one
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*loops), 30)
        for client in clients:
            await client.aclose()
    async with db.sessions() as s:
        assert await s.scalar(select(func.count(TierRun.id))) == 1
