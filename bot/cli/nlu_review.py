"""`tierdesk nlu review`: the customers' answers to "which of these did you mean?" as training examples.

Lists the choices waiting for review; `--accept` adds them to the training data file (in the block of the chosen
intent and the message's language) and marks them accepted, `--reject` marks them rejected. The file is written
first and the marks after: a failure between the two leaves the examples pending, and accepting them again adds
nothing twice (an example already in its block is skipped).
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.assistant.training_data import NewExample, append_to_file
from bot.cli.tools import open_store
from bot.core.messages import utcnow
from bot.settings import get_settings
from crm_store.clarifications import Clarification
from crm_store.repositories import clarifications as clarifications_repo
from nlu.rasa_format import NluDataError

console = Console()
errors = Console(stderr=True)
LIST_LIMIT = 200


def _fail(message: str) -> typer.Exit:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=2)


def _show(rows: list[Clarification]) -> None:
    if not rows:
        console.print("no choices waiting for review")
        return
    table = Table("id", "chosen", "language", "offered", "message", "when", title="choices waiting for review")
    for row in rows:
        table.add_row(
            str(row.id),
            row.chosen_intent or "",
            row.language or "?",
            " / ".join(row.options),
            row.text[:120],
            row.chosen_at.strftime("%Y-%m-%d %H:%M") if row.chosen_at else "",
        )
    console.print(table)


def _example(row: Clarification) -> NewExample:
    return NewExample(intent=row.chosen_intent or "", language=row.language, text=row.text)


async def _review(
    sessions: async_sessionmaker[AsyncSession], data: Path, accept: set[int], reject: set[int], by: str, every: bool
) -> tuple[list[Clarification], int, int, list[int]]:
    """(pending rows, accepted, rejected, ids that were not pending)."""
    async with sessions() as session, session.begin():
        if every or not (accept or reject):
            pending = await clarifications_repo.for_review(session, limit=None if every else LIST_LIMIT)
        else:
            pending = await clarifications_repo.pending_review(session, sorted(accept | reject))
    by_id = {row.id: row for row in pending}
    if every:
        accept = set(by_id) - reject
    unknown = sorted((accept | reject) - set(by_id))
    chosen = [by_id[i] for i in sorted(accept) if i in by_id]
    if chosen:
        append_to_file(data, [_example(row) for row in chosen])
    async with sessions() as session, session.begin():
        now = utcnow()
        accepted = await clarifications_repo.set_review(session, [r.id for r in chosen], "accepted", by, now)
        rejected = await clarifications_repo.set_review(session, sorted(reject & set(by_id)), "rejected", by, now)
    return pending, accepted, rejected, unknown


def review(
    accept: list[int] = typer.Option([], "--accept", help="Add this choice (its id) to the training data."),
    reject: list[int] = typer.Option([], "--reject", help="Mark this choice as not worth training on."),
    accept_all: bool = typer.Option(False, "--accept-all", help="Accept every pending choice not rejected."),
    data: Path | None = typer.Option(None, "--data", help="Training data file (default: the configured nlu.yml)."),
    by: str = typer.Option("", "--by", help="Who reviews (default: the login name)."),
) -> None:
    """List the customers' choices waiting for review, or accept / reject them."""
    settings = get_settings()
    target = data or settings.config_path(settings.nlu.data)
    overlap = set(accept) & set(reject)
    if overlap:
        raise _fail(f"choice {min(overlap)} is both accepted and rejected")
    if (accept or accept_all) and not target.is_file():
        raise _fail(f"{target}: no such training data file")
    reviewer = by or getpass.getuser()

    async def go() -> tuple[list[Clarification], int, int, list[int]]:
        async with open_store(settings) as sessions:
            return await _review(sessions, target, set(accept), set(reject), reviewer, accept_all)

    try:
        pending, accepted, rejected, unknown = asyncio.run(go())
    except (NluDataError, ValueError, OSError) as exc:
        raise _fail(f"nothing was accepted: {exc}") from exc
    if not (accept or reject or accept_all):
        _show(pending)
        return
    if accepted:
        console.print(
            f"accepted {accepted}: added to {target} (the model retrains on the next start, or now with "
            "`tierdesk nlu train`)"
        )
    if rejected:
        console.print(f"rejected {rejected}")
    if unknown:
        errors.print(f"not waiting for review (unknown or already reviewed): {', '.join(map(str, unknown))}")
        raise typer.Exit(code=1)
