"""Lookups by composite key (identities by channel + address, contacts by channel + external id + direction):
they find exactly the rows asked for, and on SQLite they search the unique index instead of scanning it, which
on a log of millions of rows is the difference between microseconds and a second per batch."""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import event

from crm_store.models import Agent, AgentAddress, Contact, Customer, Identity
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo

CHANNELS = ("telegram", "email", "webchat")


async def _seed(db) -> None:
    async with db.sessions() as s, s.begin():
        customers = [Customer(name=f"c{i}", tier="ordinary") for i in range(30)]
        s.add_all(customers)
        await s.flush()
        for i, c in enumerate(customers):
            channel = CHANNELS[i % 3]
            s.add(Identity(customer_id=c.id, channel=channel, address=f"a{i}"))
            for direction in ("in", "out"):
                s.add(Contact(channel=channel, external_id=f"m{i}", direction=direction, customer_id=c.id,
                              text="hi", attachments=[]))
        agent = Agent(name="Ann", role="agent")
        s.add(agent)
        await s.flush()
        s.add(AgentAddress(agent_id=agent.id, channel="telegram", address="a0"))


async def test_lookups_return_exactly_the_keys_asked_for(db):
    await _seed(db)
    # Known keys on several channels, plus near misses: the right address on another channel, the other direction.
    pairs = [(CHANNELS[i % 3], f"a{i}") for i in (0, 1, 2, 4, 5)] + [("email", "a0"), ("sms", "a1")]
    keys = [(CHANNELS[i % 3], f"m{i}", "in") for i in (3, 7, 8)] + [("telegram", "m1", "in"), ("webchat", "m0", "out")]
    async with db.sessions() as s:
        by_identity = await customers_repo.customers_by_identity(s, pairs)
        agents, customers, facts = await customers_repo.who_wrote(s, pairs)
        contacts = await contacts_repo.existing_contacts(s, keys)
        agent_rows = await agents_repo.agents_by_address(s, pairs)
    assert sorted(by_identity) == sorted(pairs[:5])
    assert customers == by_identity and set(facts) == set(by_identity.values())
    assert list(agents) == [("telegram", "a0")] and list(agent_rows) == [("telegram", "a0")]
    assert sorted(contacts) == sorted(keys[:3])
    assert all(c.direction == "in" and (c.channel, c.external_id, "in") in keys for c in contacts.values())
    async with db.sessions() as s:
        assert await contacts_repo.existing_contacts(s, []) == {}
        assert await customers_repo.customers_by_identity(s, []) == {}


async def test_sqlite_searches_the_unique_indexes_for_many_keys(sqlite_db):
    await _seed(sqlite_db)
    sent: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not statement.startswith("EXPLAIN"):
            sent.append((statement, parameters))

    event.listen(sqlite_db.engine.sync_engine, "before_cursor_execute", capture)
    pairs = [(CHANNELS[i % 3], f"a{i}") for i in range(12)]
    keys = [(CHANNELS[i % 3], f"m{i}", "in") for i in range(12)]
    async with sqlite_db.sessions() as s:
        await customers_repo.who_wrote(s, pairs)
        await customers_repo.customers_by_identity(s, pairs)
        await contacts_repo.existing_contacts(s, keys)
        await agents_repo.agents_by_address(s, pairs)
    event.remove(sqlite_db.engine.sync_engine, "before_cursor_execute", capture)
    assert len(sent) >= 4
    async with sqlite_db.engine.connect() as conn:
        for statement, parameters in sent:
            plan = " | ".join(row[-1] for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                                            parameters))
            for table in ("identities", "contacts", "agent_addresses"):
                assert f"SCAN {table}" not in plan, (statement, plan)
            assert "SEARCH" in plan, (statement, plan)


async def test_any_mix_of_keys_finds_exactly_the_logged_ones(db):
    """Random mixes of logged keys and near misses (other channel, other direction, unknown id), many groups."""
    await _seed(db)
    logged = {(CHANNELS[i % 3], f"m{i}", d) for i in range(30) for d in ("in", "out")}
    candidates = sorted(logged | {(ch, f"m{i}", d) for ch in (*CHANNELS, "sms") for i in range(0, 34, 3)
                                  for d in ("in", "out")})
    rng = random.Random(3)
    async with db.sessions() as s:
        for _ in range(40):
            asked = rng.sample(candidates, rng.randrange(1, 40))
            found = await contacts_repo.existing_contacts(s, asked + asked[:3])  # repeats in the request too
            assert set(found) == set(asked) & logged
            assert all(key == (c.channel, c.external_id, c.direction) for key, c in found.items())
            pairs = [(ch, f"a{int(ext[1:])}") for ch, ext, _d in asked]
            known = await customers_repo.customers_by_identity(s, pairs)
            assert set(known) == {(ch, a) for ch, a in pairs if ch == CHANNELS[int(a[1:]) % 3] and int(a[1:]) < 30}
