"""Migration matrix, tier-size trend, moves and the at-risk list on a hand-built history of two runs (SQLite and
PostgreSQL); every expected figure below is counted by hand from the table in `two_runs`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.routing import tier_history
from bot.routing.at_risk import CustomerSignals, customers_at_risk, risk_reasons
from crm_store.models import Agent, Customer, Ticket, TierAssignment, TierRun

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)

# customer: (run 1 tier, p_alive, value) -> (run 2 tier, p_alive, value); None: not in that run
HISTORY = {
    1: (("VIP", 0.9, 1000.0), ("VIP", 0.5, 900.0)),  # alive fell by 0.4: at risk
    2: (("VIP", 0.8, 500.0), ("ordinary", 0.75, 40.0)),  # moved VIP -> ordinary; complained, but no longer valuable
    3: (("important", 0.7, 300.0), ("important", 0.65, 280.0)),  # complained last week: at risk
    4: (("ordinary", 0.6, 50.0), ("important", 0.6, 200.0)),  # rated 2/5 last week: at risk
    5: (("potential", None, None), ("potential", None, None)),
    6: (None, ("VIP", 0.3, 700.0)),  # new in run 2, probability alive 30 %: at risk
    7: (("important", 0.9, 400.0), ("important", 0.85, 380.0)),  # complained 60 days ago, rated 5: fine
}


async def two_runs(db, now: datetime = NOW) -> tuple[int, int, int]:
    async with db.sessions() as s, s.begin():
        kam = Agent(name="Kim", role="agent")
        s.add(kam)
        await s.flush()
        for cid in HISTORY:
            s.add(Customer(id=cid, name=f"Customer {cid}", key_account_manager_id=kam.id if cid == 1 else None))
        runs = []
        for n in (1, 2):
            run = TierRun(
                started_at=now - timedelta(days=3 - n),
                finished_at=now - timedelta(days=3 - n),
                method="rfm-kmeans",
                status="done",
                report={},
            )
            s.add(run)
            await s.flush()
            runs.append(run.id)
        for cid, rows in HISTORY.items():
            for run_id, row in zip(runs, rows, strict=True):
                if row is not None:
                    tier, alive, value = row
                    s.add(
                        TierAssignment(
                            run_id=run_id,
                            customer_id=cid,
                            tier=tier,
                            computed_tier=tier,
                            predicted_value=value,
                            p_alive=alive,
                        )
                    )
        for cid, intent, csat, days_ago in [
            (2, "complaint", None, 3),
            (3, "complaint", None, 7),
            (4, None, 2, 5),
            (1, None, 5, 2),
            (7, "complaint", None, 60),
            (7, None, 5, 1),
        ]:
            s.add(
                Ticket(
                    customer_id=cid,
                    channel="email",
                    intent=intent,
                    csat=csat,
                    created_at=now - timedelta(days=days_ago),
                )
            )
    return runs[0], runs[1], kam.id


async def test_migration_matrix_trend_and_moves_on_a_hand_built_history(db):
    first, second, _ = await two_runs(db)
    async with db.sessions() as s:
        shown = await tier_history.migration(s)
        trend = await tier_history.size_trend(s)
        span, moved = await tier_history.moves(s, "VIP", "ordinary")
        none_moved = (await tier_history.moves(s, "potential", "VIP"))[1]
    assert (shown.from_run, shown.to_run) == (first, second)
    nonzero = {(old, new): n for old, row in shown.matrix.items() for new, n in row.items() if n}
    assert nonzero == {
        ("VIP", "VIP"): 1,
        ("VIP", "ordinary"): 1,
        ("important", "important"): 2,
        ("ordinary", "important"): 1,
        ("potential", "potential"): 1,
        ("new", "VIP"): 1,
    }
    assert [t["sizes"] for t in trend] == [
        {"VIP": 2, "important": 2, "ordinary": 1, "potential": 1},
        {"VIP": 2, "important": 3, "ordinary": 1, "potential": 1},
    ]
    assert (span.from_run, span.to_run) == (first, second)
    assert [(cid, name) for cid, name, *_ in moved] == [(2, "Customer 2")]
    assert none_moved == []


async def test_at_risk_lists_valuable_customers_with_a_warning_most_valuable_first(db):
    _, _, _ = await two_runs(db)
    async with db.sessions() as s:
        found = await tier_history.at_risk(s, NOW)
    assert [(r.customer_id, r.reasons) for r in found] == [
        (1, ("probability alive fell from 90% to 50%",)),
        (6, ("probability alive is 30%",)),
        (3, ("1 complaint in 30 days",)),
        (4, ("rated 2/5 recently",)),
    ]
    assert found[0].key_account_manager == "Kim" and found[1].key_account_manager is None
    assert found[0].as_dict()["predicted_value_12m"] == 900.0


async def test_a_first_run_shows_everyone_as_new_and_moves_need_two_runs(sqlite_db):
    async with sqlite_db.sessions() as s, s.begin():
        s.add(Customer(id=1, name="Only"))
        run = TierRun(finished_at=NOW, method="quantiles", status="done", report={})
        s.add(run)
        await s.flush()
        s.add(TierAssignment(run_id=run.id, customer_id=1, tier="ordinary", computed_tier="ordinary"))
    async with sqlite_db.sessions() as s:
        shown = await tier_history.migration(s)
        _, moved = await tier_history.moves(s, "VIP", "ordinary")
    assert shown.from_run is None and shown.matrix["new"]["ordinary"] == 1
    assert sum(sum(row.values()) for row in shown.matrix.values()) == 1
    assert moved == []


def test_risk_rules_one_by_one():
    base = CustomerSignals(1, "A", "VIP", 100.0, 0.8, 0.85)
    assert risk_reasons(base) == ()
    assert risk_reasons(CustomerSignals(1, "A", "VIP", 100.0, 0.6, 0.8)) == ("probability alive fell from 80% to 60%",)
    assert risk_reasons(CustomerSignals(1, "A", "VIP", 100.0, 0.61, 0.8)) == ()  # a fall of 0.19
    assert risk_reasons(CustomerSignals(1, "A", "VIP", 100.0, 0.8, None, lowest_csat=3)) == ()
    assert risk_reasons(CustomerSignals(1, "A", "VIP", 100.0, 0.8, None, complaints=2)) == ("2 complaints in 30 days",)
    ordinary = CustomerSignals(2, "B", "ordinary", 5.0, 0.1, 0.9, complaints=3)
    assert customers_at_risk([ordinary]) == []


async def test_moves_refuse_an_unknown_tier(sqlite_db):
    import pytest

    async with sqlite_db.sessions() as s:
        with pytest.raises(ValueError, match="'gold' is not a tier"):
            await tier_history.moves(s, "gold", "VIP")
