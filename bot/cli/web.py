"""`tierdesk tokens …`, `tierdesk agents passwd` and `tierdesk agents sessions`: credentials for the REST API and
the dashboard, and the dashboard sessions that stand on them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import typer
from rich.console import Console

from bot.cli.tools import open_store

tokens_app = typer.Typer(help="Bearer tokens for the REST API.", no_args_is_help=True)
console = Console()


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Argument(..., help="what the token is for, e.g. 'billing-sync'"),
    agent: str = typer.Option("", help="act as this agent (id, name or email): their rights, their tiers"),
) -> None:
    """Create a token and print it; it is shown only this once (only its hash is stored)."""
    from bot.web.tokens import create_token
    from crm_store.repositories import agents as agents_repo

    async def go() -> str:
        async with open_store() as sessions, sessions() as session, session.begin():
            agent_id = None
            if agent:
                found = await agents_repo.find_agent(session, agent)
                if found is None:
                    raise ValueError(f"no agent {agent!r} (tierdesk agents list shows them)")
                agent_id = found.id
            return await create_token(session, name, agent_id=agent_id)

    try:
        token = asyncio.run(go())
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"token [bold]{name}[/]: {token}\nUse it as `Authorization: Bearer {token}`; it is not shown again.")


@tokens_app.command("revoke")
def tokens_revoke(name: str = typer.Argument(...)) -> None:
    """Revoke every token with this name."""
    from crm_store.repositories import web as web_repo

    async def go() -> int:
        async with open_store() as sessions, sessions() as session, session.begin():
            return await web_repo.revoke_api_token(session, name)

    n = asyncio.run(go())
    console.print(f"revoked {n} token(s) named {name!r}")
    raise typer.Exit(0 if n else 1)


def agents_passwd(
    who: str = typer.Argument(..., help="agent id, name or email"),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="TIERDESK_NEW_PASSWORD", help="the new password (asked if not given)"),
) -> None:
    """Set an agent's dashboard password (stored as an argon2 hash)."""
    from bot.web.auth import hash_password
    from bot.web.web_sessions import change_password
    from crm_store.repositories import agents as agents_repo

    if len(password) < 8:
        console.print("[red]use at least 8 characters[/]")
        raise typer.Exit(1)

    async def go() -> tuple[str, int] | None:
        async with open_store() as sessions, sessions() as session, session.begin():
            agent = await agents_repo.find_agent(session, who)
            if agent is None:
                return None
            if not agent.email:
                raise typer.BadParameter(f"agent {agent.name} has no email to log in with; add one first")
            ended = await change_password(session, agent.id, hash_password(password), actor="cli")
            return agent.email, ended

    done = asyncio.run(go())
    if done is None:
        console.print(f"[red]no agent {who!r}[/]")
        raise typer.Exit(1)
    console.print(f"password set; {done[0]} can log in to the dashboard ({done[1]} open session(s) ended)")


def agents_sessions(
    who: str = typer.Argument(..., help="agent id, name or email"),
    revoke: bool = typer.Option(False, "--revoke", help="end the agent's sessions (all, or those given by --id)"),
    ids: list[str] = typer.Option([], "--id", help="a session id (or its start, as listed) to end with --revoke"),
) -> None:
    """List an agent's dashboard sessions (open ones first), or end them with --revoke."""
    from rich.table import Table

    from bot.settings import get_settings
    from bot.web.web_sessions import describe, revoke_agent_sessions
    from crm_store.models import now
    from crm_store.repositories import agents as agents_repo
    from crm_store.repositories import web_sessions as sessions_repo

    idle = timedelta(minutes=get_settings().web.session_idle_minutes)

    async def go() -> tuple[str, list, int] | None:
        async with open_store() as sessions, sessions() as session, session.begin():
            agent = await agents_repo.find_agent(session, who)
            if agent is None:
                return None
            ended = 0
            if revoke:
                ended = await revoke_agent_sessions(session, agent.id, reason="revoked by an admin", actor="cli",
                                                    ids=[i.strip() for i in ids if i.strip()] if ids else None)
            return agent.name, await sessions_repo.of_agent(session, agent.id), ended

    found = asyncio.run(go())
    if found is None:
        console.print(f"[red]no agent {who!r}[/]")
        raise typer.Exit(1)
    name, rows, ended = found
    at = now()
    table = Table("session", "state", "started", "last seen", "ends", "client", title=f"sessions of {name}")
    for row in sorted(rows, key=lambda r: describe(r, idle=idle, at=at) != "open"):
        table.add_row(row.id[:12], describe(row, idle=idle, at=at), f"{row.created_at:%Y-%m-%d %H:%M}",
                      f"{row.last_seen_at:%Y-%m-%d %H:%M}", f"{row.expires_at:%Y-%m-%d %H:%M}", row.client[:40])
    console.print(table)
    if revoke:
        console.print(f"ended {ended} session(s) of {name}")
