"""Routing on plain values: key accounts, fit, load, idle time, waiting order, capacity (with properties)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.routing.policy import (
    TIER_ORDER,
    AgentState,
    RouteRequest,
    RoutingPolicy,
    WaitingTicket,
    assign_waiting,
    pick_next,
    route,
    waiting_order,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
POLICY = RoutingPolicy.load(Path(__file__).resolve().parents[2] / "config" / "routing.toml")


def test_vip_goes_to_their_key_account_manager_with_the_vip_sla():
    agents = [AgentState(1, open_tickets=0), AgentState(7, open_tickets=4, capacity=5, tiers=("ordinary",))]
    decision = route(RouteRequest("VIP", T0, key_account_manager_id=7), agents, POLICY)
    assert decision.assignee_id == 7 and decision.reason == "key-account manager"
    assert decision.queue == "vip" and decision.priority == 1
    assert decision.first_response_due == T0 + timedelta(minutes=15)
    assert decision.resolution_due == T0 + timedelta(hours=4)


@pytest.mark.parametrize("kam", [AgentState(7, status="away"), AgentState(7, open_tickets=5, capacity=5)])
def test_an_unavailable_key_account_manager_falls_back_to_the_least_loaded_fit(kam):
    agents = [kam, AgentState(2, open_tickets=3, capacity=5), AgentState(3, open_tickets=1, capacity=5)]
    decision = route(RouteRequest("VIP", T0, key_account_manager_id=7), agents, POLICY)
    assert decision.assignee_id == 3
    assert decision.reason == "least loaded agent serving the tier (key-account manager unavailable)"
    assert decision.considered == (3, 2)


def test_tier_language_and_skill_filter_agents():
    agents = [
        AgentState(1, tiers=("ordinary",)),
        AgentState(2, tiers=("VIP",), languages=("en",)),
        AgentState(3, tiers=("VIP",), languages=("zh", "en"), skills=("billing",), open_tickets=2),
        AgentState(4, tiers=("VIP",), languages=("zh",), skills=("tech",)),
        AgentState(5, status="offline"),
    ]
    decision = route(RouteRequest("VIP", T0, language="zh", skill="billing"), agents, POLICY)
    assert decision.assignee_id == 3 and decision.considered == (3,)


def test_ties_go_to_the_longest_idle_agent():
    agents = [
        AgentState(1, open_tickets=1, idle_since=T0 - timedelta(minutes=5)),
        AgentState(2, open_tickets=1, idle_since=T0 - timedelta(hours=2)),
        AgentState(3, open_tickets=2),
    ]
    assert route(RouteRequest("ordinary", T0), agents, POLICY).assignee_id == 2
    never = [*agents, AgentState(4, open_tickets=1, idle_since=None)]
    assert route(RouteRequest("ordinary", T0), never, POLICY).assignee_id == 4


def test_nobody_free_means_the_ticket_waits_in_its_tier_queue():
    agents = [AgentState(1, open_tickets=5, capacity=5), AgentState(2, status="away")]
    decision = route(RouteRequest("important", T0), agents, POLICY)
    assert decision.assignee_id is None
    assert decision.queue == "priority" and decision.reason == "waiting in queue priority: no agent available"


def test_business_hours_move_deadlines_for_the_tiers_they_cover():
    policy = RoutingPolicy.from_dict({
        "tiers": {"VIP": {"first_response_minutes": 15}, "ordinary": {"first_response_minutes": 60}},
        "business_hours": {"timezone": "Europe/Berlin", "days": [1, 2, 3, 4, 5], "start": "09:00",
                           "end": "18:00", "tiers": ["ordinary"]},
    })
    friday_evening = datetime(2026, 3, 6, 17, 30, tzinfo=UTC)  # 18:30 in Berlin: closed
    ordinary = route(RouteRequest("ordinary", friday_evening), [], policy)
    vip = route(RouteRequest("VIP", friday_evening), [], policy)
    assert ordinary.first_response_due == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)  # Monday 10:00 Berlin
    assert vip.first_response_due == friday_evening + timedelta(minutes=15)


def test_bad_policies_are_refused_clearly():
    with pytest.raises(ValueError, match="defines no tiers"):
        RoutingPolicy.from_dict({})
    with pytest.raises(ValueError, match="must be positive"):
        RoutingPolicy.from_dict({"tiers": {"VIP": {"first_response_minutes": 0}}})
    with pytest.raises(ValueError, match="unknown timezone"):
        RoutingPolicy.from_dict({"tiers": {"VIP": {}}, "business_hours": {"timezone": "Mars/Olympus"}})


def test_pick_next_offers_vip_first_then_priority_then_oldest():
    waiting = [
        WaitingTicket(1, "ordinary", 1, T0 - timedelta(hours=5)),
        WaitingTicket(2, "VIP", 1, T0),
        WaitingTicket(3, "VIP", 1, T0 - timedelta(minutes=1)),
        WaitingTicket(4, "important", 2, T0 - timedelta(days=1)),
        WaitingTicket(5, "VIP", 1, T0 - timedelta(hours=1), language="zh"),
    ]
    assert pick_next(waiting, AgentState(9, languages=("en",))).id == 3
    assert pick_next(waiting, AgentState(9)).id == 5
    assert pick_next(waiting, AgentState(9, tiers=("ordinary", "important"))).id == 4
    assert pick_next(waiting, AgentState(9, open_tickets=5, capacity=5)) is None
    assert pick_next([], AgentState(9)) is None


# --- properties ---

agent_st = st.builds(
    AgentState,
    id=st.integers(1, 12),
    status=st.sampled_from(["online", "online", "online", "away", "offline"]),
    tiers=st.sampled_from([(), ("VIP",), ("VIP", "important"), ("ordinary", "potential")]),
    languages=st.sampled_from([(), ("en",), ("zh",), ("en", "ru")]),
    skills=st.sampled_from([(), ("billing",), ("tech",)]),
    capacity=st.integers(0, 4),
    open_tickets=st.integers(0, 4),
)
ticket_st = st.builds(
    WaitingTicket,
    id=st.integers(1, 10_000),
    tier=st.sampled_from(TIER_ORDER),
    priority=st.integers(1, 4),
    opened_at=st.integers(0, 600).map(lambda m: T0 + timedelta(minutes=m)),
    language=st.sampled_from([None, "en", "zh", "ru"]),
    skill=st.sampled_from([None, "billing", "tech"]),
    key_account_manager_id=st.one_of(st.none(), st.integers(1, 12)),
)


def unique_by_id(items):
    return list({i.id: i for i in items}.values())


@settings(max_examples=300, deadline=None)
@given(st.lists(agent_st, max_size=8).map(unique_by_id), st.lists(ticket_st, max_size=40).map(unique_by_id))
def test_property_no_agent_over_capacity_and_no_higher_tier_waits_behind_a_lower(agents, waiting):
    assignments = assign_waiting(waiting, agents)
    by_id = {a.id: a for a in agents}
    given_to: dict[int, int] = {}
    for _ticket, agent_id, _why in assignments:
        given_to[agent_id] = given_to.get(agent_id, 0) + 1
    for agent_id, n in given_to.items():
        agent = by_id[agent_id]
        assert agent.status == "online"
        assert agent.open_tickets + n <= agent.capacity  # never over capacity
    assert len({t.id for t, _, _ in assignments}) == len(assignments)  # no ticket twice
    assigned = {t.id: a for t, a, _ in assignments}
    for left in (t for t in waiting if t.id not in assigned):
        for lower, agent_id, _ in assignments:
            if waiting_order(lower) > waiting_order(left):
                agent = by_id[agent_id]
                assert not agent.can_take(left.tier, left.queue, left.language, left.skill), (
                    f"ticket {left.id} ({left.tier}) waits while {lower.id} ({lower.tier}) went to agent {agent_id}"
                )


@settings(max_examples=300, deadline=None)
@given(agent_st, st.lists(ticket_st, max_size=30).map(unique_by_id))
def test_property_pick_next_never_passes_over_a_better_ticket_it_could_serve(agent, waiting):
    picked = pick_next(waiting, agent)
    servable = [t for t in waiting if agent.can_take(t.tier, t.queue, t.language, t.skill)]
    if picked is None:
        assert not servable
        return
    assert picked in servable
    assert all(waiting_order(picked) <= waiting_order(t) for t in servable)


def test_people_who_do_not_auto_assign_are_skipped_but_a_key_account_manager_stays_explicit():
    boss = AgentState(1, role="supervisor", auto_assign=False)
    busy = AgentState(2, open_tickets=4, capacity=5)
    decision = route(RouteRequest("ordinary", T0), [boss, busy], POLICY)
    assert (decision.assignee_id, decision.considered) == (2, (2,))
    assert route(RouteRequest("ordinary", T0), [boss], POLICY).assignee_id is None
    opted_in = AgentState(1, role="admin", auto_assign=True)
    assert route(RouteRequest("ordinary", T0), [opted_in, busy], POLICY).assignee_id == 1
    kam = route(RouteRequest("VIP", T0, key_account_manager_id=1), [boss, busy], POLICY)
    assert (kam.assignee_id, kam.reason) == (1, "key-account manager")
    waiting = [WaitingTicket(10, "VIP", 1, T0), WaitingTicket(11, "ordinary", 3, T0)]
    assert [(t.id, a) for t, a, _ in assign_waiting(waiting, [boss, busy])] == [(10, 2)]


async def test_agent_states_map_auto_assign_from_the_agent_row(db):
    from bot.core.outbound import load_agent_states
    from crm_store.repositories.agents import add_agent

    async with db.sessions() as s, s.begin():
        made = {
            (role, flag): (await add_agent(s, name=f"{role}-{flag}", role=role, auto_assign=flag)).id
            for role in ("agent", "supervisor", "admin") for flag in (None, True, False)
        }
    async with db.sessions() as s:
        states = await load_agent_states(s)
    got = {key: states[aid].auto_assign for key, aid in made.items()}
    assert got == {
        ("agent", None): True, ("agent", True): True, ("agent", False): False,
        ("supervisor", None): False, ("supervisor", True): True, ("supervisor", False): False,
        ("admin", None): False, ("admin", True): True, ("admin", False): False,
    }


def test_agents_add_records_the_auto_assign_choice(sqlite_db, monkeypatch):
    import asyncio

    from sqlalchemy import select
    from typer.testing import CliRunner

    from bot import settings as settings_module
    from bot.cli.main import app
    from crm_store.engine import make_engine, make_sessionmaker
    from crm_store.models import Agent

    monkeypatch.setenv("TIERDESK_DATABASE_URL", sqlite_db.url)
    settings_module.get_settings.cache_clear()
    try:
        for args in (["--name", "Sue", "--role", "supervisor", "--auto-assign"], ["--name", "Ann", "--no-auto-assign"],
                     ["--name", "Bob"]):
            result = CliRunner().invoke(app, ["agents", "add", *args])
            assert result.exit_code == 0, result.output
    finally:
        settings_module.get_settings.cache_clear()

    async def flags() -> dict[str, bool | None]:
        engine = make_engine(sqlite_db.url)  # this test's own loop: the CLI ran its own
        try:
            async with make_sessionmaker(engine)() as s:
                return {a.name: a.auto_assign for a in await s.scalars(select(Agent))}
        finally:
            await engine.dispose()

    assert asyncio.run(flags()) == {"Sue": True, "Ann": False, "Bob": None}
