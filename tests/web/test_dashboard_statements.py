"""How many statements the busiest dashboard pages send per request, on both databases: each one is a round trip,
and on a busy server every round trip waits for a core, so a page's count is its floor of latency. The counts are
budgets (a new part of a page reads with the parts it sits beside, or raises the budget here on purpose). The
benchmark (bench/dashboard.py) times the same pages at ten million contacts."""

from __future__ import annotations

from contextvars import ContextVar

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.dashboard_seed import seed

BUDGET = {
    "/contacts": 4,
    "/contacts?tier=VIP": 4,
    "/contacts?q=warranty": 5,
    "/customers/17": 6,
    "/tickets/42": 11,  # with the delivery states of its agents' messages (the outbox rows not sent yet)
    "/tickets?status=open": 2,  # the session, then the tickets with their customers and assignees' names
    "/agents": 5,  # ticket figures by day, breaches not marked yet, agents' durations, agents with load and replies
}
"""Statements per request, the viewer's session read included (a text search may add its statistics read)."""

_page: ContextVar[str | None] = ContextVar("page", default=None)


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
async def test_each_page_sends_at_most_its_budget_of_statements(db, web_env):
    await seed(db.url, db.schema, db.kind, 300, 600, 4000)
    await web_env.agent("Sup", role="supervisor")
    assert (await web_env.login("Sup")).status_code == 303
    for path in BUDGET:  # the first request of each page fills what a process keeps (the log's intent list)
        assert (await web_env.client.get(path)).status_code == 200, path
    sent: dict[str, list[str]] = {path: [] for path in BUDGET}

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        page = _page.get()  # set only in the request's own task: background workers are not counted
        if page is not None and not statement.startswith("BEGIN"):  # SQLite's BEGIN is PostgreSQL's too, unseen
            sent[page].append(" ".join(statement.split())[:120])

    event.listen(Engine, "before_cursor_execute", count)
    try:
        for path in BUDGET:
            token = _page.set(path)
            try:
                assert (await web_env.client.get(path)).status_code == 200, path
            finally:
                _page.reset(token)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    over = {p: s for p, s in sent.items() if len(s) > BUDGET[p]}
    assert not over, "\n".join(f"{p}: {len(s)} > {BUDGET[p]}\n  " + "\n  ".join(s) for p, s in over.items())
    assert all(sent.values()), sent  # every page was counted (the hook saw the request's statements)
