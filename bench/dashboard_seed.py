"""Seeding the dashboard benchmark's CRM: generated customers, agents, tickets and contacts, inside the database.

On PostgreSQL the bulk insert is fastest into bare tables: `--seed deferred` (the default) drops the secondary
indexes (the text-search GIN index too) and the foreign keys and unique constraints of the tables it fills,
inserts in id-range chunks over `--seed-workers` connections, then builds every index and constraint again (each
build over its own connection, in parallel) and analyses. `--seed plain` inserts into the fully indexed schema in
one statement per table, for comparison. Each phase is timed.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from crm_store.engine import make_engine

DAYS = 180
WORDS = (
    "refund",
    "order",
    "parcel",
    "delivery",
    "invoice",
    "broken",
    "thanks",
    "password",
    "account",
    "late",
    "size",
    "return",
    "hello",
    "price",
    "discount",
    "warranty",
)
INTENTS = ("refund", "shipping", "billing", "password_reset", "greeting", "complaint")
RUSSIAN = ("где мой заказ", "верните деньги", "Спасибо за помощь", "посылка не пришла")
CHINESE = ("我想退款", "包裹还没到", "谢谢你的帮助", "订单在哪里")
RARE = "xylophone"  # one contact in RARE_EVERY
RARE_EVERY = 5000
DESK_EVERY = 8  # a trial's log held about a quarter; a busy desk's customers outnumber its agents more
AGENTS = 20
TABLES = ("customers", "tickets", "contacts")
CHUNK = 500_000
HASH = {1: 2654435761, 2: 2246822519, 3: 3266489917}
"""Multiplicative hashes (one per property: owner, opening time, channel) that spread ids over [0, 2^32)."""
SKEW = 2
"""Customer k's share of tickets and contacts falls as k^(1/SKEW - 1): customer 1 of a million has thousands of
contacts, the median one a handful, as with a few key accounts among many one-off buyers."""
INDEX_MEMORY = "1GB"
"""Per index build: a ten-million-row sort, or the text index's posting lists, in memory instead of spilled runs."""
CHANNELS = ((0.45, "telegram"), (0.8, "email"), (1.0, "webchat"))


def _sql(kind: str) -> dict[str, str]:
    """Dialect pieces for the generators: a uniform random in [0,1), a random int below n, a timestamp, and `u`, a
    uniform in [0,1) that is a fixed function of an integer (so a contact can name its ticket's customer)."""
    if kind == "postgresql":
        return {
            "r": "random()",
            "ri": "floor(random()*{n})::int",
            "ago": "now() - random() * interval '{d} days'",
            "gen": "FROM generate_series({lo}, {hi}) AS s(g)",
            "pre": "",
            "json": "jsonb_build_object('intent', {v})",
            "plus_s": "({t}) + ({s}) * interval '1 second'",
            "u": "((({v})::bigint * {salt}) % 4294967296)::float8 / 4294967296",
            "int": "floor({v})::bigint",
            "before": "now() - ({f}) * interval '{d} days'",
            "least_now": "least(now(), {t})",
        }
    return {
        "r": "(abs(random()) % 1000000) / 1000000.0",
        "ri": "(abs(random()) % {n})",
        "ago": "datetime('now', '-' || (abs(random()) % ({d} * 86400)) || ' seconds')",
        "gen": "FROM s",
        "pre": "WITH RECURSIVE s(g) AS (SELECT {lo} UNION ALL SELECT g + 1 FROM s WHERE g < {hi}) ",
        "json": "json_object('intent', {v})",
        "plus_s": "datetime({t}, '+' || CAST({s} AS INTEGER) || ' seconds')",
        "u": "((({v}) * {salt}) % 4294967296) / 4294967296.0",
        "int": "CAST({v} AS INTEGER)",
        "before": "datetime('now', '-' || CAST(({f}) * {d} * 86400 AS INTEGER) || ' seconds')",
        "least_now": "min(datetime('now'), {t})",
    }


def _pick(kind: str, values: tuple[str, ...]) -> str:
    d = _sql(kind)
    cases = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"(CASE {d['ri'].format(n=len(values))} {cases} END)"


def _owner(kind: str, ticket: str, customers: int) -> str:
    """The customer of a ticket id: a fixed, skewed function of it (see SKEW), so a contact on a ticket can name
    the ticket's customer without reading the tickets."""
    u = _sql(kind)["u"].format(v=ticket, salt=HASH[1])
    return "(1 + " + _sql(kind)["int"].format(v=f"{customers} * {' * '.join([u] * SKEW)}") + ")"


def _opened(kind: str, ticket: str) -> str:
    """When a ticket was opened: a fixed function of its id, uniform over the last DAYS days."""
    d = _sql(kind)
    return d["before"].format(f=d["u"].format(v=ticket, salt=HASH[2]), d=DAYS)


def _channel_of(kind: str, fraction: str) -> str:
    cases = " ".join(f"WHEN {fraction} < {share} THEN '{name}'" for share, name in CHANNELS[:-1])
    return f"(CASE {cases} ELSE '{CHANNELS[-1][1]}' END)"


def statement(kind: str, table: str, lo: int, hi: int, customers: int, tickets: int) -> str:
    """The INSERT … SELECT that generates rows lo..hi of one table."""
    d = _sql(kind)
    r, ago = d["r"], d["ago"].format(d=DAYS)
    pre, gen = d["pre"].format(lo=lo, hi=hi), d["gen"].format(lo=lo, hi=hi)
    tier = (
        "(CASE WHEN x < 0.03 THEN 'VIP' WHEN x < 0.15 THEN 'important' WHEN x < 0.6 THEN 'ordinary' "
        "ELSE 'potential' END)"
    )
    if table == "agents":
        return (
            f"{pre}INSERT INTO agents (id, name, role, tiers, queues, languages, skills, capacity, status, "
            f"created_at) SELECT g, 'Agent ' || CAST(g AS TEXT), 'agent', '[]', '[]', '[]', '[]', 8, 'online', "
            f"{ago} {gen}"
        )
    if table == "customers":
        return (
            f"{pre}INSERT INTO customers (id, name, tier, tier_reason, lifecycle_stage, created_at, updated_at) "
            f"SELECT g, 'Customer ' || CAST(g AS TEXT), {tier}, 'bench', 'customer', {ago}, {ago} FROM "
            f"(SELECT g, {r} AS x {gen}) AS c"
        )
    if table == "tickets":
        return _tickets(kind, pre, gen, tier, customers)
    return _contacts(kind, pre, gen, customers, tickets)


def _tickets(kind: str, pre: str, gen: str, tier: str, customers: int) -> str:
    d = _sql(kind)
    return (
        f"{pre}INSERT INTO tickets (id, customer_id, channel, status, priority, tier_at_open, queue, "
        f"assignee_id, subject, escalation_level, created_at, updated_at, first_responded_at, solved_at, "
        f"closed_at, sla_breached_at, csat, handoff_reason, first_response_due, resolution_due) "
        f"SELECT g, {_owner(kind, 'g', customers)}, {_channel_of(kind, d['u'].format(v='g', salt=HASH[3]))}, st, 3, "
        f"{tier}, q, 1 + g % {AGENTS}, "
        f"'Subject ' || CAST(g AS TEXT), 0, t, t, {d['plus_s'].format(t='t', s='60 + x * 7200')}, "
        f"CASE WHEN st = 'closed' THEN {d['plus_s'].format(t='t', s='3600 + x * 200000')} END, "
        f"CASE WHEN st = 'closed' THEN {d['plus_s'].format(t='t', s='3600 + x * 200000')} END, "
        f"CASE WHEN x > 0.95 THEN t END, CASE WHEN x < 0.3 THEN 1 + g % 5 END, "
        # four in five conversations reach a person, who is due to answer within an hour and resolve in two days
        f"CASE WHEN g % 5 <> 0 THEN 'routed' END, {d['plus_s'].format(t='t', s='3600')}, "
        f"{d['plus_s'].format(t='t', s='172800')} "
        f"FROM (SELECT g, {d['r']} AS x, {_opened(kind, 'g')} AS t, "
        f"(CASE WHEN g % 10 = 0 THEN 'open' WHEN g % 20 = 1 THEN 'pending' ELSE 'closed' END) AS st, "
        f"{_pick(kind, ('general', 'vip', 'billing', 'shipping'))} AS q {gen}) AS src"
    )


def _contacts(kind: str, pre: str, gen: str, customers: int, tickets: int) -> str:
    """Six contacts in ten (not desk traffic) belong to a ticket: they are its customer's, on its channel, within
    two days of its opening. The rest are the customer's other contacts, on any channel, at any time."""
    d = _sql(kind)
    # Three English words and a number; every tenth contact also has a Russian phrase, every tenth a Chinese one,
    # and one in RARE_EVERY the rare word.
    text = (
        " || ' ' || ".join([_pick(kind, WORDS)] * 3) + " || ' order ' || CAST(g AS TEXT) || "
        f"(CASE WHEN g % {RARE_EVERY} = 0 THEN ' {RARE}' WHEN g % 10 = 3 THEN ' ' || {_pick(kind, RUSSIAN)} "
        f"WHEN g % 10 = 7 THEN ' ' || {_pick(kind, CHINESE)} ELSE '' END)"
    )
    false = "false" if kind == "postgresql" else "0"
    desk = f"g % {DESK_EVERY} = 1"
    on_ticket = f"(x < 0.6 AND NOT ({desk}))"
    loose = "(1 + " + d["int"].format(v=f"{customers} * y * y") + ")"
    at = d["least_now"].format(t=d["plus_s"].format(t=_opened(kind, "tk"), s="y * 172800"))
    return (
        f"{pre}INSERT INTO contacts (id, channel, external_id, direction, author, address, customer_id, "
        f"agent_id, ticket_id, text, attachments, nlu, truncated, created_at, logged_at, desk) "
        f"SELECT g, ch, 'b' || CAST(g AS TEXT), dir, "
        f"CASE WHEN {desk} THEN (CASE WHEN dir = 'in' THEN 'agent' ELSE 'system' END) "
        f"WHEN dir = 'in' THEN 'customer' WHEN x < 0.5 THEN 'agent' ELSE 'bot' END, 'addr', "
        f"CASE WHEN {desk} THEN NULL WHEN {on_ticket} THEN {_owner(kind, 'tk', customers)} ELSE {loose} END, "
        f"CASE WHEN {desk} OR (dir = 'out' AND x < 0.5) THEN 1 + g % {AGENTS} END, "
        f"CASE WHEN {on_ticket} THEN tk END, {text}, '[]', "
        f"CASE WHEN dir = 'in' AND x < 0.7 THEN {d['json'].format(v=_pick(kind, INTENTS))} END, {false}, t, t, "
        f"{desk} "
        f"FROM (SELECT g, x, y, dir, tk, CASE WHEN {on_ticket} THEN {at} ELSE {d['ago'].format(d=DAYS)} END AS t, "
        f"CASE WHEN {on_ticket} THEN {_channel_of(kind, d['u'].format(v='tk', salt=HASH[3]))} "
        f"ELSE {_channel_of(kind, '(x - 0.6) / 0.4')} END AS ch "
        f"FROM (SELECT g, {d['r']} AS x, {d['r']} AS y, 1 + {d['ri'].format(n=tickets)} AS tk, "
        f"CASE WHEN g % 20 < 11 THEN 'in' ELSE 'out' END AS dir {gen}) AS r) AS src"
    )


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(n, lo + size - 1)) for lo in range(1, n + 1, size)]


async def _deferred_objects(conn: Any) -> tuple[list[str], list[str], list[str]]:
    """(drop statements, index builds, constraint builds) for the secondary indexes and the foreign-key and unique
    constraints of the seeded tables and of every table referencing them."""
    rows = (
        await conn.exec_driver_sql(
            "SELECT c.conname, c.conrelid::regclass::text, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            f"WHERE c.contype IN ('f', 'u') AND (c.conrelid::regclass::text IN {TABLES} OR c.confrelid::regclass::text "
            f"IN {TABLES}) AND c.connamespace = current_schema()::regnamespace"
        )
    ).all()
    drops = [f'ALTER TABLE {t} DROP CONSTRAINT "{name}"' for name, t, _ in rows]
    # A unique constraint's index is built with the others (in parallel), then attached: no second sort.
    unique = [
        f'CREATE UNIQUE INDEX "{n}" ON {t} {d.removeprefix("UNIQUE ")}' for n, t, d in rows if d.startswith("UNIQUE")
    ]
    constraints = [
        f'ALTER TABLE {t} ADD CONSTRAINT "{n}" UNIQUE USING INDEX "{n}"'
        if d.startswith("UNIQUE")
        else f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}'
        for n, t, d in rows
    ]
    names = {name for name, _, _ in rows}
    idx = (
        await conn.exec_driver_sql(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_class c ON c.relname = i.indexname "
            "JOIN pg_index x ON x.indexrelid = c.oid WHERE i.schemaname = current_schema() AND i.tablename IN "
            f"{TABLES} AND NOT x.indisprimary AND c.relnamespace = current_schema()::regnamespace"
        )
    ).all()
    indexes = [(n, d) for n, d in idx if n not in names]
    drops += [f'DROP INDEX "{n}"' for n, _ in indexes]
    return drops, unique + [d for _, d in indexes], constraints


async def _run_parallel(
    engine: Any, statements: list[str], workers: int, setup: tuple[str, ...] = (), *, autocommit: bool = False
) -> None:
    """Each statement in its own transaction (or none: VACUUM), `workers` connections taking them in turn."""
    queue = list(reversed(statements))

    async def worker() -> None:
        async with engine.connect() as conn:
            if autocommit:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            for s in setup:
                await conn.exec_driver_sql(s)
            await conn.commit()
            while queue:
                await conn.exec_driver_sql(queue.pop())
                await conn.commit()

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))


async def seed(
    url: str,
    schema: str | None,
    kind: str,
    customers: int,
    tickets: int,
    contacts: int,
    *,
    mode: str = "deferred",
    workers: int = 2,
) -> dict[str, float]:
    """Fill the tables; returns seconds per phase (and "total")."""
    sizes = {"agents": AGENTS, "customers": customers, "tickets": tickets, "contacts": contacts}
    engine = make_engine(url, schema=schema)
    phases: dict[str, float] = {}
    started = time.perf_counter()
    try:
        if kind != "postgresql" or mode == "plain":
            async with engine.begin() as conn:
                for table, n in sizes.items():
                    t = time.perf_counter()
                    await conn.exec_driver_sql(statement(kind, table, 1, n, customers, tickets))
                    phases[f"insert_{table}"] = time.perf_counter() - t
        else:
            async with engine.begin() as conn:
                drops, indexes, constraints = await _deferred_objects(conn)
                for s in drops:
                    await conn.exec_driver_sql(s)
            for table, n in sizes.items():
                t = time.perf_counter()
                await _run_parallel(
                    engine,
                    [statement(kind, table, lo, hi, customers, tickets) for lo, hi in chunks(n, CHUNK)],
                    workers,
                    ("SET synchronous_commit = off",),
                )
                phases[f"insert_{table}"] = time.perf_counter() - t
            t = time.perf_counter()
            setup = (
                f"SET maintenance_work_mem = '{INDEX_MEMORY}'",
                f"SET max_parallel_maintenance_workers = {max(0, (os.cpu_count() or 1) // max(1, workers) - 1)}",
            )
            await _run_parallel(engine, sorted(indexes, key=lambda s: "gin" not in s), workers, setup)
            phases["build_indexes"] = time.perf_counter() - t
            t = time.perf_counter()
            await _run_parallel(engine, constraints, 1)
            phases["build_constraints"] = time.perf_counter() - t
        t = time.perf_counter()
        async with engine.begin() as conn:
            if kind == "postgresql":  # ids were given: the sequences continue after them
                for table in sizes:
                    await conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
            await conn.exec_driver_sql(
                "ANALYZE agents, customers, tickets, contacts" if kind == "postgresql" else "ANALYZE"
            )
        phases["analyze"] = time.perf_counter() - t
        if kind == "postgresql":  # as autovacuum soon would: the visibility map lets index-only scans skip the heap
            t = time.perf_counter()
            await _run_parallel(
                engine, [f"VACUUM {table}" for table in ("contacts", "tickets", "customers")], workers, autocommit=True
            )
            phases["vacuum"] = time.perf_counter() - t
    finally:
        await engine.dispose()
    phases["total"] = time.perf_counter() - started
    return {k: round(v, 1) for k, v in phases.items()}
