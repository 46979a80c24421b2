"""Logins that neither lock the real user out nor tell which accounts exist; the second factor; the throttles."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from bot.web import login_guard, totp
from bot.web.login_guard import begin_attempt, delay_after, throttle_key
from crm_store.models import Agent
from crm_store.repositories import audit
from crm_store.trust import LoginThrottle
from tests.web.conftest import PASSWORD, WebEnv


def client_at(env: WebEnv, ip: str, web: object | None = None) -> httpx.AsyncClient:
    """Another browser, from another address."""
    transport = httpx.ASGITransport(app=web or env.web, client=(ip, 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def post_login(client: httpx.AsyncClient, email: str, password: str) -> tuple[httpx.Response, float]:
    """The login POST (after fetching the form for its CSRF token) and how long the POST alone took."""
    page = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    started = time.perf_counter()
    r = await client.post("/login", data={"email": email, "password": password, "csrf": token, "next": "/"})
    return r, time.perf_counter() - started


async def rewind(env: WebEnv) -> None:
    """Let the clock pass every throttle's wait (without sleeping)."""
    async with env.app.sessions() as s, s.begin():
        await s.execute(update(LoginThrottle).values(next_allowed_at=None))


async def throttles(env: WebEnv) -> list[LoginThrottle]:
    async with env.app.sessions() as s:
        return list(await s.scalars(select(LoginThrottle).order_by(LoginThrottle.client)))


def test_delays_grow_and_stop_at_fifteen_minutes():
    assert [delay_after(n) for n in range(1, 9)] == [0, 1, 2, 4, 8, 16, 32, 64]
    assert delay_after(11) == 512 and delay_after(12) == 900 and delay_after(10**9) == 900
    assert login_guard.wait_message(1).endswith("Try again in 1 second.")
    assert login_guard.wait_message(900).endswith("Try again in 15 minutes.")


async def test_each_failure_makes_the_next_try_wait_longer(db):
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    waits: list[int] = []
    at = t0
    async with db.sessions() as s, s.begin():
        for _ in range(6):
            assert (await begin_attempt(s, "10.0.0.1", "Sue@Desk.example", now=at)).allowed
            refused = await begin_attempt(s, "10.0.0.1", "sue@desk.example", now=at)  # at once again
            waits.append(0 if refused.allowed else refused.wait_s)
            if refused.allowed:  # a wait of 0 lets that second try count as a failure too
                at += timedelta(seconds=1)
                continue
            at += timedelta(seconds=refused.wait_s)
        row = await s.get(LoginThrottle, throttle_key("10.0.0.1", "sue@desk.example"))
        other = await begin_attempt(s, "10.0.0.2", "sue@desk.example", now=at)
    # failures 1,(2) -> 1 s; 3 -> 2 s; 4 -> 4 s; 5 -> 8 s; 6 -> 16 s; 7 -> 32 s
    assert waits == [0, 2, 4, 8, 16, 32]
    assert row.failures == 7 and row.account == "sue@desk.example" and row.client == "10.0.0.1"
    assert other.allowed  # another client is never held back by this one's failures


async def test_wrong_passwords_never_lock_the_real_user_out(web_env):
    await web_env.agent("Sue", role="supervisor")
    attacker = client_at(web_env, "203.0.113.9")
    for _ in range(5):
        r, _ = await post_login(attacker, "sue@desk.example", "not her password")
        assert r.status_code == 401 and "Wrong email or password." in r.text
        await rewind(web_env)
    r, _ = await post_login(attacker, "sue@desk.example", "still guessing")
    assert r.status_code == 401
    # Six failures: this client waits 16 s, and is told so; the right password does not help meanwhile.
    held, _ = await post_login(attacker, "sue@desk.example", PASSWORD)
    assert held.status_code == 429 and "Try again in 16 seconds." in held.text
    assert held.headers["retry-after"] == "16"
    # Sue, from her own browser, is not locked out.
    sue = client_at(web_env, "198.51.100.7")
    ok, _ = await post_login(sue, "sue@desk.example", PASSWORD)
    assert ok.status_code == 303 and (await sue.get("/")).status_code == 200
    # Once the wait is over, even the attacker's address may try again (and would get in with the password).
    await rewind(web_env)
    later, _ = await post_login(attacker, "sue@desk.example", PASSWORD)
    assert later.status_code == 303
    assert await throttles(web_env) == []  # a full login forgets that pair's failures
    await attacker.aclose()
    await sue.aclose()


async def test_a_second_web_process_sees_the_same_throttle(web_env):
    from bot.web import create_web_app

    await web_env.agent("Sue", role="supervisor")
    first = client_at(web_env, "203.0.113.9")
    second = client_at(web_env, "203.0.113.9", create_web_app(web_env.app))
    for _ in range(2):
        assert (await post_login(first, "sue@desk.example", "wrong wrong"))[0].status_code == 401
    held, _ = await post_login(second, "sue@desk.example", PASSWORD)
    assert held.status_code == 429 and "Try again in 1 second." in held.text
    await first.aclose()
    await second.aclose()


async def test_unknown_and_known_emails_get_the_same_answer_and_take_as_long(web_env):
    await web_env.agent("Sue", role="supervisor")
    await web_env.agent("Nopass", role="agent")
    async with web_env.app.sessions() as s, s.begin():
        await s.execute(update(Agent).where(Agent.name == "Nopass").values(password_hash=None))
    timings: dict[str, list[float]] = {"known": [], "unknown": [], "nopass": []}
    texts: dict[str, set[str]] = {k: set() for k in timings}
    emails = {"known": "sue@desk.example", "unknown": "nobody@desk.example", "nopass": "nopass@desk.example"}
    for i in range(3):
        for kind, email in emails.items():
            client = client_at(web_env, f"192.0.2.{10 * i + len(kind)}")
            r, took = await post_login(client, email, "wrong password here")
            await client.aclose()
            assert r.status_code == 401
            texts[kind].add(re.search(r'role="alert">([^<]*)<', r.text).group(1))
            timings[kind].append(took)
    assert texts["known"] == texts["unknown"] == texts["nopass"] == {"Wrong email or password."}
    fastest = {kind: min(values) for kind, values in timings.items()}
    # Without the dummy hash an unknown email answers in a few ms against ~50-100 ms for a known one.
    assert fastest["unknown"] >= 0.5 * fastest["known"], timings
    assert fastest["nopass"] >= 0.5 * fastest["known"], timings
    # Unknown emails are throttled exactly like known ones.
    assert {t.account for t in await throttles(web_env)} == set(emails.values())


async def enable_totp(env: WebEnv, name: str) -> str:
    secret = totp.new_secret()
    async with env.app.sessions() as s, s.begin():
        await s.execute(update(Agent).where(Agent.name == name).values(totp_secret=secret))
    return secret


async def post_code(client: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await client.get("/login/code")
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return await client.post("/login/code", data={"code": code, "csrf": token, "next": "/tickets"})


async def test_a_supervisor_with_a_second_factor_needs_the_code(web_env):
    await web_env.agent("Sue", role="supervisor")
    secret = await enable_totp(web_env, "Sue")
    browser = client_at(web_env, "198.51.100.7")
    r, _ = await post_login(browser, "sue@desk.example", PASSWORD)
    assert r.status_code == 303 and r.headers["location"].startswith("/login/code")
    # The password alone gives no rights yet.
    page = await browser.get("/")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    wrong = await post_code(browser, "000000" if totp.code_at(secret, datetime.now(UTC)) != "000000" else "111111")
    assert wrong.status_code == 401 and "That code is not right" in wrong.text
    # A wrong code is throttled like a wrong password: the right one must wait a moment.
    held = await post_code(browser, totp.code_at(secret, datetime.now(UTC)))
    assert held.status_code == 429 and "Try again in 1 second." in held.text
    assert (await browser.get("/")).status_code == 303
    await rewind(web_env)
    ok = await post_code(browser, totp.code_at(secret, datetime.now(UTC)))
    assert ok.status_code == 303 and ok.headers["location"] == "/tickets"
    assert (await browser.get("/")).status_code == 200
    assert await throttles(web_env) == []
    await browser.aclose()


async def test_without_a_second_factor_the_password_is_enough_and_no_code_page_opens(web_env):
    await web_env.agent("Sue", role="supervisor")
    browser = client_at(web_env, "198.51.100.7")
    r, _ = await post_login(browser, "sue@desk.example", PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert (await browser.get("/login/code")).headers["location"] == "/login"
    await browser.aclose()


async def test_admins_see_and_clear_throttles_on_the_dashboard(web_env):
    await web_env.agent("Sue", role="supervisor")
    await web_env.agent("Ada", role="admin")
    for ip in ("203.0.113.9", "203.0.113.10"):
        stranger = client_at(web_env, ip)
        assert (await post_login(stranger, "sue@desk.example", "wrong wrong"))[0].status_code == 401
        await stranger.aclose()
    sue = client_at(web_env, "198.51.100.7")
    await post_login(sue, "sue@desk.example", PASSWORD)
    assert (await sue.get("/login-throttles")).status_code == 403  # a supervisor is not an admin
    ada = client_at(web_env, "198.51.100.8")
    assert (await post_login(ada, "ada@desk.example", PASSWORD))[0].status_code == 303
    page = await ada.get("/login-throttles")
    assert page.status_code == 200 and "203.0.113.9" in page.text and "203.0.113.10" in page.text
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    forged = await ada.post("/login-throttles/clear", data={"account": "sue@desk.example", "csrf": "forged"})
    assert forged.status_code == 403 and len(await throttles(web_env)) == 2
    done = await ada.post("/login-throttles/clear", data={"account": "sue@desk.example", "csrf": token})
    assert done.status_code == 303 and await throttles(web_env) == []
    async with web_env.app.sessions() as s:
        entry = (await audit.entries(s, action="throttles_cleared"))[0]
    assert entry.data["count"] == 2 and entry.data["account"] == "sue@desk.example"
    await sue.aclose()
    await ada.aclose()


def run_cli(db, monkeypatch, *args: str) -> str:
    from typer.testing import CliRunner

    from bot import settings as settings_module
    from bot.cli.main import app

    monkeypatch.setenv("TIERDESK_DATABASE_URL", db.url)
    if db.schema:
        monkeypatch.setenv("TIERDESK_DATABASE_SCHEMA", db.schema)
    settings_module.get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    finally:
        settings_module.get_settings.cache_clear()
    return f"{result.exit_code}|{result.output}"


def test_admins_list_and_clear_throttles_and_turn_the_second_factor_on(db, monkeypatch):
    from crm_store.engine import make_engine, make_sessionmaker
    from crm_store.repositories import agents as agents_repo

    async def seed() -> None:
        engine = make_engine(db.url, schema=db.schema)  # this test's own loop: the CLI runs its own
        try:
            async with make_sessionmaker(engine)() as s, s.begin():
                await agents_repo.add_agent(s, name="Sue", role="supervisor", email="sue@desk.example")
                await agents_repo.add_agent(s, name="Ann", role="agent", email="ann@desk.example")
                for client, account in (("10.0.0.1", "sue@desk.example"), ("10.0.0.2", "sue@desk.example"),
                                        ("10.0.0.3", "ann@desk.example")):
                    for _ in range(3):
                        await begin_attempt(s, client, account, now=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        finally:
            await engine.dispose()

    async def state() -> tuple[list[tuple[str, str, int]], dict[str, str | None]]:
        engine = make_engine(db.url, schema=db.schema)
        try:
            async with make_sessionmaker(engine)() as s:
                rows = [(t.client, t.account, t.failures) for t in
                        await s.scalars(select(LoginThrottle).order_by(LoginThrottle.client))]
                return rows, {a.name: a.totp_secret for a in await s.scalars(select(Agent))}
        finally:
            await engine.dispose()

    asyncio.run(seed())
    listed = run_cli(db, monkeypatch, "login-throttles", "list")
    assert listed.startswith("0|") and "10.0.0.1" in listed and "10.0.0.3" in listed and "ann@desk.example" in listed
    only_ann = run_cli(db, monkeypatch, "login-throttles", "list", "--account", "ANN@desk.example")
    assert "ann@desk.example" in only_ann and "sue@desk.example" not in only_ann
    assert run_cli(db, monkeypatch, "login-throttles", "clear").startswith("2|")
    assert "cleared 2 login throttle(s)" in run_cli(db, monkeypatch, "login-throttles", "clear", "--account",
                                                   "sue@desk.example")
    rows, _ = asyncio.run(state())
    assert rows == [("10.0.0.3", "ann@desk.example", 2)]  # the third try at the same moment had to wait
    assert "cleared 1 " in run_cli(db, monkeypatch, "login-throttles", "clear", "--all")
    assert "no login throttles" in run_cli(db, monkeypatch, "login-throttles", "list")

    refused = run_cli(db, monkeypatch, "agents", "totp", "Ann", "--enable")
    assert refused.startswith("1|") and "supervisors and admins" in refused
    enabled = run_cli(db, monkeypatch, "agents", "totp", "Sue", "--enable")
    _, secrets = asyncio.run(state())
    assert enabled.startswith("0|") and secrets["Ann"] is None and secrets["Sue"]
    assert f"secret: {secrets['Sue']}" in enabled
    assert f"otpauth://totp/tierdesk:sue%40desk.example?secret={secrets['Sue']}&issuer=tierdesk" in enabled
    assert run_cli(db, monkeypatch, "agents", "totp", "Sue", "--disable").startswith("0|")
    assert asyncio.run(state())[1]["Sue"] is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 56 78"])
def test_malformed_codes_never_pass(code):
    assert not totp.code_ok(totp.new_secret(), code)
