"""`tierdesk log show` and `tierdesk log export`: the contact log for people and for other tools.

Both show customer contacts; `--include-desk` adds desk traffic (agent commands, the bot's answers and notices to
agents, alerts), each row then saying whether it is desk traffic (the `desk` column)."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bot.cli.tools import open_store
from bot.core.csv_safe import BOM, safe_cell
from bot.settings import Settings
from crm_store.repositories import audit
from crm_store.repositories import contacts as contacts_repo

log_app = typer.Typer(help="Review and export the contact log.", no_args_is_help=True)
EXPORT_COLUMNS = (
    "id",
    "channel",
    "external_id",
    "direction",
    "author",
    "address",
    "customer_id",
    "agent_id",
    "ticket_id",
    "text",
    "intent",
    "created_at",
)
DESK_COLUMN = "desk"
"""Added after EXPORT_COLUMNS when desk traffic is included: true for a desk row, false for a customer contact."""
INCLUDE_DESK_HELP = "also desk traffic: agent commands, notices and answers to agents"


def parse_since(value: str | None) -> datetime | None:
    """'2026-11-01', an ISO timestamp, or a relative '24h' / '7d' / '30m'."""
    if not value:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r}: use a date (2026-11-01), a timestamp, or 24h / 7d") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@log_app.command("show")
def show(
    customer: int | None = typer.Option(None, "--customer", help="only this customer id"),
    channel: str | None = typer.Option(None, "--channel", help="only this channel"),
    since: str | None = typer.Option(None, "--since", help="from this date/time, or 24h, 7d"),
    limit: int = typer.Option(50, "--limit", "-n"),
    include_desk: bool = typer.Option(False, "--include-desk", help=INCLUDE_DESK_HELP),
) -> None:
    """The newest customer contacts, as a table."""
    rows = asyncio.run(_recent(customer, channel, parse_since(since), limit, include_desk))
    Console().print(contact_table(rows, with_desk=include_desk))


async def _recent(
    customer: int | None, channel: str | None, since: datetime | None, limit: int, include_desk: bool
) -> list[Any]:
    async with open_store() as sessions, sessions() as session:
        return await contacts_repo.recent_contacts(
            session, customer_id=customer, channel=channel, since=since, limit=limit, include_desk=include_desk
        )


def contact_table(rows: list[Any], title: str = "Contact log", *, with_desk: bool = False) -> Table:
    """The rows of `recent_contacts` as a table; `with_desk` adds a column marking desk traffic."""
    table = Table(title=title, show_lines=False)
    columns = ("#", "when (UTC)", "channel", "dir", "who", "customer", "tier", "ticket", "intent", "text")
    for col in (*columns, DESK_COLUMN) if with_desk else columns:
        table.add_column(col, overflow="fold")
    for contact, tier in rows:
        intent = (contact.nlu or {}).get("intent") or ""
        text = " ".join(contact.text.split())
        desk = ("desk" if contact.desk else "") if with_desk else None
        table.add_row(
            str(contact.id),
            contact.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            contact.channel,
            "in" if contact.direction == "in" else "out",
            contact.author,
            f"C-{contact.customer_id}" if contact.customer_id else "",
            tier or "",
            f"T-{contact.ticket_id}" if contact.ticket_id else "",
            intent,
            text[:80] + ("…" if len(text) > 80 else ""),
            *(() if desk is None else (desk,)),
        )
    return table


@log_app.command("export")
def export(
    out: Path = typer.Option(..., "--out", "-o", help="file to write"),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv or jsonl"),
    customer: int | None = typer.Option(None, "--customer"),
    channel: str | None = typer.Option(None, "--channel"),
    since: str | None = typer.Option(None, "--since"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    include_desk: bool = typer.Option(False, "--include-desk", help=INCLUDE_DESK_HELP),
    bom: bool = typer.Option(False, "--bom", help="start with a UTF-8 BOM, so Excel reads non-Latin text right"),
) -> None:
    """Every matching customer contact (with --include-desk, desk traffic too), one row each, streamed so any
    size exports in constant memory. CSV cells that a spreadsheet would run as a formula start with a quote.
    The export is recorded in the audit log."""
    if fmt not in ("csv", "jsonl"):
        raise typer.BadParameter("--format must be csv or jsonl")
    if bom and fmt != "csv":
        raise typer.BadParameter("--bom is for CSV (a BOM would break JSON lines)")
    n = asyncio.run(_export(out, fmt, customer, channel, parse_since(since), quiet, include_desk, bom=bom))
    typer.echo(f"exported {n} contacts to {out}")


async def _export(
    out: Path, fmt: str, customer: int | None, channel: str | None, since: datetime | None, quiet: bool,
    include_desk: bool = False, *, bom: bool = False, settings: Settings | None = None,
) -> int:
    filters = {"customer_id": customer, "channel": channel, "since": since, "include_desk": include_desk}
    columns = (*EXPORT_COLUMNS, DESK_COLUMN) if include_desk else EXPORT_COLUMNS
    async with open_store(settings) as sessions:
        async with sessions() as session, contacts_repo.one_pass(session):
            written = await _write(session, out, fmt, filters, columns, quiet=quiet, bom=bom)
        async with sessions() as session, session.begin():
            audit.record(session, "contacts_exported", subject="contacts", actor="cli", format=fmt, rows=written,
                         bom=bom, filter={**filters, "since": since.isoformat() if since else None})
    return written


async def _write(
    session: Any, out: Path, fmt: str, filters: dict[str, Any], columns: tuple[str, ...], *, quiet: bool, bom: bool
) -> int:
    """Stream the filtered contacts into `out`; the number of rows written."""
    written = 0
    total = await contacts_repo.count_contacts(session, **filters)
    with (
        out.open("w", encoding="utf-8", newline="") as fh,
        Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=quiet,
        ) as progress,
    ):
        task = progress.add_task("export", total=total)
        if bom:
            fh.write(BOM)
        writer = csv.writer(fh) if fmt == "csv" else None
        if writer:
            writer.writerow(columns)
        async for row in contacts_repo.stream_contacts(session, **filters):
            record = export_record(row)
            if writer:
                writer.writerow([safe_cell(record[k]) for k in columns])
            else:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
            if written % 1000 == 0:
                progress.update(task, completed=written)
        progress.update(task, completed=written)
    return written


def export_record(row: dict[str, Any]) -> dict[str, Any]:
    """One exported contact: the streamed columns (see `contacts_repo.stream_contacts`), the time as ISO 8601."""
    created = row.get("created_at")
    return {**row, "created_at": created.isoformat() if created else None}
