"""Agents and how we recognise them on each channel."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.errors import Conflict, NotFound
from crm_store.models import ROLES, Agent, AgentAddress
from crm_store.repositories._sql import as_row_id, chunks, is_pg, keys_clause, keys_params
from crm_store.repositories.tickets import load_by_assignee
from crm_store.sender_lock import LOCK_CLASS

ROUTING_LOCK = {"cls": LOCK_CLASS, "name": "tierdesk.routing"}
"""The advisory lock of transactions that assign tickets by agents' loads (see `agents_with_load`)."""

Pair = tuple[str, str]


@cache
def _agents_by_address_query(pg: bool, groups: int) -> Any:
    return (
        select(AgentAddress.channel, AgentAddress.address, Agent)
        .join(Agent, Agent.id == AgentAddress.agent_id)
        .where(keys_clause([AgentAddress.channel, AgentAddress.address], vary=1, groups=groups, pg=pg))
    )


async def agents_by_address(session: AsyncSession, pairs: Iterable[Pair]) -> dict[Pair, Agent]:
    found: dict[Pair, Agent] = {}
    for part in chunks(sorted(set(pairs))):
        groups, params = keys_params(part, vary=1)
        for ch, addr, agent in await session.execute(_agents_by_address_query(is_pg(session), groups), params):
            found[(ch, addr)] = agent
    return found


async def agents_by_ids(session: AsyncSession, pairs: dict[Pair, int]) -> dict[Pair, Agent]:
    """The Agent behind each address, given the agent ids found for them."""
    rows = {a.id: a for a in await session.scalars(select(Agent).where(Agent.id.in_(set(pairs.values()))))}
    return {pair: rows[aid] for pair, aid in pairs.items() if aid in rows}


async def add_agent(
    session: AsyncSession,
    *,
    name: str,
    role: str = "agent",
    addresses: dict[str, str] | None = None,
    **fields: Any,
) -> Agent:
    """Register an agent with their channel addresses (e.g. {"telegram": "12345"})."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    agent = Agent(name=name, role=role, **fields)
    session.add(agent)
    try:
        await session.flush()
        for channel, address in (addresses or {}).items():
            session.add(AgentAddress(agent_id=agent.id, channel=channel, address=str(address)))
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an agent with that email or address already exists: {exc.orig}") from exc
    return agent


async def get_agent(session: AsyncSession, agent_id: int) -> Agent:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    return agent


async def find_agent(session: AsyncSession, query: str) -> Agent | None:
    """By id, name (case-insensitive), email or any channel address."""
    q = query.strip().lstrip("@")
    if (number := as_row_id(q)) is not None:
        agent = await session.get(Agent, number)
        if agent is not None:
            return agent
    agent = await session.scalar(select(Agent).where(Agent.email == q))
    if agent is None:
        for a in await session.scalars(select(Agent)):
            if a.name.lower() == q.lower():
                return a
        aid = await session.scalar(select(AgentAddress.agent_id).where(AgentAddress.address == q).limit(1))
        agent = await session.get(Agent, aid) if aid else None
    return agent


async def list_agents(session: AsyncSession) -> list[Agent]:
    return list(await session.scalars(select(Agent).order_by(Agent.id)))


@cache
def _agents_with_load_query() -> Any:
    load = load_by_assignee().subquery()
    return select(Agent, func.coalesce(load.c.n, 0)).outerjoin(load, load.c.assignee_id == Agent.id).order_by(Agent.id)


async def agents_with_load(session: AsyncSession, *, routing: bool = False) -> list[tuple[Agent, int]]:
    """Every agent with the number of open or pending tickets assigned to them, in one query (routing's view).

    `routing`: the transaction will assign on these loads, so on PostgreSQL it first takes the routing lock, held
    until it commits. Without it two transactions routing at once (two workers' batches, a batch and the SLA job)
    both saw an agent under capacity and both assigned: ten open tickets for an agent of capacity five. SQLite
    has one writer at a time already."""
    if routing and is_pg(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:cls, hashtext(:name))"), ROUTING_LOCK)
    rows = await session.execute(_agents_with_load_query())
    return [(agent, int(n)) for agent, n in rows.all()]


async def addresses_of(session: AsyncSession, agent_ids: Iterable[int]) -> dict[int, list[Pair]]:
    found: dict[int, list[Pair]] = {}
    for part in chunks(sorted(set(agent_ids))):
        rows = await session.execute(
            select(AgentAddress.agent_id, AgentAddress.channel, AgentAddress.address)
            .where(AgentAddress.agent_id.in_(part))
            .order_by(AgentAddress.id)
        )
        for aid, ch, addr in rows:
            found.setdefault(aid, []).append((ch, addr))
    return found


async def agents_with_role(session: AsyncSession, roles: Iterable[str]) -> list[Agent]:
    return list(await session.scalars(select(Agent).where(Agent.role.in_(list(roles))).order_by(Agent.id)))
