"""`tierdesk import mail PATH...`: bring an existing support mailbox into the contact log."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bot.importers.mail import ImportSummary, count_messages
from bot.settings import Settings, get_settings


async def run_import(settings: Settings, paths: list[Path], *, progress: Progress | None = None) -> ImportSummary:
    """Start the app without channels (nothing is sent while importing), import, stop."""
    from bot.app import App
    from bot.assistant.responder import HumanOnly
    from bot.importers.mail import import_mail
    from channels.email.store import ContentStore
    from crm_store.repositories import contacts as contacts_repo

    app = App(settings, channels=[], responder=HumanOnly())
    await app.start()
    try:
        async def is_threaded(result) -> bool:
            """The ticket had a message before this one: the mail joined an existing conversation."""
            if result.ticket_id is None:
                return False
            async with app.sessions() as session:
                transcript = await contacts_repo.ticket_transcript(session, result.ticket_id, limit=200)
            return any(c.id < result.contact_id for c in transcript)

        task = progress.add_task("importing", total=count_messages(paths)) if progress is not None else None
        return await import_mail(
            paths,
            app.deliver,
            is_threaded=is_threaded,
            store=ContentStore(settings.email.attachment_dir),
            attachment_max_bytes=settings.email.attachment_max_bytes,
            on_message=(lambda: progress.advance(task)) if progress is not None and task is not None else None,
        )
    finally:
        await app.stop()


def import_mail(
    paths: list[Path] = typer.Argument(..., help=".eml files, mbox files or Maildir folders (folders recurse)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Log every message as a contact, threaded into tickets; importing twice changes nothing."""
    console = Console(stderr=as_json)
    settings = get_settings()
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=as_json or not console.is_terminal,
    )
    mail_log = logging.getLogger("channels.email")
    level = mail_log.level
    mail_log.setLevel(logging.ERROR)  # rejections are listed in the summary
    try:
        with progress:
            summary = asyncio.run(run_import(settings, list(paths), progress=progress))
    finally:  # run in-process (tests, an embedding app), the email channel's warnings come back afterwards
        mail_log.setLevel(level)
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        _print_summary(console, summary)
    if summary.errors:
        raise typer.Exit(1)


def _print_summary(console: Console, summary: ImportSummary) -> None:
    console.print(
        f"imported {summary.imported} (joined existing tickets: {summary.threaded}), "
        f"already there {summary.duplicates}, rejected {len(summary.rejected)}, errors {len(summary.errors)}"
    )
    for title, rows, key in (("rejected", summary.rejected, "reason"), ("errors", summary.errors, "error")):
        if rows:
            table = Table(title=title)
            table.add_column("source")
            table.add_column(key)
            for row in rows[:50]:
                table.add_row(row["source"], row[key])
            if len(rows) > 50:
                table.add_row("…", f"{len(rows) - 50} more (use --json for all)")
            console.print(table)
