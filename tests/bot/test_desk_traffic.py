"""What counts as a contact, through the real dispatcher: a customer's conversation with an agent's commands in
between and a webhook configured. The customer contacts are counted by hand below; desk traffic (the agent's
commands, the answers and notices sent to the agent) is logged once too but shows only when asked for, and a
webhook delivery is no contact at all."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

from bot.settings import WebSettings
from bot.web import create_web_app
from bot.web.auth import hash_password
from bot.web.tokens import create_token
from channels.memory import MemoryChannel
from crm_store.models import Contact, OutboxItem
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import contact_days, reports
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import web as web_repo

CUSTOMER = "77"
# The customer contacts of the session, by hand: (direction, author, text or its start).
CUSTOMER_IN = [("in", "customer", "my invoice is wrong"), ("in", "customer", "5")]
CUSTOMER_OUT = [
    ("out", "bot", "Thanks for your message."),  # the acknowledgement of the handed-off message
    ("out", "agent", "fixed, sorry"),  # /reply
    ("out", "bot", "Your ticket T-{t} is closed."),  # /close asks for a rating
    ("out", "bot", "Thank you for your rating!"),
]
# The desk traffic: the agent's four commands in, and six messages to the agent out.
DESK_IN = [("in", "agent", "/take {t}"), ("in", "agent", "/note {t} checked the billing"),
           ("in", "agent", "/reply {t} fixed, sorry"), ("in", "agent", "/close {t} done")]
DESK_OUT = [
    ("out", "system", "New ticket T-{t}"),  # routing tells the assignee
    ("out", "system", "T-{t} is already yours."),
    ("out", "system", "Note saved on T-{t}"),
    ("out", "system", "Queued for 77 on T-{t}; you will hear when it is delivered."),
    ("out", "system", "Delivered to 77 on T-{t} via telegram."),
    ("out", "system", "T-{t} closed."),
]
PASSWORD = "correct horse battery"


def expected(rows: list[tuple[str, str, str]], ticket_id: int) -> list[tuple[str, str, str]]:
    return sorted((d, a, text.format(t=ticket_id)) for d, a, text in rows)


def matched(rows: list[dict], ticket_id: int, want: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """Each logged row as the expected entry whose text it starts with (or its own text when none fits)."""
    wanted = expected(want, ticket_id)
    out = []
    for r in rows:
        key = next((w for w in wanted if (r["direction"], r["author"]) == w[:2] and r["text"].startswith(w[2])),
                   None)
        out.append(key or (r["direction"], r["author"], r["text"]))
    return sorted(out)


async def session(harness_factory, tmp_path: Path):
    """The conversation: a message, /take, /note, /reply, /close and the customer's rating."""
    h = await harness_factory(web=WebSettings(webhook_url="http://127.0.0.1:9/hook", webhook_secret="s3cret"),
                              state_dir=str(tmp_path / "state"))
    hook = MemoryChannel("webhook")  # stands in for the webhook sender the App registers when a URL is set
    h.app.registry.add(hook)
    await h.agent("Alice")
    r = await h.ch["telegram"].receive(CUSTOMER, "my invoice is wrong")
    t = r.ticket_id
    for command in (f"/take {t}", f"/note {t} checked the billing", f"/reply {t} fixed, sorry", f"/close {t} done"):
        await h.ch["console"].receive("alice", command)
    await h.settle()
    await h.ch["telegram"].receive(CUSTOMER, "5")
    await h.settle()
    return h, t, hook


def cli(h, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process, on the harness's database."""
    s = h.app.settings
    env = {**os.environ, "TIERDESK_DATABASE_URL": s.database_url, "COLUMNS": "250"}
    env.pop("TIERDESK_DATABASE_SCHEMA", None)
    if s.database_schema:
        env["TIERDESK_DATABASE_SCHEMA"] = s.database_schema
    result = subprocess.run([sys.executable, "-m", "bot.cli.main", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


async def test_export_and_show_list_customer_contacts_and_desk_traffic_only_when_asked(harness_factory, tmp_path):
    h, t, hook = await session(harness_factory, tmp_path)
    assert len(hook.sent) >= 3  # ticket.created, .assigned, .replied, .closed ... were delivered
    async with h.app.sessions() as s:
        events = (await s.scalars(select(OutboxItem).where(OutboxItem.audience == "event"))).all()
    assert events and all(e.status == "sent" for e in events)
    plain, with_desk, jsonl = tmp_path / "log.csv", tmp_path / "all.csv", tmp_path / "all.jsonl"
    first = await asyncio.to_thread(cli, h, tmp_path, "log", "export", "--out", str(plain), "-q")
    await asyncio.to_thread(cli, h, tmp_path, "log", "export", "--out", str(with_desk), "-q", "--include-desk")
    await asyncio.to_thread(cli, h, tmp_path, "log", "export", "--out", str(jsonl), "-q", "--format", "jsonl",
                            "--include-desk")
    customer = list(csv.DictReader(plain.open(encoding="utf-8")))
    everything = list(csv.DictReader(with_desk.open(encoding="utf-8")))
    lines = [json.loads(x) for x in jsonl.read_text(encoding="utf-8").splitlines()]

    assert "exported 6 contacts" in first.stdout
    assert "desk" not in customer[0]  # the column comes with desk traffic
    assert matched(customer, t, CUSTOMER_IN + CUSTOMER_OUT) == expected(CUSTOMER_IN + CUSTOMER_OUT, t)
    assert all(r["channel"] == "telegram" and r["ticket_id"] == str(t) for r in customer)
    assert len(everything) == 6 + 10 and len({r["id"] for r in everything}) == 16
    assert matched(everything, t, CUSTOMER_IN + CUSTOMER_OUT + DESK_IN + DESK_OUT) == expected(
        CUSTOMER_IN + CUSTOMER_OUT + DESK_IN + DESK_OUT, t)
    desk_rows = [r for r in everything if r["desk"] == "True"]
    assert matched(desk_rows, t, DESK_IN + DESK_OUT) == expected(DESK_IN + DESK_OUT, t)
    assert {r["id"] for r in everything if r["desk"] == "False"} == {r["id"] for r in customer}
    assert sorted(x["desk"] for x in lines) == [False] * 6 + [True] * 10
    assert not [r for r in everything if r["channel"] == "webhook"]  # deliveries are events, not contacts

    shown = await asyncio.to_thread(cli, h, tmp_path, "log", "show")
    shown_all = await asyncio.to_thread(cli, h, tmp_path, "log", "show", "--include-desk")
    assert "my invoice is wrong" in shown.stdout and "fixed, sorry" in shown.stdout
    assert f"/take {t}" not in shown.stdout and "Note saved" not in shown.stdout
    assert f"/take {t}" in shown_all.stdout and "Note saved" in shown_all.stdout and "webhook" not in shown_all.stdout


async def test_volumes_histories_and_the_api_count_customer_contacts(harness_factory, tmp_path):
    h, t, _ = await session(harness_factory, tmp_path)
    today = datetime.combine(datetime.now(UTC).date(), time.min, UTC)
    async with h.app.writer_sessions() as s, s.begin():
        await contact_days.refresh_contact_days(s)
    async with h.app.sessions() as s:
        by_channel = await reports.contacts_per_day(s, today - timedelta(days=1), today + timedelta(days=1),
                                                    by="channel")
        history = await contacts_repo.customer_history(s, 1, limit=50)
        transcript = await contacts_repo.ticket_transcript(s, t)
        listed = await web_repo.list_contacts(s, limit=100)
        listed_all = await web_repo.list_contacts(s, limit=100, include_desk=True)
        logged = (await s.scalars(select(Contact))).all()
    assert [(k, n) for _, k, n in by_channel] == [("telegram", 6)]  # 2 in + 4 out; the console's 10 are desk
    assert len(history) == len(transcript) == len(listed) == 6 and len(listed_all) == len(logged) == 16
    assert all(not c.desk and c.customer_id == 1 for c in history + transcript)
    async with h.app.sessions() as s, s.begin():
        token = await create_token(s, "ci")
    web = create_web_app(h.app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://testserver") as client:
        auth = {"Authorization": f"Bearer {token}"}
        api = (await client.get("/api/v1/contacts", params={"limit": 100}, headers=auth)).json()["items"]
        api_all = (await client.get("/api/v1/contacts", params={"limit": 100, "include_desk": "true"},
                                    headers=auth)).json()["items"]
    assert len(api) == 6 and not any(c["desk"] for c in api)
    assert len(api_all) == 16 and sum(c["desk"] for c in api_all) == 10


async def login(h, client: httpx.AsyncClient) -> None:
    async with h.app.writer_sessions() as s, s.begin():
        sue = await agents_repo.add_agent(s, name="Sue", role="supervisor", email="sue@desk.example")
        await web_repo.set_password_hash(s, sue.id, hash_password(PASSWORD))
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    done = await client.post("/login", data={"email": "sue@desk.example", "password": PASSWORD, "csrf": csrf,
                                             "next": "/"})
    assert done.status_code in (302, 303), done.text


async def test_the_contact_log_page_shows_desk_traffic_only_with_the_filter(harness_factory, tmp_path):
    h, t, _ = await session(harness_factory, tmp_path)
    web = create_web_app(h.app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://testserver") as client:
        await login(h, client)
        page = (await client.get("/contacts")).text
        with_desk = (await client.get("/contacts", params={"desk": "1"})).text
        exported = (await client.get("/contacts/export.csv", params={"desk": "1"})).text
    assert page.count('<tr class="dir-') == 6 and "fixed, sorry" in page and "my invoice is wrong" in page
    assert f"/take {t}" not in page and "Note saved" not in page
    assert 'id="include-desk"' in page and 'id="include-desk" checked' not in page
    assert with_desk.count('<tr class="dir-') == 16 and with_desk.count('class="chip desk-traffic"') == 10
    assert f"/take {t}" in with_desk and 'id="include-desk" checked' in with_desk
    assert "desk=1" in re.search(r'id="export-csv" href="([^"]+)"', with_desk).group(1)
    rows = list(csv.DictReader(exported.splitlines()))
    assert len(rows) == 16 and sorted(r["desk"] for r in rows) == ["False"] * 6 + ["True"] * 10
