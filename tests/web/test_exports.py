"""Contact-log exports from the dashboard and the REST API: formula cells neutralised (OWASP CSV injection), a
BOM only when asked, only the tiers the exporting agent serves, an audit entry per export; and the API's 422s
for unknown tiers, statuses and channels."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import UTC, datetime, timedelta

from bot.web.tokens import create_token
from crm_store.models import Contact, Customer, Ticket
from crm_store.repositories import audit

PAYLOADS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tleading tab",
            "\r=1+1"]
HARMLESS = ["plain words", "a = b later on", "'already quoted"]
BOM = b"\xef\xbb\xbf"


async def seed(env) -> dict[str, int]:
    """A VIP customer whose messages (and name) are spreadsheet formulas, and an ordinary customer."""
    t0 = datetime.now(UTC) - timedelta(hours=1)
    async with env.app.sessions() as s, s.begin():
        vip = Customer(name="=cmd|'/C calc'!A0", tier="VIP")
        low = Customer(name="Olga Обычная 普通", tier="ordinary")
        s.add_all([vip, low])
        await s.flush()
        texts = [(vip.id, t) for t in PAYLOADS + HARMLESS] + [(low.id, "Где мой заказ? 我的订单在哪里"),
                                                               (low.id, "=1+1 from ordinary")]
        s.add_all([Contact(channel="webchat", external_id=f"x{i}", direction="in", author="customer",
                           address=f"a{cid}", customer_id=cid, text=text, created_at=t0 + timedelta(seconds=i))
                   for i, (cid, text) in enumerate(texts)])
    return {"vip": vip.id, "low": low.id}


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


async def exports(env) -> list:
    async with env.app.sessions() as s:
        return list(reversed(await audit.entries(s, action="contacts_exported")))


async def test_dashboard_csv_neutralises_formulas_and_writes_a_bom_only_when_asked(web_env):
    ids = await seed(web_env)
    sue = await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    plain = await web_env.client.get("/contacts/export.csv")
    assert plain.status_code == 200 and not plain.content.startswith(BOM)
    rows = csv_rows(plain.content)
    assert [r["text"] for r in rows if r["customer_id"] == str(ids["vip"])] == ["'" + p for p in PAYLOADS] + HARMLESS
    assert {r["customer_name"] for r in rows if r["customer_id"] == str(ids["vip"])} == {"'=cmd|'/C calc'!A0"}
    assert [r["text"] for r in rows if r["customer_id"] == str(ids["low"])] == [
        "Где мой заказ? 我的订单在哪里", "'=1+1 from ordinary"]

    page = (await web_env.client.get("/contacts?tier=ordinary")).text
    link = re.search(r'id="export-csv-bom" href="([^"]+)"', page).group(1)
    assert link == "/contacts/export.csv?bom=1&amp;tier=ordinary"
    with_bom = await web_env.client.get(html.unescape(link))
    assert with_bom.content.startswith(BOM) and not with_bom.content[3:].startswith(BOM)
    assert [r["text"] for r in csv_rows(with_bom.content[3:])] == ["Где мой заказ? 我的订单在哪里",
                                                                   "'=1+1 from ordinary"]

    jsonl = await web_env.client.get("/contacts/export.jsonl?bom=1")  # JSON lines: data for programs, as is
    assert not jsonl.content.startswith(BOM)
    texts = [json.loads(line)["text"] for line in jsonl.text.splitlines()]
    assert texts[:len(PAYLOADS)] == PAYLOADS

    logged = await exports(web_env)
    assert [(e.agent_id, e.data["format"], e.data["rows"], e.data["bom"], e.data["via"]) for e in logged] == [
        (sue, "csv", 11, False, "dashboard"), (sue, "csv", 2, True, "dashboard"),
        (sue, "jsonl", 11, False, "dashboard")]
    assert logged[1].data["filter"] == {"tier": "ordinary"} and logged[0].data["complete"] is True


async def test_an_agent_exports_only_the_tiers_they_serve(web_env):
    ids = await seed(web_env)
    olaf = await web_env.agent("Olaf", tiers=["ordinary"])
    await web_env.login("Olaf")
    rows = csv_rows((await web_env.client.get("/contacts/export.csv")).content)
    assert {r["customer_id"] for r in rows} == {str(ids["low"])} and len(rows) == 2
    assert {r["tier"] for r in rows} == {"ordinary"}
    asked_for_vip = await web_env.client.get("/contacts/export.jsonl?tier=VIP")
    assert asked_for_vip.text == ""
    searched = csv_rows((await web_env.client.get("/contacts/export.csv?q=HYPERLINK")).content)
    assert searched == []
    logged = await exports(web_env)
    assert [(e.agent_id, e.data["rows"]) for e in logged] == [(olaf, 2), (olaf, 0), (olaf, 0)]
    assert logged[0].data["filter"] == {"scope_tiers": ["ordinary"]}


async def api_auth(env, name: str, agent_id: int | None = None) -> dict[str, str]:
    async with env.app.sessions() as s, s.begin():
        token = await create_token(s, name, agent_id=agent_id)
    return {"Authorization": f"Bearer {token}"}


async def test_api_export_is_neutralised_scoped_and_audited(web_env):
    ids = await seed(web_env)
    admin = await api_auth(web_env, "ci")
    olaf = await web_env.agent("Olaf", tiers=["ordinary"])
    as_olaf = await api_auth(web_env, "olaf", olaf)
    c = web_env.client
    full = await c.get("/api/v1/contacts/export", params={"format": "csv", "bom": "true"}, headers=admin)
    assert full.status_code == 200 and full.headers["content-type"].startswith("text/csv")
    assert full.content.startswith(BOM)
    texts = [r["text"] for r in csv_rows(full.content[3:])]
    assert texts[:len(PAYLOADS)] == ["'" + p for p in PAYLOADS] and len(texts) == 11
    scoped = await c.get("/api/v1/contacts/export", params={"format": "jsonl"}, headers=as_olaf)
    assert [json.loads(x)["customer_id"] for x in scoped.text.splitlines()] == [ids["low"], ids["low"]]
    listed = await c.get("/api/v1/contacts", headers=as_olaf)
    assert {x["customer_id"] for x in listed.json()["items"]} == {ids["low"]}
    async with web_env.app.sessions() as s:
        vip_contact = await s.scalar(Contact.__table__.select().with_only_columns(Contact.id)
                                     .where(Contact.customer_id == ids["vip"]).limit(1))
    assert (await c.get(f"/api/v1/contacts/{vip_contact}", headers=as_olaf)).status_code == 404
    assert (await c.get(f"/api/v1/contacts/{vip_contact}", headers=admin)).status_code == 200
    logged = await exports(web_env)
    assert [(e.agent_id, e.actor, e.data["via"], e.data["format"], e.data["rows"]) for e in logged] == [
        (None, "api", "api", "csv", 11), (olaf, "agent", "api", "jsonl", 2)]


def message(r) -> str:
    assert r.status_code == 422, r.text
    return " | ".join(d["msg"] for d in r.json()["detail"])


async def test_api_refuses_unknown_tiers_statuses_and_channels_with_422(web_env):
    auth = await api_auth(web_env, "ci")
    c = web_env.client
    async with web_env.app.sessions() as s, s.begin():
        cust = Customer(name="Ann", tier="ordinary")
        s.add(cust)
        await s.flush()
        ticket = Ticket(customer_id=cust.id, channel="email", subject="hi")
        s.add(ticket)
    gold = await c.post("/api/v1/customers", json={"name": "X", "manual_tier": "gold"}, headers=auth)
    assert "'gold' is not a tier (use VIP, important, ordinary or potential)" in message(gold)
    patched = await c.patch(f"/api/v1/customers/{cust.id}", json={"manual_tier": "platinum"}, headers=auth)
    assert "'platinum' is not a tier" in message(patched)
    assert "'gold' is not a tier" in message(await c.get("/api/v1/customers?tier=gold", headers=auth))
    solved = await c.patch(f"/api/v1/tickets/{ticket.id}", json={"status": "solved"}, headers=auth)
    assert "close with POST /tickets/{id}/close" in message(solved)
    assert "'lost' is not a ticket status" in message(await c.get("/api/v1/tickets?status=lost", headers=auth))
    pigeon = await c.get("/api/v1/contacts?channel=pigeon", headers=auth)
    assert "'pigeon' is not a channel (known:" in message(pigeon)
    assert "'pigeon' is not a channel" in message(await c.get("/api/v1/contacts/export?channel=pigeon",
                                                              headers=auth))
    ticket_pigeon = await c.post("/api/v1/tickets", json={"customer_id": cust.id, "channel": "pigeon"}, headers=auth)
    assert "'pigeon' is not a channel" in message(ticket_pigeon)
    assert (await c.get("/api/v1/contacts?channel=email", headers=auth)).status_code == 200
    async with web_env.app.sessions() as s:
        assert await audit.entries(s, action="contacts_exported") == []  # a refused export exported nothing
