"""`tierdesk chat`: talk to the running desk from a terminal, as a customer or as an agent."""

from __future__ import annotations

from rich.console import Console

from bot.runner import serve
from bot.settings import Settings
from channels.console import ConsoleChannel
from crm_store.repositories import agents as agents_repo

console = Console()


async def run_chat(settings: Settings, role: str, name: str) -> None:
    from bot.cli.tools import open_store

    user = name or ("agent" if role == "agent" else "you")
    if role == "agent":
        async with open_store(settings) as sessions, sessions() as session, session.begin():
            known = await agents_repo.agents_by_address(session, [("console", user)])
            if not known:
                await agents_repo.add_agent(session, name=user, role="supervisor", addresses={"console": user})
                console.print(f"[dim]registered console agent {user!r} (supervisor)[/]")
    console.print(
        f"[bold]tierdesk chat[/] as {role} [cyan]{user}[/]; type /quit to leave"
        + (", /help for commands" if role == "agent" else "")
    )
    channel = ConsoleChannel(user, display_name=user)
    await serve(settings, [channel], web=False)
