"""`tierdesk dead list|retry|drop`: the inbound stream's dead letters (entries that could not be stored)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from bot.core.dead_letters import DeadLetters
from bot.settings import get_settings

dead_app = typer.Typer(
    help="Inbound messages that could not be stored: see, replay or drop them.", no_args_is_help=True
)
console = Console()
STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


def _run(work: Callable[[DeadLetters], Awaitable[Any]]) -> Any:
    settings = get_settings()
    if not settings.redis_url:
        console.print("[red]dead letters live in Redis: set TIERDESK_REDIS_URL[/]")
        raise typer.Exit(1)

    async def go() -> Any:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        client = aioredis.from_url(settings.redis_url)
        try:
            return await work(DeadLetters(client, f"{settings.redis_prefix}:inbound"))
        except (RedisError, OSError) as exc:
            console.print(f"[red]Redis at {settings.redis_url.split('@')[-1]} did not answer: {exc}[/]")
            raise typer.Exit(1) from None
        finally:
            await client.aclose()

    return asyncio.run(go())


@dead_app.command("list")
def dead_list(limit: int = typer.Option(100, "--limit", help="show at most this many, oldest first")) -> None:
    """The dead letters, oldest first: id, what it was, how often it was delivered and why it failed."""

    async def work(dead: DeadLetters) -> tuple[int, list]:
        return await dead.count(), await dead.list(limit)

    total, letters = _run(work)
    if not letters:
        console.print("no dead letters")
        return
    table = Table("id", "parked at", "channel", "external id", "sender", "deliveries", "reason")
    for d in letters:
        table.add_row(d.id, d.at, d.channel, d.external_id[:40], d.sender[:30], str(d.deliveries), d.reason[:120])
    console.print(table)
    if total > len(letters):
        console.print(f"{len(letters)} of {total} shown (--limit)")


def _chosen(ids: list[str] | None, every: bool, verb: str) -> list[str]:
    if bool(ids) == every:
        console.print(f"[red]name the dead letters to {verb} (their ids from `tierdesk dead list`) or pass --all[/]")
        raise typer.Exit(2)
    wrong = [i for i in ids or [] if not STREAM_ID.fullmatch(i)]
    if wrong:
        console.print(
            f"[red]not a dead-letter id (like 1712345678901-0): {', '.join(w[:40] for w in wrong)}[/]",
            markup=True,
            highlight=False,
        )
        raise typer.Exit(2)
    return list(ids or [])


@dead_app.command("retry")
def dead_retry(
    ids: list[str] | None = typer.Argument(None, help="dead-letter ids"),
    every: bool = typer.Option(False, "--all", help="every dead letter"),
) -> None:
    """Send dead letters back to the inbound stream (after a fix): stored once, like any redelivery."""
    chosen = _chosen(ids, every, "retry")
    done = _run(lambda dead: dead.retry(chosen))
    missing = sorted(set(chosen) - set(done))
    console.print(f"{len(done)} sent back to the inbound stream")
    if missing:
        console.print(f"[yellow]not found: {', '.join(missing)}[/]")
        raise typer.Exit(1)


@dead_app.command("drop")
def dead_drop(
    ids: list[str] | None = typer.Argument(None, help="dead-letter ids"),
    every: bool = typer.Option(False, "--all", help="every dead letter"),
) -> None:
    """Delete dead letters for good."""
    chosen = _chosen(ids, every, "drop")
    done = _run(lambda dead: dead.drop(chosen))
    missing = sorted(set(chosen) - set(done))
    console.print(f"{len(done)} dropped")
    if missing:
        console.print(f"[yellow]not found: {', '.join(missing)}[/]")
        raise typer.Exit(1)
