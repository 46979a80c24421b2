"""`tierdesk canned add|list|remove`: the canned responses agents send by name in Telegram and on the web."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from bot.cli.tools import open_store
from crm_store.repositories import canned as canned_repo

canned_app = typer.Typer(help="Canned responses agents send by name.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=2)


@canned_app.command("add")
def canned_add(
    name: str = typer.Argument(..., help="the name agents type: /canned <name>"),
    text: str = typer.Argument(..., help="the text the customer receives"),
    language: str = typer.Option("", "--language", "-l", help="the customers' language it is for (default: all)"),
) -> None:
    """Add a canned response, or replace the text of the same name and language."""

    async def go() -> canned_repo.Canned:
        async with open_store() as sessions, sessions.begin() as session:
            return await canned_repo.put(session, name, text, language=language)

    try:
        saved = asyncio.run(go())
    except canned_repo.BadCanned as exc:
        raise _fail(str(exc)) from None
    console.print(f"saved {saved.name} ({saved.language or 'default'})", highlight=False)


@canned_app.command("list")
def canned_list() -> None:
    """Every canned response, by name and language."""

    async def go() -> list[canned_repo.Canned]:
        async with open_store() as sessions, sessions() as session:
            return await canned_repo.list_all(session)

    rows = asyncio.run(go())
    if not rows:
        console.print("no canned responses: add one with `tierdesk canned add <name> <text>`")
        return
    table = Table("name", "language", "text")
    for row in rows:
        table.add_row(row.name, row.language or "default", row.text[:120])
    console.print(table)


@canned_app.command("remove")
def canned_remove(
    name: str = typer.Argument(...),
    language: str | None = typer.Option(None, "--language", "-l", help="only this language ('' = the default)"),
) -> None:
    """Remove a canned response (every language of it, or one)."""

    async def go() -> int:
        async with open_store() as sessions, sessions.begin() as session:
            return await canned_repo.remove(session, name, language=language)

    try:
        gone = asyncio.run(go())
    except canned_repo.BadCanned as exc:
        raise _fail(str(exc)) from None
    if not gone:
        raise _fail(f"no canned response {name!r}" + (f" in {language!r}" if language else ""))
    console.print(f"removed {gone} version(s) of {name}", highlight=False)
