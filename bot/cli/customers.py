"""`tierdesk customers export|erase|hold|retain`: what is held about one person, and letting go of it.

Every command is audited with the actor "cli" (whoever can run it can reach the database anyway).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from bot.cli.tools import open_store
from bot.core.retention import remove_stored_files
from bot.settings import get_settings
from bot.tickets.access import TicketError, parse_id
from crm_store.errors import NotFound
from crm_store.repositories import privacy

customers_app = typer.Typer(help="One customer's data: export, erase, legal hold; contact retention.",
                            no_args_is_help=True)
console = Console()
errors = Console(stderr=True)
ACTOR = "cli"


def _customer_id(ref: str) -> int:
    try:
        return parse_id(ref, what="customer")
    except TicketError as exc:
        errors.print(f"[red]error:[/red] {exc.message}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _run(work):
    """Run one unit of work in a transaction; expected refusals become a message and exit code 1."""
    async def go():
        async with open_store() as sessions, sessions() as session, session.begin():
            return await work(session)

    try:
        return asyncio.run(go())
    except (NotFound, privacy.OnHold) as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


@customers_app.command("export")
def export(
    customer: str = typer.Argument(..., help="customer number (12 or C-12)"),
    out: Path | None = typer.Option(None, "--out", help="write the JSON here (default: standard output)"),
) -> None:
    """Everything held about one customer as JSON: the customer, identities, contacts, tickets with their
    events, notes, tier history, value events and identity claims."""
    cid = _customer_id(customer)
    data = _run(lambda session: privacy.export_customer(session, cid, actor=ACTOR))
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out is None:
        sys.stdout.write(text + "\n")
        return
    out.write_text(text + "\n", encoding="utf-8")
    console.print(f"customer C-{cid} exported to {out} ({len(data['contacts'])} contacts, "
                  f"{len(data['tickets'])} tickets)")


@customers_app.command("erase")
def erase(
    customer: str = typer.Argument(..., help="customer number (12 or C-12)"),
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
) -> None:
    """Anonymise a customer: text, name, reference and identities go; the counts the figures need stay.
    Refused while the customer is under legal hold."""
    cid = _customer_id(customer)
    if not yes and not typer.confirm(f"Erase customer C-{cid}? Their messages, notes and identities are blanked "
                                     "for good"):
        raise typer.Exit(1)
    done = _run(lambda session: privacy.erase_customer(session, cid, actor=ACTOR))
    removed = remove_stored_files(done.files, get_settings().email.attachment_dir)
    merged = f" (with merged customers {', '.join(f'C-{i}' for i in done.customer_ids[1:])})" \
        if len(done.customer_ids) > 1 else ""
    console.print(f"customer C-{cid} erased{merged}: {done.contacts} contacts and {done.notes} notes blanked, "
                  f"{done.identities} identities removed, {removed} stored files deleted", highlight=False)


@customers_app.command("hold")
def hold(
    customer: str = typer.Argument(..., help="customer number (12 or C-12)"),
    on: bool = typer.Option(..., "--on/--off", help="put under legal hold, or lift it"),
) -> None:
    """Legal hold: while it is on, the customer cannot be erased."""
    cid = _customer_id(customer)
    _run(lambda session: privacy.set_legal_hold(session, cid, on, actor=ACTOR))
    console.print(f"customer C-{cid}: legal hold {'on' if on else 'off'}", highlight=False)


@customers_app.command("retain")
def retain(
    days: int | None = typer.Option(None, "--days", help="default: the privacy.retain_contacts_days setting"),
) -> None:
    """Anonymise contacts older than the retention period once (what `tierdesk run` does every hour)."""
    from bot.core.retention import retain_contacts

    days = get_settings().privacy.retain_contacts_days if days is None else days
    if days <= 0:
        console.print("retention is off (privacy.retain_contacts_days = 0): nothing to do")
        return

    async def go() -> int:
        async with open_store() as sessions:
            return await retain_contacts(sessions, days, actor=ACTOR, files_root=get_settings().email.attachment_dir)

    blanked = asyncio.run(go())
    console.print(f"{blanked} contacts older than {days} days anonymised", highlight=False)
