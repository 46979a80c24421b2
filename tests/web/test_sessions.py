"""Dashboard sessions kept on the server: logout, a password change and an admin end them for real (a saved
cookie replayed afterwards is sent to the login page), idle and absolute timeouts, the CSRF token of the
session, a second factor still to pass, and `tierdesk agents sessions`."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from bot.web.auth import hash_password
from bot.web.web_sessions import change_password, revoke_agent_sessions
from crm_store.models import Agent
from crm_store.repositories import audit
from crm_store.trust import WebSession


def client_of(env, cookie: str | None = None) -> httpx.AsyncClient:
    cookies = {"tierdesk_session": cookie} if cookie else None
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=env.web), base_url="http://testserver", cookies=cookies)


async def logged_in(env, name: str) -> tuple[httpx.AsyncClient, str]:
    """A client of its own logged in as `name`, and the session cookie it got."""
    client = client_of(env)
    response = await env.login(name, client=client)
    assert response.status_code == 303, response.text
    return client, client.cookies["tierdesk_session"]


async def csrf_of(client: httpx.AsyncClient) -> str:
    page = await client.get("/tickets")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


async def is_in(env, cookie: str) -> bool:
    """Whether a replay of this cookie value, from a fresh client, opens a dashboard page."""
    async with client_of(env, cookie) as replay:
        r = await replay.get("/tickets")
    if r.status_code == 303:
        assert r.headers["location"].startswith("/login?next=")
        return False
    assert r.status_code == 200
    return True


async def rows(env) -> list[WebSession]:
    async with env.app.sessions() as s:
        return list(await s.scalars(select(WebSession).order_by(WebSession.created_at)))


async def test_the_cookie_is_a_random_token_whose_hash_is_the_row(web_env):
    sue = await web_env.agent("Sue", role="supervisor")
    client, cookie = await logged_in(web_env, "Sue")
    [row] = await rows(web_env)
    assert row.id == hashlib.sha256(cookie.encode()).hexdigest() and cookie not in row.id
    assert row.agent_id == sue and row.revoked_at is None
    assert row.csrf == await csrf_of(client)  # the CSRF token lives with the session
    assert timedelta(hours=11, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=12)
    assert "testclient" in row.client or row.client  # where it was opened from
    await client.aclose()


async def test_a_saved_cookie_replayed_after_logout_goes_to_the_login_page(web_env):
    await web_env.agent("Sue", role="supervisor")
    client, cookie = await logged_in(web_env, "Sue")
    assert await is_in(web_env, cookie)
    logout = await client.post("/logout", data={"csrf": await csrf_of(client)})
    assert logout.status_code == 303
    assert not await is_in(web_env, cookie)
    [row] = await rows(web_env)
    assert row.revoked_at is not None
    await client.aclose()


async def test_logging_out_one_session_leaves_the_other(web_env):
    await web_env.agent("Sue", role="supervisor")
    laptop, first = await logged_in(web_env, "Sue")
    phone, second = await logged_in(web_env, "Sue")
    assert first != second
    await laptop.post("/logout", data={"csrf": await csrf_of(laptop)})
    assert not await is_in(web_env, first) and await is_in(web_env, second)
    await laptop.aclose()
    await phone.aclose()


async def test_a_password_change_ends_every_session_of_that_agent_only(web_env):
    sue = await web_env.agent("Sue", role="supervisor")
    await web_env.agent("Tom", role="supervisor")
    a, first = await logged_in(web_env, "Sue")
    b, second = await logged_in(web_env, "Sue")
    c, toms = await logged_in(web_env, "Tom")
    async with web_env.app.sessions() as s, s.begin():
        ended = await change_password(s, sue, hash_password("a brand new password"))
    assert ended == 2
    assert not await is_in(web_env, first) and not await is_in(web_env, second)
    assert await is_in(web_env, toms)
    async with web_env.app.sessions() as s:
        [entry] = await audit.entries(s, action="sessions_revoked")
        agent = await s.get(Agent, sue)
    assert entry.subject == f"agent:{sue}" and entry.data["count"] == 2
    assert entry.data["reason"] == "password changed" and agent.password_changed_at is not None
    assert (await web_env.login("Sue", "a brand new password")).status_code == 303
    for client in (a, b, c):
        await client.aclose()


async def test_a_password_changed_elsewhere_ends_older_sessions_even_unrevoked(web_env):
    """A flow that only stores the new hash and its time still ends the sessions opened before it."""
    sue = await web_env.agent("Sue", role="supervisor")
    client, cookie = await logged_in(web_env, "Sue")
    async with web_env.app.sessions() as s, s.begin():
        await s.execute(update(Agent).where(Agent.id == sue).values(password_changed_at=datetime.now(UTC)))
    assert not await is_in(web_env, cookie)
    await client.aclose()


async def test_idle_timeout_ends_a_session_and_a_request_moves_its_clock(web_env):
    await web_env.agent("Sue", role="supervisor")
    client, cookie = await logged_in(web_env, "Sue")
    now = datetime.now(UTC)
    async with web_env.app.sessions() as s, s.begin():
        await s.execute(update(WebSession).values(last_seen_at=now - timedelta(minutes=29)))
    assert await is_in(web_env, cookie)  # 29 minutes idle: still open, and seen again now
    [row] = await rows(web_env)
    assert row.last_seen_at >= now - timedelta(seconds=5)
    async with web_env.app.sessions() as s, s.begin():
        await s.execute(update(WebSession).values(last_seen_at=now - timedelta(minutes=31)))
    assert not await is_in(web_env, cookie)
    [row] = await rows(web_env)
    assert row.last_seen_at < now - timedelta(minutes=30)  # a refused session's clock does not move
    await client.aclose()


async def test_absolute_timeout_ends_even_a_busy_session(web_env):
    await web_env.agent("Sue", role="supervisor")
    client, cookie = await logged_in(web_env, "Sue")
    now = datetime.now(UTC)
    async with web_env.app.sessions() as s, s.begin():
        await s.execute(update(WebSession).values(created_at=now - timedelta(hours=12, minutes=1),
                                                  expires_at=now - timedelta(minutes=1), last_seen_at=now))
    assert not await is_in(web_env, cookie)
    await client.aclose()


async def test_csrf_token_of_another_session_is_refused(web_env):
    await web_env.agent("Sue", role="supervisor")
    a, _ = await logged_in(web_env, "Sue")
    b, cookie_b = await logged_in(web_env, "Sue")
    other = await csrf_of(b)
    refused = await a.post("/logout", data={"csrf": other})
    assert refused.status_code == 403
    assert await is_in(web_env, cookie_b)
    await a.aclose()
    await b.aclose()


async def test_a_session_waiting_for_its_second_factor_has_no_rights(web_env):
    sue = await web_env.agent("Sue", role="supervisor")
    async with web_env.app.sessions() as s, s.begin():
        await s.execute(update(Agent).where(Agent.id == sue).values(totp_secret="JBSWY3DPEHPK3PXP"))
    client = client_of(web_env)
    await web_env.login("Sue", client=client)
    [row] = await rows(web_env)
    cookie = client.cookies.get("tierdesk_session")
    assert cookie is not None and row.second_factor_at is None
    assert not await is_in(web_env, cookie)
    async with web_env.app.sessions() as s, s.begin():
        await s.execute(update(WebSession).values(second_factor_at=datetime.now(UTC)))
    assert await is_in(web_env, cookie)
    await client.aclose()


async def test_an_admin_revokes_one_session_by_its_listed_id(web_env):
    sue = await web_env.agent("Sue", role="supervisor")
    a, first = await logged_in(web_env, "Sue")
    b, second = await logged_in(web_env, "Sue")
    listed = hashlib.sha256(first.encode()).hexdigest()[:12]
    async with web_env.app.sessions() as s, s.begin():
        assert await revoke_agent_sessions(s, sue, reason="lost laptop", ids=[listed], actor="cli") == 1
        assert await revoke_agent_sessions(s, sue, reason="nothing", ids=[]) == 0
    assert not await is_in(web_env, first) and await is_in(web_env, second)
    await a.aclose()
    await b.aclose()


def run_cli(db, monkeypatch, *args: str, **env: str) -> tuple[int, str]:
    """The command in process (its own event loop) on this test's database."""
    from typer.testing import CliRunner

    from bot import settings as settings_module
    from bot.cli.main import app

    monkeypatch.setenv("TIERDESK_DATABASE_URL", db.url)
    monkeypatch.setenv("COLUMNS", "200")
    if db.schema:
        monkeypatch.setenv("TIERDESK_DATABASE_SCHEMA", db.schema)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings_module.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        settings_module.get_settings.cache_clear()
    return result.exit_code, result.output


def on_db(db, work):
    """Run `work(session)` in a transaction on an engine of its own (the CLI runs its own loops)."""
    from crm_store.engine import make_engine, make_sessionmaker

    async def go():
        engine = make_engine(db.url, schema=db.schema)
        try:
            async with make_sessionmaker(engine)() as s, s.begin():
                return await work(s)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_cli_lists_and_revokes_an_agents_sessions(db, monkeypatch):
    from crm_store.repositories import agents as agents_repo
    from crm_store.repositories import web_sessions as sessions_repo

    now = datetime.now(UTC)

    async def seed(s) -> int:
        sue = await agents_repo.add_agent(s, name="Sue", role="supervisor", email="sue@example.com")
        await s.flush()
        for sid in ("a" * 64, "b" * 64):
            sessions_repo.add(s, session_id=sid, agent_id=sue.id, csrf="x", expires_at=now + timedelta(hours=12),
                              client="10.0.0.7 Firefox", at=now)
        return sue.id

    async def still_open(s) -> list[str]:
        return [r.id[:1] for r in await s.scalars(select(WebSession).where(WebSession.revoked_at.is_(None)))]

    on_db(db, seed)
    code, out = run_cli(db, monkeypatch, "agents", "sessions", "Sue")
    assert code == 0 and "aaaaaaaaaaaa" in out and "bbbbbbbbbbbb" in out and "open" in out and "Firefox" in out
    code, out = run_cli(db, monkeypatch, "agents", "sessions", "Sue", "--revoke", "--id", "aaaaaaaaaaaa")
    assert code == 0 and "ended 1 session(s)" in out and "revoked" in out
    assert on_db(db, still_open) == ["b"]
    code, out = run_cli(db, monkeypatch, "agents", "passwd", "Sue", TIERDESK_NEW_PASSWORD="another good password")
    assert code == 0 and "1 open session(s) ended" in out
    assert on_db(db, still_open) == []
    assert run_cli(db, monkeypatch, "agents", "sessions", "nobody")[0] == 1


async def test_an_admin_ends_an_agents_sessions_from_the_agents_page(web_env):
    await web_env.agent("Ada", role="admin")
    alice = await web_env.agent("Alice", tiers=["potential"])
    await web_env.agent("Sue", role="supervisor")
    al, alices = await logged_in(web_env, "Alice")
    sue, _ = await logged_in(web_env, "Sue")
    page = await sue.get("/agents")
    assert page.status_code == 200 and "End sessions" not in page.text
    refused = await sue.post(f"/agents/{alice}/sessions/revoke", data={"csrf": await csrf_of(sue)})
    assert refused.status_code == 403 and await is_in(web_env, alices)
    ada, _ = await logged_in(web_env, "Ada")
    page = await ada.get("/agents")
    assert f'id="end-sessions-{alice}"' in page.text
    assert (await ada.post(f"/agents/{alice}/sessions/revoke", data={})).status_code == 403  # no CSRF token
    done = await ada.post(f"/agents/{alice}/sessions/revoke", data={"csrf": await csrf_of(ada)})
    assert done.status_code == 303 and done.headers["location"] == "/agents?ended=1"
    assert not await is_in(web_env, alices)
    assert "Ended 1 session(s)" in (await ada.get("/agents?ended=1")).text
    big = await ada.post("/agents/99999999999999999999999/sessions/revoke", data={"csrf": await csrf_of(ada)})
    assert big.status_code == 403
    async with web_env.app.sessions() as s:
        [entry] = await audit.entries(s, action="sessions_revoked")
    assert entry.subject == f"agent:{alice}" and entry.agent_id is not None and entry.data["count"] == 1
    for client in (al, sue, ada):
        await client.aclose()
