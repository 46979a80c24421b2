"""The Dockerfile and compose.yaml say only what exists: every TIERDESK_* variable they set is a real setting that
parses, every command they run is a tierdesk command, every file they copy is in the tree, and Redis keeps its
stream (AOF). Machines here have no container runtime, so this is as far as a test can check them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from typer.main import get_command

from bot.cli.main import app
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def _expand(value: str) -> str:
    """${VAR:-default} as compose would with VAR unset; a bare ${VAR} becomes a placeholder secret."""
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: m.group(2) if m.group(2) is not None else "x", value)


def _setting_exists(name: str) -> bool:
    model: type[BaseModel] = Settings
    parts = name.removeprefix("TIERDESK_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def _environments() -> dict[str, dict[str, str]]:
    return {name: {k: str(v) for k, v in (spec.get("environment") or {}).items()} for name, spec in SERVICES.items()}


def test_every_tierdesk_variable_in_compose_is_a_setting_that_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = 0
    for service, env in _environments().items():
        ours = {k: _expand(v) for k, v in env.items() if k.startswith("TIERDESK_")}
        for name in ours:
            assert _setting_exists(name), f"{service}: {name} is not a tierdesk setting"
        if not ours:
            continue
        for name, value in ours.items():
            monkeypatch.setenv(name, value)
        settings = Settings()  # raises on a value that does not parse
        assert settings.database_url.startswith("postgresql+asyncpg://")
        assert settings.redis_url == "redis://redis:6379/0" and settings.dispatch.ingest == "stream"
        seen += len(ours)
        for name in ours:
            monkeypatch.delenv(name)
    assert seen >= 20


def test_compose_runs_postgres_with_a_volume_redis_with_aof_and_two_workers() -> None:
    assert any(v.startswith("pgdata:") for v in SERVICES["postgres"]["volumes"])
    redis_cmd = " ".join(SERVICES["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and any(v.startswith("redisdata:") for v in SERVICES["redis"]["volumes"])
    assert SERVICES["worker"]["deploy"]["replicas"] == 2
    assert SERVICES["migrate"]["command"] == ["tierdesk", "db", "upgrade"]


def _cli_has(argv: list[str]) -> bool:
    command: Any = get_command(app)  # Typer's own (vendored) click: a group is what has sub-commands
    for word in argv:
        if not hasattr(command, "list_commands"):
            return False
        command = command.get_command(command.context_class(command), word)
    return command is not None


def test_every_command_compose_and_the_dockerfile_run_is_a_tierdesk_command() -> None:
    commands = [
        spec["command"] for spec in SERVICES.values() if spec.get("command") and spec["command"][0] == "tierdesk"
    ]
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD \[(.*)\]$", dockerfile, re.M)
    assert cmd, "the Dockerfile has no exec-form CMD"
    commands.append([part.strip().strip('"') for part in cmd.group(1).split(",")])
    assert len(commands) >= 4
    for argv in commands:
        assert argv[0] == "tierdesk" and _cli_has(argv[1:]), f"not a tierdesk command: {shlex.join(argv)}"


def test_every_path_the_dockerfile_copies_is_in_the_tree() -> None:
    copies = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    assert copies
    for line in copies:
        for source in line.split():
            assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the tree"


def test_the_grafana_dashboard_only_charts_metrics_tierdesk_exposes() -> None:
    import json

    from bot.core.metrics import REGISTRY

    exposed = {m.name for m in REGISTRY.collect()}  # family names: counters without _total

    def family(name: str) -> str:
        return re.sub(r"_(total|bucket|sum|count)$", "", name)

    board = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in board["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\btierdesk_\w+", target["expr"])
    }
    assert len(board["panels"]) >= 10 and used
    unknown = {n for n in used if family(n) not in exposed}
    assert not unknown, f"the dashboard charts metrics that do not exist: {unknown}"
