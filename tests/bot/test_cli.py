"""The command line as a user runs it: the console script in a subprocess, on a SQLite file of its own."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

TIERDESK = [sys.executable, "-m", "bot.cli.main"]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "TIERDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
               "COLUMNS": "200", **env}
    return subprocess.run(TIERDESK + args, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = tmp_path_factory.mktemp("demo")
    return run(["demo", "--db", str(tmp / "demo.db")], tmp), tmp / "demo.db"


def test_demo_runs_a_whole_conversation_and_exits_0(demo_run):
    result, _ = demo_run
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Anna Petrova via email" in out and "Anna Petrova via telegram" in out
    assert "History of Anna Petrova" in out
    assert "Alice (agent) → telegram:5001" in out  # the agent's reply went to her last channel
    assert "The contact log" in out and "Traceback" not in out + result.stderr


def test_log_export_streams_every_contact(demo_run, tmp_path):
    _, db = demo_run
    env = {"TIERDESK_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    out_csv, out_jsonl = tmp_path / "log.csv", tmp_path / "log.jsonl"
    r1 = run(["log", "export", "--format", "csv", "--out", str(out_csv), "--quiet"], tmp_path, **env)
    r2 = run(["log", "export", "--format", "jsonl", "--out", str(out_jsonl), "--channel", "telegram", "-q"],
             tmp_path, **env)
    assert r1.returncode == 0 and r2.returncode == 0, r1.stderr + r2.stderr
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert {"channel", "external_id", "direction", "customer_id", "ticket_id", "text", "created_at"} <= set(rows[0])
    assert {r["direction"] for r in rows} == {"in", "out"} and {r["channel"] for r in rows} >= {"email", "telegram"}
    lines = [json.loads(x) for x in out_jsonl.read_text(encoding="utf-8").splitlines()]
    assert lines and all(x["channel"] == "telegram" for x in lines)
    assert f"exported {len(rows)} contacts" in r1.stdout
    show = run(["log", "show", "--channel", "email"], tmp_path, **env)
    assert show.returncode == 0 and "email" in show.stdout


def test_agents_add_and_list(tmp_path):
    add = run(["agents", "add", "--name", "Ivan", "--role", "supervisor", "--telegram-id", "4242",
               "--languages", "ru,en"], tmp_path)
    assert add.returncode == 0, add.stderr
    dup = run(["agents", "add", "--name", "Ivan2", "--telegram-id", "4242"], tmp_path)
    assert dup.returncode == 1 and "already exists" in dup.stdout
    bad = run(["agents", "add", "--name", "X", "--role", "king"], tmp_path)
    assert bad.returncode == 1 and "role must be one of" in bad.stdout
    listing = run(["agents", "list"], tmp_path)
    assert "Ivan" in listing.stdout and "telegram:4242" in listing.stdout


def test_bad_since_is_a_clear_error(tmp_path):
    result = run(["log", "show", "--since", "yesterday-ish"], tmp_path)
    assert result.returncode != 0 and "use a date" in (result.stdout + result.stderr)
    assert "Traceback" not in result.stderr


def test_dashboard_password_and_api_tokens(tmp_path):
    assert run(["agents", "add", "--name", "Sue", "--email", "sue@example.com", "--role", "supervisor"],
               tmp_path).returncode == 0
    short = run(["agents", "passwd", "sue@example.com"], tmp_path, TIERDESK_NEW_PASSWORD="short")
    assert short.returncode == 1 and "at least 8" in short.stdout
    ok = run(["agents", "passwd", "Sue"], tmp_path, TIERDESK_NEW_PASSWORD="correct horse battery")
    assert ok.returncode == 0 and "sue@example.com can log in" in ok.stdout
    created = run(["tokens", "create", "billing-sync"], tmp_path)
    assert created.returncode == 0 and "tdk_" in created.stdout
    assert run(["tokens", "revoke", "billing-sync"], tmp_path).returncode == 0
    assert run(["tokens", "revoke", "billing-sync-nope"], tmp_path).returncode == 1


def test_a_token_can_act_as_an_agent(tmp_path):
    assert run(["agents", "add", "--name", "Bo", "--email", "bo@example.com"], tmp_path).returncode == 0
    made = run(["tokens", "create", "bo-script", "--agent", "bo@example.com"], tmp_path)
    assert made.returncode == 0 and "tdk_" in made.stdout
    nobody = run(["tokens", "create", "ghost", "--agent", "nobody"], tmp_path)
    assert nobody.returncode == 1 and "no agent 'nobody'" in nobody.stdout
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        rows = dict(conn.execute("SELECT t.name, a.name FROM api_tokens t LEFT JOIN agents a ON a.id = t.agent_id"))
    assert rows == {"bo-script": "Bo"}
