"""`tierdesk seed-data`, `tiers compute`, `tiers report --json` and `tiers moves` as a user runs them (the console
script in a subprocess on a SQLite file): the report carries the evaluation, no VIP has been away longer than the
recency window, no tier has negative revenue, and bad input gets a clear error."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

TIERDESK = [sys.executable, "-m", "bot.cli.main"]
WINDOW_DAYS = 120


def run(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TIERDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'cli.db'}",
        "COLUMNS": "200",
        "TIERDESK_TIERING__VIP_RECENCY_DAYS": str(WINDOW_DAYS),
    }
    return subprocess.run(TIERDESK + args, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("tiers")
    seeded = run(["seed-data", "--customers", "600", "--purchases", "6000", "--seed", "5"], tmp)
    assert seeded.returncode == 0, seeded.stderr
    computed = run(["tiers", "compute", "--k", "3"], tmp)
    assert computed.returncode == 0, computed.stderr
    report = run(["tiers", "report", "--json"], tmp)
    assert report.returncode == 0, report.stderr
    return tmp, json.loads(report.stdout)


def test_report_json_carries_the_evaluation_with_relevance_against_quantiles(seeded):
    _, report = seeded
    assert report["method"] == "rfm-kmeans" and report["customers"] == 600
    assert report["vip_recency_days"] == WINDOW_DAYS
    tiers = {t["tier"]: t for t in report["tiers"]}
    assert list(tiers) == ["VIP", "important", "ordinary", "potential"]
    assert sum(t["customers"] for t in tiers.values()) == 600
    assert sum(t["revenue_share"] for t in tiers.values()) == pytest.approx(1.0, abs=1e-3)
    assert all(t["rule"] for t in tiers.values())
    assert f"bought within the last {WINDOW_DAYS} days" in tiers["VIP"]["rule"]
    relevance = report["relevance"]
    assert relevance["holdout_days"] == 90
    assert relevance["method"]["name"] == "rfm-kmeans" and relevance["quantiles"]["name"] == "quantiles"
    for side in ("method", "quantiles"):
        assert 0 <= relevance[side]["eta_squared"] <= 1 and -1 <= relevance[side]["spearman"] <= 1
        assert set(relevance[side]["by_tier"]) == set(tiers)
    assert report["actionability"]["VIP"] == {
        "queue": "vip",
        "priority": 1,
        "first_response_minutes": 15.0,
        "resolution_minutes": 240.0,
    }
    assert report["clv"]["bgnbd"]["r"] > 0 and report["clv"]["customers_fitted"] > 0
    assert report["stability_ari"] is not None and report["stability_ari_vs_last_run"] is None  # the first run


def test_no_vip_is_long_gone_and_no_tier_has_negative_revenue(seeded):
    tmp, report = seeded
    assert all(t["revenue"] >= 0 and t["monetary"] >= 0 for t in report["tiers"])
    with sqlite3.connect(tmp / "cli.db") as conn:
        vip_last = conn.execute(
            "SELECT c.id, MAX(v.occurred_at) FROM customers c JOIN value_events v ON v.customer_id = c.id "
            "WHERE c.tier = 'VIP' AND v.amount > 0 GROUP BY c.id"
        ).fetchall()
        refund_only = conn.execute(
            "SELECT c.tier, c.tier_reason FROM customers c JOIN value_events v ON v.customer_id = c.id "
            "GROUP BY c.id HAVING MAX(v.amount) < 0"
        ).fetchall()
    now = datetime.now(UTC)
    oldest = max((now - datetime.fromisoformat(at).replace(tzinfo=UTC)).days for _, at in vip_last)
    assert vip_last and oldest < WINDOW_DAYS
    assert refund_only and {tier for tier, _ in refund_only} == {"potential"}
    assert all("refunds only" in reason for _, reason in refund_only)
    assert next(t for t in report["tiers"] if t["tier"] == "potential")["refunds_only"] == len(refund_only)


def test_a_second_run_compares_with_the_first_and_moves_list_who_changed(seeded):
    tmp, _ = seeded
    again = run(["tiers", "compute", "--method", "clv"], tmp)
    assert again.returncode == 0, again.stderr
    report = json.loads(run(["tiers", "report", "--json"], tmp).stdout)
    assert report["method"] == "clv" and report["relevance"]["method"]["name"] == "clv"
    assert 0 < report["stability_ari_vs_last_run"] <= 1
    with sqlite3.connect(tmp / "cli.db") as conn:
        runs = [r for (r,) in conn.execute("SELECT id FROM tier_runs ORDER BY id")]
        moved = conn.execute(
            "SELECT a.customer_id FROM tier_assignments a JOIN tier_assignments b ON b.customer_id = a.customer_id "
            "WHERE a.run_id = ? AND b.run_id = ? AND a.tier = 'important' AND b.tier = 'ordinary'",
            runs[-2:],
        ).fetchall()
    shown = run(["tiers", "moves", "--from", "important", "--to", "ordinary", "--json", "--limit", "100000"], tmp)
    assert shown.returncode == 0, shown.stderr
    listed = json.loads(shown.stdout)
    assert (listed["from_run"], listed["to_run"]) == tuple(runs[-2:])
    assert sorted(c["customer_id"] for c in listed["customers"]) == sorted(cid for (cid,) in moved)
    assert len(moved) > 0


def test_bad_input_gets_a_clear_error(seeded):
    tmp, _ = seeded
    result = run(["tiers", "moves", "--from", "gold", "--to", "VIP"], tmp)
    assert result.returncode == 2
    assert "'gold' is not a tier" in result.stderr and "Traceback" not in result.stderr + result.stdout


def test_an_unknown_method_setting_is_refused():
    from pydantic import ValidationError

    from bot.settings import TieringSettings

    with pytest.raises(ValidationError, match="rfm-kmeans"):
        TieringSettings(method="kmeans")
