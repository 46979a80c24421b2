"""Every query the dashboard's pages issue, as PostgreSQL plans it on a seeded contact log: none reads the contact
log or the tickets by a sequential scan. The statements are the ones the pages actually send (captured from the
engine while a supervisor opens each page), explained with their own parameters after the tables are analysed
and vacuumed as autovacuum would. The benchmark (bench/dashboard.py) times the same pages at ten million."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.dashboard_seed import seed
from crm_store.repositories import contact_days, ticket_rollup

pytestmark = pytest.mark.parametrize("db", ["postgresql"], indirect=True)

CONTACTS, CUSTOMERS, TICKETS = 60_000, 3_000, 6_000
PAGES = (
    "/",
    "/?from={month_ago}",
    "/agents",
    "/contacts",
    "/contacts?channel=email",
    "/contacts?tier=VIP",
    "/contacts?direction=in&intent=refund",
    "/contacts?q=warranty",
    "/contacts?q=warranty&channel=webchat&tier=important",
    "/contacts?agent=3",
    "/contacts?q=xylophone",
    "/contacts?q=zqxjvbk",
    "/contacts?q=退款",
    "/contacts?desk=1",
    "/customers",
    "/customers/17",
    "/tickets/42",
    "/tickets?status=open",
    "/tickets?status=pending",
    "/contacts/export.csv?customer=17",
)
WATCHED = {"contacts", "tickets"}
EXPLAINED = ("SELECT", "WITH", "INSERT", "UPDATE", "DELETE")


def _scans(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(node type, relation, index) of every scan in a JSON plan tree."""
    found = []
    if "Relation Name" in plan or "Index Name" in plan:
        found.append((plan["Node Type"], plan.get("Relation Name", ""), plan.get("Index Name", "")))
    for child in plan.get("Plans", ()):
        found.extend(_scans(child))
    return found


async def test_no_dashboard_page_scans_the_contact_log_or_the_tickets(db, web_env):
    await seed(db.url, db.schema, "postgresql", CUSTOMERS, TICKETS, CONTACTS)
    async with web_env.app.writer_sessions() as s, s.begin():  # the first build (once per deployment) reads it all
        await contact_days.refresh_contact_days(s)
        await ticket_rollup.rebuild_ticket_rollup(s)  # the seed wrote tickets in SQL alone
    await web_env.agent("Sup", role="supervisor")
    assert (await web_env.login("Sup")).status_code == 303
    month_ago = (datetime.now(UTC) - timedelta(days=29)).date().isoformat()
    captured: list[tuple[str, str, Any]] = []
    page = ""

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith(EXPLAINED) and not executemany:
            captured.append((page, statement, parameters))

    event.listen(Engine, "before_cursor_execute", capture)
    try:
        for path in PAGES:
            page = path.format(month_ago=month_ago)
            response = await web_env.client.get(page)
            assert response.status_code == 200, page
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    assert {p for p, _, _ in captured} == {p.format(month_ago=month_ago) for p in PAGES}

    bad, used = [], set()
    async with db.engine.connect() as conn:
        for path, statement, parameters in captured:
            rows = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            plan = rows.scalar()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            for node, relation, index in _scans(plan[0]["Plan"]):
                if relation in WATCHED and node == "Seq Scan":
                    bad.append(f"{path}: {node} on {relation}\n  {statement[:300]}")
                used.add(index)
    assert not bad, "\n".join(bad)
    # the indexes the figures, the log, the queue and the rollup refresh were built for are the ones read (the
    # ticket figures read the ticket rollups; of the tickets, only the unresolved ones past a due time, unmarked)
    assert {
        "ix_tickets_unmarked_active",
        "ix_contacts_intent_created",
        "ix_contacts_search_tsv",
        "ix_contacts_created",
    } <= used, sorted(used)
    # the agents page's whole days read the replies the contact writers count (agent_reply_days), not the log
    assert not [s for p, s, _ in captured if p == "/agents" and "contacts" in s], "the agents page read the log"
