"""`tierdesk init DIR` (an editable copy of the shipped configuration for a deployment) and `tierdesk doctor`."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.settings import default_config_dir

console = Console()
CONFIG_FILES = ("tierdesk.toml", "routing.toml", "nlu.yml", "responses.yml")


def init(
    directory: Path = typer.Argument(Path("tierdesk-config"), help="where to write the configuration"),
    force: bool = typer.Option(False, "--force", help="overwrite files that are already there"),
) -> None:
    """Write an editable copy of the default configuration (settings, routing policy, NLU data, FAQ answers)."""
    source = default_config_dir()
    directory.mkdir(parents=True, exist_ok=True)
    existing = [name for name in CONFIG_FILES if (directory / name).exists()]
    if existing and not force:
        console.print(f"[red]{directory} already has {', '.join(existing)}[/]: nothing written (--force overwrites)")
        raise typer.Exit(1)
    for name in CONFIG_FILES:
        shutil.copyfile(source / name, directory / name)
    console.print(f"wrote {', '.join(CONFIG_FILES)} to {directory}")
    console.print(f"use it with: export TIERDESK_CONFIG_DIR={directory.resolve()}")


def doctor() -> None:
    """Check settings, routing policy, NLU model, database, Redis and channels; say what is wrong and how to fix it."""
    from pydantic import ValidationError

    from bot.cli.doctor import run_checks
    from bot.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            where = "__".join(str(p) for p in error["loc"]).upper()
            console.print(f"[red]✗ setting TIERDESK_{where}[/]: {escape(error['msg'])}")
        raise typer.Exit(1) from None
    checks = asyncio.run(run_checks(settings))
    table = Table("check", "", "detail", "how to fix")
    for check in checks:
        table.add_row(
            escape(check.name), "[green]ok[/]" if check.ok else "[red]FAIL[/]", escape(check.detail), escape(check.fix)
        )
    console.print(table)
    failed = [c for c in checks if not c.ok]
    for check in failed:
        console.print(
            f"[red]✗ {escape(check.name)}[/]: {escape(check.detail)}"
            + (f" — fix: {escape(check.fix)}" if check.fix else ""),
            soft_wrap=True,
        )
    console.print(f"[red]{len(failed)} problem(s)[/]" if failed else "[green]all checks passed[/]")
    raise typer.Exit(1 if failed else 0)
