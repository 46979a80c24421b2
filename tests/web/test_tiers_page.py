"""The dashboard's tiers page and the API's customer outlook: the migration matrix and the at-risk list drawn
from the hand-built history of tests/bot/test_tier_history.py, and a real run's evaluation as its report says."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bot.cli.seed import seed_database
from bot.routing.tier_service import compute_and_store
from bot.web.tokens import create_token
from crm_store.models import ValueEvent
from tests.bot.test_tier_history import two_runs


def cells(html: str, attr: str) -> dict[str, str]:
    return {key: value.strip() for key, value in re.findall(rf'data-{attr}="([^"]+)">([^<]*)<', html)}


async def test_matrix_and_at_risk_list_show_the_hand_built_history(web_env, db):
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    first, second, _ = await two_runs(db, datetime.now(UTC))
    page = await web_env.client.get("/tiers")
    assert page.status_code == 200
    moves = {k: v for k, v in cells(page.text, "move").items() if v != "·"}
    assert moves == {
        "VIP:VIP": "1",
        "VIP:ordinary": "1",
        "important:important": "2",
        "ordinary:important": "1",
        "potential:potential": "1",
        "new:VIP": "1",
    }
    assert f"run {first} → run {second}" in page.text
    assert re.findall(r'data-at-risk="(\d+)"', page.text) == ["1", "6", "3", "4"]
    assert "probability alive fell from 90% to 50%" in page.text and "Kim" in page.text


async def test_agents_may_not_see_the_tiers_page(web_env):
    await web_env.agent("Al")
    await web_env.login("Al")
    assert (await web_env.client.get("/tiers")).status_code == 403


async def test_a_real_run_draws_the_figures_of_its_report(web_env):
    await web_env.agent("Sue", role="supervisor")
    await web_env.login("Sue")
    await seed_database(web_env.app.sessions, 400, 4000, seed=3)
    summary = await compute_and_store(web_env.app.sessions, method="quantiles", settings=web_env.app.settings)
    page = (await web_env.client.get("/tiers")).text
    shown = cells(page, "figure")
    for t in summary.report["tiers"]:
        assert shown[f"tier:{t['tier']}:customers"] == f"{t['customers']:,}"
    assert all(not v.startswith("-") for k, v in shown.items() if k.endswith(":revenue"))
    assert 'data-relevance="method"' in page and 'data-relevance="quantiles"' in page
    assert "queue vip · priority 1 · first reply 15.0 min" in page
    assert 'id="ari-last-run">—<' in page  # the first run has none to compare with


async def test_api_outlook_gives_predicted_value_probability_alive_and_why(web_env, db):
    now = datetime.now(UTC)
    await two_runs(db, now)
    async with db.sessions() as s, s.begin():
        s.add(
            ValueEvent(customer_id=1, amount=Decimal("50.00"), occurred_at=now - timedelta(days=40), source_key="api-1")
        )
        token = await create_token(s, "ci")
    headers = {"Authorization": f"Bearer {token}"}
    got = await web_env.client.get("/api/v1/customers/1/outlook", headers=headers)
    assert got.status_code == 200
    assert got.json() == {
        "customer_id": 1,
        "predicted_value_12m": 900.0,
        "p_alive": 0.5,
        "reason": "one order so far, the last 40 days ago: forecast from how one-time buyers go on",
    }
    assert (await web_env.client.get("/api/v1/customers/999/outlook", headers=headers)).status_code == 404
