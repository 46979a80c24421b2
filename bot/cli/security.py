"""`tierdesk agents totp` and `tierdesk login-throttles …`: the second factor and the login throttles."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from bot.cli.tools import open_store

throttles_app = typer.Typer(help="Failed dashboard logins per (client, account) and their waits.",
                            no_args_is_help=True)
console = Console()


def agents_totp(
    who: str = typer.Argument(..., help="agent id, name or email"),
    enable: bool = typer.Option(..., "--enable/--disable", help="turn the second factor on (new secret) or off"),
) -> None:
    """Turn a supervisor's or admin's second factor (TOTP) on or off; on prints the secret to scan once."""
    from bot.web import totp
    from crm_store.repositories import agents as agents_repo
    from crm_store.repositories import audit

    async def go() -> tuple[str, str] | str:
        async with open_store() as sessions, sessions() as session, session.begin():
            agent = await agents_repo.find_agent(session, who)
            if agent is None:
                return f"no agent {who!r} (tierdesk agents list shows them)"
            if enable and not totp.may_have_second_factor(agent.role):
                return f"{agent.name} is an {agent.role}: a second factor is for supervisors and admins"
            if enable and not agent.email:
                return f"{agent.name} has no email to log in with; add one first"
            agent.totp_secret = totp.new_secret() if enable else None
            audit.record(session, "totp_enabled" if enable else "totp_disabled", subject=f"agent:{agent.id}",
                         actor="cli")
            return (agent.email or "", agent.totp_secret or "")

    result = asyncio.run(go())
    if isinstance(result, str):
        console.print(f"[red]{result}[/]")
        raise typer.Exit(1)
    email, secret = result
    if not enable:
        console.print(f"second factor off for {who}: the password alone signs in")
        return
    console.print(f"second factor on for {email}; from the next login the dashboard asks for the code.")
    console.print("Scan this in an authenticator app (it is not shown again):")
    console.print(totp.provisioning_uri(secret, email), soft_wrap=True, markup=False, highlight=False)
    console.print(f"secret: {secret}", markup=False, highlight=False)


@throttles_app.command("list")
def throttles_list(account: str = typer.Option("", "--account", help="only this email")) -> None:
    """Every (client, account) with failed logins, its count and when it may try again."""
    from bot.web.login_guard import list_throttles

    async def go():
        async with open_store() as sessions, sessions() as session:
            return await list_throttles(session, account=account)

    rows = asyncio.run(go())
    if not rows:
        console.print("no login throttles")
        return
    table = Table(title="Login throttles")
    for col in ("client", "account", "failures", "last failed", "next try"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.client, r.account, str(r.failures),
                      f"{r.last_failed_at:%Y-%m-%d %H:%M:%S}" if r.last_failed_at else "",
                      f"{r.next_allowed_at:%Y-%m-%d %H:%M:%S}" if r.next_allowed_at else "")
    console.print(table)


@throttles_app.command("clear")
def throttles_clear(
    account: str = typer.Option("", "--account", help="this email's throttles"),
    client: str = typer.Option("", "--client", help="this client's (IP address) throttles"),
    everything: bool = typer.Option(False, "--all", help="every throttle"),
) -> None:
    """Forget failed logins, so the client may try again at once."""
    from bot.web.login_guard import clear_throttles
    from crm_store.repositories import audit

    if not (account or client or everything):
        console.print("[red]say which: --account, --client or --all[/]")
        raise typer.Exit(2)

    async def go() -> int:
        async with open_store() as sessions, sessions() as session, session.begin():
            n = await clear_throttles(session, account=account, client=client, everything=everything)
            audit.record(session, "throttles_cleared", subject="login_throttles", actor="cli", account=account,
                         client=client, all=everything, count=n)
            return n

    console.print(f"cleared {asyncio.run(go())} login throttle(s)")
