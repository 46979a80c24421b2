"""The `tierdesk` command line (Typer + Rich)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.cli.dead import dead_app
from bot.cli.log import log_app
from bot.cli.tools import open_store
from bot.settings import get_settings

app = typer.Typer(help="tierdesk: contact center and service desk.", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
agents_app = typer.Typer(help="Agents and supervisors.", no_args_is_help=True)
outbox_app = typer.Typer(help="Replies waiting, sent or failed.", no_args_is_help=True)
import_app = typer.Typer(help="Import customers, purchases and mail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(log_app, name="log")
app.add_typer(agents_app, name="agents")
app.add_typer(outbox_app, name="outbox")
app.add_typer(import_app, name="import")
app.add_typer(dead_app, name="dead")
console = Console()


def _setup_logging() -> None:
    from bot.core.json_logs import setup_logging
    from bot.core.log_limit import limit_all_repeats

    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    limit_all_repeats()  # an outage logs each kind of error once per interval, with a count


@app.command()
def demo(
    db: Path | None = typer.Option(None, "--db", help="where to keep the demo store (default: a temp dir)"),
) -> None:
    """Run a scripted conversation on a fresh SQLite store and print it."""
    from bot.cli.demo import main

    logging.basicConfig(level=logging.WARNING)
    raise typer.Exit(main(db))


@app.command()
def run() -> None:
    """Start the configured channels, workers and web app; Ctrl-C or SIGTERM stops cleanly."""
    from bot.runner import serve

    _setup_logging()
    _start_or_explain(serve)


@app.command()
def worker() -> None:
    """Consume the Redis inbound stream and deliver replies, beside `tierdesk run` (scale-out); SIGTERM stops it."""
    from bot.runner import work

    _setup_logging()
    _start_or_explain(work)


def _start_or_explain(main) -> None:
    """Run a long-lived process; a configuration it cannot start with ends it with the reason, not a traceback."""
    from bot.app import NotMigrated
    from bot.cli.doctor import startup_problems
    from bot.settings import ConfigProblem

    settings = get_settings()
    problems = asyncio.run(startup_problems(settings))
    for problem in problems:
        console.print(f"[red]cannot start: {escape(problem.name)}[/]: {escape(problem.detail)} ({escape(problem.fix)})")
    if problems:
        raise typer.Exit(2)
    try:
        asyncio.run(main(settings))
    except (ConfigProblem, NotMigrated) as exc:
        console.print(f"[red]cannot start[/]: {escape(str(exc))}")
        raise typer.Exit(2) from None


@app.command()
def chat(
    as_: str = typer.Option("customer", "--as", help="customer or agent"),
    name: str = typer.Option("", "--name", help="your name (customer) or agent name"),
) -> None:
    """Chat in this terminal as a customer or as an agent (type /quit to leave)."""
    from bot.cli.chat import run_chat

    if as_ not in ("customer", "agent"):
        raise typer.BadParameter("--as must be customer or agent")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run_chat(get_settings(), as_, name))


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("heads")) -> None:
    """Apply the migrations to the configured database."""
    from crm_store.engine import upgrade

    s = get_settings()
    asyncio.run(upgrade(s.database_url, schema=s.database_schema, revision=revision))
    console.print(f"database at {s.database_url.split('@')[-1]} is up to date")


@agents_app.command("add")
def agents_add(
    name: str = typer.Option(..., "--name"),
    role: str = typer.Option("agent", "--role", help="agent, supervisor or admin"),
    telegram_id: str | None = typer.Option(None, "--telegram-id"),
    console_name: str | None = typer.Option(None, "--console", help="name to recognise in `tierdesk chat`"),
    email: str | None = typer.Option(None, "--email"),
    tiers: str = typer.Option("", "--tiers", help="comma-separated tiers served (empty: all)"),
    languages: str = typer.Option("", "--languages", help="comma-separated, e.g. en,ru"),
    skills: str = typer.Option("", "--skills"),
    capacity: int = typer.Option(5, "--capacity"),
    auto_assign: bool | None = typer.Option(
        None,
        "--auto-assign/--no-auto-assign",
        help="whether routing hands them tickets by itself (default: agents yes, supervisors and admins no)",
    ),
) -> None:
    """Register an agent with their channel addresses."""
    from crm_store.errors import Conflict
    from crm_store.repositories import agents as agents_repo

    addresses = {k: v for k, v in (("telegram", telegram_id), ("console", console_name)) if v}

    def split(v: str) -> list[str]:
        return [x.strip() for x in v.split(",") if x.strip()]

    async def go() -> int:
        async with open_store() as sessions, sessions() as session, session.begin():
            agent = await agents_repo.add_agent(
                session,
                name=name,
                role=role,
                addresses=addresses,
                email=email,
                tiers=split(tiers),
                languages=split(languages),
                skills=split(skills),
                capacity=capacity,
                auto_assign=auto_assign,
            )
            return agent.id

    try:
        agent_id = asyncio.run(go())
    except (Conflict, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"agent {agent_id} ({name}, {role}) added")


@agents_app.command("list")
def agents_list() -> None:
    """All agents with their load."""
    from crm_store.repositories import agents as agents_repo

    async def go():
        async with open_store() as sessions, sessions() as session:
            agents = await agents_repo.agents_with_load(session)
            return agents, await agents_repo.addresses_of(session, [a.id for a, _load in agents])

    agents, addresses = asyncio.run(go())
    table = Table(title="Agents")
    for col in ("id", "name", "role", "status", "load", "tiers", "languages", "addresses"):
        table.add_column(col)
    for a, load in agents:
        table.add_row(
            str(a.id),
            a.name,
            a.role,
            a.status,
            f"{load}/{a.capacity}",
            ",".join(a.tiers or []) or "all",
            ",".join(a.languages or []) or "any",
            ", ".join(f"{c}:{x}" for c, x in addresses.get(a.id, [])),
        )
    console.print(table)


@outbox_app.command("list")
def outbox_list(status: str | None = typer.Option(None, "--status", help="pending, sent or failed")) -> None:
    """Replies in the outbox; failed ones show why."""
    from crm_store.repositories import outbox as outbox_repo

    async def go():
        async with open_store() as sessions, sessions() as session:
            return await outbox_repo.counts_by_status(session), await outbox_repo.list_items(session, status=status)

    counts, items = asyncio.run(go())
    console.print("  ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "outbox is empty")
    table = Table()
    for col in ("id", "status", "channel", "to", "ticket", "tries", "error", "text"):
        table.add_column(col, overflow="fold")
    for i in items:
        table.add_row(
            str(i.id),
            i.status,
            i.channel,
            i.recipient,
            f"T-{i.ticket_id}" if i.ticket_id else "",
            str(i.attempts),
            (i.last_error or "")[:60],
            i.text[:60],
        )
    console.print(table)


def _mount_features() -> None:
    """Feature commands live beside their features (every build has them all; a broken install says so)."""
    from bot.runner import feature

    for module, attr, name, target in (
        ("bot.cli.nlu", "nlu_app", "nlu", app),
        ("bot.cli.tiers", "tiers_app", "tiers", app),
        ("bot.cli.web", "tokens_app", "tokens", app),
        ("bot.cli.security", "throttles_app", "login-throttles", app),
        ("bot.cli.customers", "customers_app", "customers", app),
        ("bot.cli.canned", "canned_app", "canned", app),
    ):
        sub = feature(module, attr)
        if sub is not None:
            target.add_typer(sub, name=name)
    for module in ("bot.cli.tiers",):
        sub = feature(module, "import_app")
        if sub is not None:
            import_app.registered_commands.extend(sub.registered_commands)
    for module, attr, name, target in (
        ("bot.cli.mail", "import_mail", "mail", import_app),
        ("bot.cli.tiers", "seed_data", "seed-data", app),
        ("bot.cli.web", "agents_passwd", "passwd", agents_app),
        ("bot.cli.web", "agents_sessions", "sessions", agents_app),
        ("bot.cli.security", "agents_totp", "totp", agents_app),
        ("bot.cli.nlu", "actions", "actions", app),
        ("bot.cli.setup_cmds", "init", "init", app),
        ("bot.cli.setup_cmds", "doctor", "doctor", app),
    ):
        fn = feature(module, attr)
        if fn is not None:
            target.command(name)(fn)


_mount_features()

if __name__ == "__main__":
    app()
